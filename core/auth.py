"""OpenAPI security schemes shared by the apps (the checks themselves live in the domains)."""

from __future__ import annotations

from litestar.openapi.spec import SecurityScheme

BEARER = {"bearer": SecurityScheme(type="http", scheme="bearer", description="access token from POST /bff/v1/sessions")}
BASIC = {"client": SecurityScheme(type="http", scheme="basic", description="client_id:client_secret (RFC 6749 2.3.1)")}
BEARER_REQUIRED: list[dict[str, list[str]]] = [{"bearer": []}]
BASIC_REQUIRED: list[dict[str, list[str]]] = [{"client": []}]


def credentials(authorization: str | None, scheme: str) -> str | None:
    """What an Authorization header carries after its auth scheme when that scheme is `scheme` (compared
    case-insensitively, RFC 9110 §11.1: `Basic`, `basic`, `BASIC` alike; one or more spaces after it); else None."""
    if not authorization:
        return None
    name, space, rest = authorization.partition(" ")
    if not space or name.lower() != scheme.lower():
        return None
    return rest.lstrip(" ")
