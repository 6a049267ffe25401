"""Admin authorisation (docs/contracts.md): `require(permission)` guards a route; `admin_of(request)` is the caller.

API callers send `Authorization: Bearer <token>` (POST /admin/v1/sessions); the console keeps the same token in
an HttpOnly, SameSite=Strict cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from core.problems import ProblemError
from core.resources import Resources
from orgs import sessions
from orgs.models import AdminPrincipal

COOKIE = "szt_admin"
Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def unauthorized(detail: str = "sign in as an administrator") -> ProblemError:
    return ProblemError(
        401,
        "admin-unauthorized",
        "Administrator sign-in required",
        "需要管理员登录",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="admin"'},
    )


def token_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    auth = connection.headers.get("authorization")
    if auth:
        return auth[7:] if auth[:7].lower() == "bearer " else None
    return connection.cookies.get(COOKIE)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> AdminPrincipal:
    cached = connection.scope.get("state", {}).get("admin")
    if isinstance(cached, AdminPrincipal):
        return cached
    token = token_of(connection)
    res: Resources = connection.app.state.resources
    session = await sessions.resolve_session(res, token) if token else None
    if session is None:
        raise unauthorized("the administrator session is missing, expired or revoked")
    state = connection.scope.setdefault("state", {})
    state["admin"], state["admin_csrf"] = session.principal, session.csrf
    return session.principal


def csrf_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The CSRF token of the session `authenticate` resolved ("" before it ran or without a session)."""
    value = connection.scope.get("state", {}).get("admin_csrf", "")
    return value if isinstance(value, str) else ""


def require(permission: str) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        if not principal.has(permission):
            raise ProblemError(403, "forbidden", "Forbidden", "无权访问", f"requires permission {permission}")

    return guard


def signed_in() -> Guard:
    """Any administrator session, whatever its permissions (their own profile, sign-out)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        await authenticate(connection)

    return guard


def admin_of(request: ASGIConnection[Any, Any, Any, Any]) -> AdminPrincipal:
    principal = request.scope.get("state", {}).get("admin")
    if not isinstance(principal, AdminPrincipal):
        raise unauthorized()
    return principal
