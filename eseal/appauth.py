"""Business apps of the signing API: APPCode + secret, HMAC-SM3 request signatures (core/reqsig.py, the scheme
the signing server uses) with the one-time nonce kept in Redis, so replicas share it."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request

from core import audit, reqsig
from core.problems import ProblemError, invalid
from core.resources import Resources
from eseal import repo

_CONTEXT = "eseal.apps.secret"
_NONCE_KEY = "eseal:nonce:{}:{}"


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "eseal-app-unauthorized",
        "App authentication failed",
        "应用认证失败",
        detail,
        headers={"WWW-Authenticate": "HMAC-SM3"},
    )


async def create_app(res: Resources, code: str, name: str, *, actor: str, secret: str | None = None) -> str:
    """Onboard (or re-key) an app; returns its secret — shown once, stored SM4-encrypted."""
    if not code.replace("-", "").replace("_", "").isalnum() or not 2 <= len(code) <= 40:
        raise invalid("code", "2-40 letters, digits, - or _")
    secret = secret or secrets.token_hex(32)
    await repo.insert_app(res.db, code, name, res.fields.encrypt(secret, context=_CONTEXT))
    await audit.record(res.db, actor=actor, action="eseal.app.create", target=code)
    return secret


async def authenticate(request: Request[Any, Any, Any], res: Resources) -> str:
    """The APPCode of a correctly signed, fresh, never-replayed request; else a 401 problem."""
    headers = request.headers
    code = headers.get("x-app-code", "")
    if not code or len(code) > 40:
        raise _unauthorized("X-App-Code, X-Timestamp, X-Nonce and Authorization: HMAC-SM3 <hex> are required")
    row = await repo.app(res.db, code)
    if row is None:
        raise _unauthorized("unknown APPCode")
    secret = res.fields.decrypt(row["secret_enc"], context=_CONTEXT).encode()
    nonce = headers.get("x-nonce", "")
    body = await request.body()
    why = reqsig.check_headers(secret, request.method, request.url.path, headers, body)
    if why is not None:
        raise _unauthorized(why)
    if not await res.redis.set(_NONCE_KEY.format(code, nonce), b"1", nx=True, ex=reqsig.NONCE_TTL):
        raise _unauthorized("nonce already used")
    return code
