"""App endpoints of unified login: the authorization request seen from the app, and the user's consents."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import JSONBody, Parameter

from bff.auth import client_ip, principal
from core import audit
from core.auth import BEARER_REQUIRED
from core.problems import ProblemError, not_found
from core.resources import Resources
from identity.facade import (
    SCOPE_TITLES_ZH,
    Principal,
    authorization,
    clients,
    consents_of,
    models,
    tokens,
    withdraw_consent,
)

Req = Request[Any, Any, Any]
AUTH: dict[str, Any] = {"dependencies": {"me": principal}, "security": BEARER_REQUIRED}
RequestId = Annotated[str, Parameter(pattern=r"^[0-9a-f]{32}$")]
ClientId = Annotated[str, Parameter(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class ScopeView(msgspec.Struct):
    scope: str
    title_zh: str


class AuthRequestView(msgspec.Struct):
    request_id: str
    client_id: str
    client_name: str
    zone: str
    scopes: list[ScopeView]
    acr_required: str
    face_required: bool
    expires_in: int
    status: str


class Approval(msgspec.Struct):
    face_capture: models.Capture | None = None


class Decision(msgspec.Struct):
    redirect_to: str


class ConsentView(msgspec.Struct):
    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: str


async def _request(res: Resources, request_id: str) -> authorization.AuthRequest:
    found = await authorization.load(res, request_id)
    if found is None:
        raise not_found("authorization request")
    return found


@get(
    "/v1/auth-requests/{request_id:str}",
    summary="Who asks for what (after scanning a login QR code)",
    tags=["login"],
    **AUTH,
)
async def show(res: Resources, me: Principal, request_id: RequestId) -> AuthRequestView:
    req = await _request(res, request_id)
    client = await clients.get(res, req.client_id, cached=True)
    if client is None:
        raise not_found("authorization request")
    return AuthRequestView(
        request_id=req.request_id,
        client_id=client.client_id,
        client_name=client.name,
        zone=client.zone,
        scopes=[ScopeView(s, SCOPE_TITLES_ZH.get(s, s)) for s in req.scopes],
        acr_required=req.acr_required,
        face_required="face" in req.acr_required and "face" not in me.acr,
        expires_in=max(0, int(req.expires_at - time.time())),
        status=req.status,
    )


@post(
    "/v1/auth-requests/{request_id:str}/approve",
    summary="Approve: the waiting side is sent to redirect_to",
    tags=["login"],
    status_code=200,
    **AUTH,
)
async def approve(
    request: Req, res: Resources, me: Principal, request_id: RequestId, data: JSONBody[Approval]
) -> Decision:
    return Decision(
        await authorization.approve(res, request_id, me, face_capture=data.face_capture, ip=client_ip(request))
    )


@post("/v1/auth-requests/{request_id:str}/deny", summary="Deny the login", tags=["login"], status_code=200, **AUTH)
async def deny(res: Resources, me: Principal, request_id: RequestId) -> Decision:
    await _request(res, request_id)
    return Decision(await authorization.deny(res, request_id, me))


@get("/v1/consents", summary="Apps I allowed to receive my data", tags=["login"], **AUTH)
async def consents(res: Resources, me: Principal) -> list[ConsentView]:
    rows = await consents_of(res.db, me.person_id)
    return [ConsentView(r["client_id"], r["name"], list(r["scopes"]), r["granted_at"].isoformat()) for r in rows]


@delete(
    "/v1/consents/{client_id:str}",
    summary="Withdraw consent: the app's tokens for me are revoked",
    tags=["login"],
    **AUTH,
)
async def withdraw(request: Req, res: Resources, me: Principal, client_id: ClientId) -> None:
    if not await withdraw_consent(res.db, me.person_id, client_id):
        raise ProblemError(404, "not-found", "Not found", "资源不存在", "no consent for this client")
    await tokens.revoke_for(res, person_id=me.person_id, client_id=client_id, reason="consent withdrawn")
    await audit.record(
        res.db,
        actor=f"person:{me.person_id}",
        action="identity.consent.withdraw",
        target=client_id,
        ip=client_ip(request),
    )


ROUTES = [show, approve, deny, consents, withdraw]
