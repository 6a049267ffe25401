"""The mini program's session: a Bearer access token (identity.sessions) resolved to the signed-in person."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from core.resources import Resources
from identity.facade import Principal, authenticate


async def _principal(request: Request[Any, Any, Any], res: Resources) -> Principal:
    return await authenticate(res, request.headers.get("authorization"))


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


principal = Provide(_principal)
