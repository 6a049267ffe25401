"""Identity's own HTTP surface for outside callers: published keys, the 网证 status list, code verification."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Litestar, Request, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from litestar.response.base import ASGIResponse

from core.app import build_app
from core.auth import BASIC, BASIC_REQUIRED, BEARER
from core.problems import invalid
from core.resources import Resources
from core.settings import Settings
from identity import clients
from identity.codes.service import verify_code
from identity.credentials import repo as credentials_repo
from identity.keys import issuer_keys
from identity.licences import api as licence_api
from identity.models import CredentialStatus, PublishedKey, PublishedKeys, StatusList, VerifyCodeRequest, Voucher
from identity.oidc import routes as oidc_api
from identity.oidc.fast import OAuthFastPath
from identity.oidc.jose import sm2_jwk
from orgs import logs

MOUNT = "identity"
_encode = msgspec.json.Encoder().encode


@get("/v1/keys", summary="Issuer public keys (SM2) by key id", tags=["keys"])
async def published_keys(res: Resources) -> PublishedKeys:
    keys = await issuer_keys(res)
    # The same JWK as in the OpenID provider's JWKS (identity.oidc.jose.sm2_jwk): one algorithm name per key.
    out = [PublishedKey(**sm2_jwk(pub, kid), current=kid == keys.kid) for kid, pub in sorted(keys.published.items())]
    return PublishedKeys(keys=out)


def _cursor(value: str | None) -> tuple[datetime, str]:
    if not value:
        return datetime(1970, 1, 1, tzinfo=UTC), ""
    try:
        stamp, _, serial = base64.urlsafe_b64decode(value + "==").decode().partition("|")
        return datetime.fromisoformat(stamp), serial
    except ValueError as exc:
        raise invalid("cursor", "not a cursor from this list") from exc


@get("/v1/credential-status", summary="网证 status list: changes in order, paged by cursor", tags=["status"])
async def status_list(
    res: Resources,
    cursor: Annotated[str | None, Parameter(max_length=200, pattern=r"^[A-Za-z0-9_=-]*$")] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 500,
) -> StatusList:
    after, serial = _cursor(cursor)
    rows = await credentials_repo.status_changes(res.db, after, serial, limit)
    items = [CredentialStatus(r["serial"], r["status"], r["status_changed_at"].isoformat()) for r in rows]
    nxt = None
    if len(rows) == limit:
        last = rows[-1]
        nxt = base64.urlsafe_b64encode(f"{last['status_changed_at'].isoformat()}|{last['serial']}".encode()).decode()
    return StatusList(items=items, next_cursor=nxt)


@post(
    "/v1/codes/verify",
    summary="Verify a scanned identity code (verifiers, client_secret_basic)",
    tags=["codes"],
    security=BASIC_REQUIRED,
    status_code=200,
    responses={200: ResponseSpec(Voucher, description="the result voucher")},
)
async def verify(
    request: Request,
    data: JSONBody[VerifyCodeRequest],
    signed: Annotated[bool, Parameter(description="also return the voucher signed by the issuer")] = False,
) -> ASGIResponse:
    # The verifiers' hot path: resources from the app state rather than a resolved dependency, and a finished ASGI
    # response encoded once by msgspec (Litestar's Response would re-encode its headers on every call).
    res: Resources = request.app.state.resources
    client = await clients.authenticate_basic(res, request.headers.get("authorization"))
    ip = request.client.host if request.client else ""
    async with logs.timed_call(res, app_code=client.client_id, interface="/identity/v1/codes/verify", ip=ip):
        voucher = await verify_code(res, client, data.code, signed=signed, ip=ip)
    return ASGIResponse(body=_encode(voucher), status_code=200, media_type="application/json")


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    app = build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Identity",
        description="Real-name identity, 网号/网证, identity codes and the OpenID Connect provider.",
        route_handlers=[published_keys, status_list, verify, *licence_api.ROUTES, *oidc_api.ROUTES],
        externals={"ctid": f"{settings.simulators_url}/ctid/healthz", "sms": f"{settings.simulators_url}/sms/healthz"},
        resources=resources,
        security_schemes={**BASIC, **BEARER},
        exception_handlers=oidc_api.EXCEPTION_HANDLERS,
    )
    # What the combined server puts in front of this app: the OAuth hot paths of trusted back ends (oauth_fast).
    app.state.asgi_front = lambda inner: OAuthFastPath(inner, MOUNT)
    return app
