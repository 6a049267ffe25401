"""Administrator sign-in (password with optional TOTP), sign-out, own profile and TOTP enrolment."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import JSONBody

from admin.auth import Guarded, guarded
from admin.guards import admin_of, signed_in, token_of
from core.ratelimit import client_ip, rate_limit
from core.resources import Resources
from orgs import service, sessions
from orgs.models import AdminPrincipal, SessionToken, SignIn, Totp

Req = Request[Any, Any, Any]


class Me(msgspec.Struct):
    id: str
    username: str
    org_path: str
    org_level: str
    region_code: str
    data_scope: str
    roles: list[str]
    permissions: list[str]


class TotpStart(msgspec.Struct):
    secret: str
    otpauth_uri: str


class TotpConfirm(msgspec.Struct):
    code: Totp


def me_of(p: AdminPrincipal) -> Me:
    return Me(
        id=str(p.id),
        username=p.username,
        org_path=p.org_path,
        org_level=p.org_level,
        region_code=p.region_code,
        data_scope=p.data_scope,
        roles=list(p.roles),
        permissions=sorted(p.permissions),
    )


@post(
    "/v1/sessions",
    summary="Sign in with username and password (and a TOTP code when enrolled); returns a bearer token",
    tags=["sessions"],
    status_code=201,
    guards=[rate_limit(120, 60, name="admin-signin")],
    opt={"action": "admin.sign_in"},
)
async def create_session(request: Request[Any, Any, Any], res: Resources, data: JSONBody[SignIn]) -> SessionToken:
    request.scope.setdefault("state", {})["op_username"] = data.username
    return await service.sign_in(res, data, client_ip(request))


@delete(
    "/v1/sessions/current",
    summary="Sign out (revokes this token)",
    tags=["sessions"],
    **guarded(None, "admin.sign_out"),
)
async def end_session(request: Request[Any, Any, Any], res: Resources) -> None:
    token = token_of(request)
    if token:
        await sessions.revoke(res, token)


class Profile(Guarded):
    """The signed-in administrator's own profile and TOTP enrolment (any session, whatever its permissions)."""

    path = "/v1/me"
    tags = ("sessions",)
    guards = (signed_in(),)

    @get(summary="The signed-in administrator, roles, permissions and data scope")
    async def me(self, request: Req) -> Me:
        return me_of(admin_of(request))

    @post("/totp", summary="Start TOTP enrolment (RFC 6238)", status_code=201, opt={"action": "admin.totp_start"})
    async def totp_start(self, request: Req, res: Resources) -> TotpStart:
        secret, uri = await service.start_totp(res, admin_of(request))
        return TotpStart(secret=secret, otpauth_uri=uri)

    @post(
        "/totp/confirm",
        summary="Confirm TOTP enrolment with a current code",
        status_code=204,
        opt={"action": "admin.totp_confirm"},
    )
    async def totp_confirm(self, request: Req, res: Resources, data: JSONBody[TotpConfirm]) -> None:
        await service.confirm_totp(res, admin_of(request), data.code)


ROUTES: list[Any] = [create_session, end_session, Profile]
