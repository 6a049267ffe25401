"""My e-licences (list, detail, the 亮证 card image with its verification QR) and scan-to-verify for verifier staff."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from bff.auth import SignedIn, client_ip, principal
from core.auth import BEARER_REQUIRED
from core.ratelimit import hit
from core.resources import Resources
from identity.facade import LicenceDetail, LicenceList, Principal, ScanResult, licences

AUTH: dict[str, Any] = {"dependencies": {"me": principal}, "security": BEARER_REQUIRED}
KindParam = Annotated[str, Parameter(pattern=r"^(id_card|driving_licence|residence_permit)$")]


class ScanRequest(msgspec.Struct):
    payload: Annotated[str, Meta(min_length=1, max_length=licences.MAX_TOKEN_CHARS, description="the QR text")]


class Licences(SignedIn):
    """My e-licences and their 亮证 cards."""

    path = "/v1/licences"
    tags = ("licences",)

    @get(summary="My e-licences: ID card, driving licence, residence permit (masked)")
    async def list_licences(self, res: Resources, me: Principal) -> LicenceList:
        return await licences.my_licences(res, me.person_id)

    @get("/{kind:str}", summary="One e-licence (masked) and its card image URL")
    async def licence_detail(self, res: Resources, me: Principal, kind: KindParam) -> LicenceDetail:
        return await licences.licence_detail(res, me.person_id, kind)

    @get(
        "/{kind:str}/image",
        summary="The 亮证 card (PNG): watermark with purpose and time, a verification QR valid for 3 minutes",
        media_type="image/png",
    )
    async def licence_image(
        self,
        res: Resources,
        me: Principal,
        kind: KindParam,
        fmt: Annotated[str, Parameter(query="format", pattern=r"^png$")] = "png",
        purpose: Annotated[str, Parameter(min_length=1, max_length=16, pattern=r"^[^\x00-\x1f<>]+$")] = "核验",
    ) -> Response[bytes]:
        # Counted per citizen once signed in: a limit checked before authentication would answer 429 to anyone.
        await hit(res.redis, f"licence-image:{me.person_id}", 30, 60)
        record, shown = await licences.present(res, me.person_id, kind, purpose)
        png = await anyio.to_thread.run_sync(licences.card_png, record, shown)
        return Response(
            png,
            media_type="image/png",
            headers={"Cache-Control": "no-store", "X-Licence-Expires": str(shown.expires_at)},
        )


@post(
    "/v1/scan",
    summary="Scan to verify (verifier staff only): an identity code or a 亮证 QR",
    tags=["licences"],
    status_code=200,
    **AUTH,
)
async def scan(
    request: Request[Any, Any, Any], res: Resources, me: Principal, data: JSONBody[ScanRequest]
) -> ScanResult:
    await hit(res.redis, f"scan:{me.person_id}", 60, 60)  # per verifier, after authentication
    return await licences.scan(res, me.person_id, data.payload, ip=client_ip(request))


ROUTES = [Licences, scan]
