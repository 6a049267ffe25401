"""Identity's HTTP surface for licence verification by verifier clients (client_secret_basic, like codes/verify)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, post
from litestar.params import JSONBody
from msgspec import Meta

from core.auth import BASIC_REQUIRED
from core.resources import Resources
from identity import clients
from identity.licences.service import MAX_TOKEN_CHARS, LicenceVerification, verify_licence


class VerifyLicenceRequest(msgspec.Struct):
    token: Annotated[str, Meta(min_length=1, max_length=MAX_TOKEN_CHARS, description="the scanned 亮证 QR text")]


@post(
    "/v1/licences/verify",
    summary="Verify a scanned 亮证 QR (verifiers, client_secret_basic); each QR verifies once",
    tags=["licences"],
    security=BASIC_REQUIRED,
    status_code=200,
)
async def verify(request: Request, res: Resources, data: JSONBody[VerifyLicenceRequest]) -> LicenceVerification:
    client = await clients.authenticate_basic(res, request.headers.get("authorization"))
    return await verify_licence(res, client, data.token, ip=request.client.host if request.client else "")


ROUTES = [verify]
