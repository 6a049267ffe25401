"""OpenAPI security scheme of the admin API and the keyword arguments every guarded route shares."""

from __future__ import annotations

from typing import Any

from litestar import Controller
from litestar.openapi.spec import SecurityScheme

from admin.guards import require, signed_in

SCHEMES = {
    "admin": SecurityScheme(type="http", scheme="bearer", description="access token from POST /admin/v1/sessions")
}
SECURITY: list[dict[str, list[str]]] = [{"admin": []}]


def needs(permission: str | None, action: str | None = None) -> dict[str, Any]:
    """`guards` and the operation-log action name for a route of a `Guarded` controller."""
    opts: dict[str, Any] = {"guards": [require(permission) if permission else signed_in()]}
    if action:
        opts["opt"] = {"action": action}
    return opts


def guarded(permission: str | None, action: str | None = None) -> dict[str, Any]:
    """`guards`, `security` and the operation-log action name for a route."""
    return {**needs(permission, action), "security": SECURITY}


class Guarded(Controller):
    """Admin API routes under the bearer scheme; a subclass sets path and tags, and guards for all its routes
    (class-level `guards`) or for each (`needs`)."""

    security = SECURITY
