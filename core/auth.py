"""OpenAPI security schemes shared by the apps (the checks themselves live in the domains)."""

from __future__ import annotations

from litestar.openapi.spec import SecurityScheme

BEARER = {"bearer": SecurityScheme(type="http", scheme="bearer", description="access token from POST /bff/v1/sessions")}
BASIC = {"client": SecurityScheme(type="http", scheme="basic", description="client_id:client_secret (RFC 6749 2.3.1)")}
BEARER_REQUIRED: list[dict[str, list[str]]] = [{"bearer": []}]
BASIC_REQUIRED: list[dict[str, list[str]]] = [{"client": []}]
