"""Administrator sessions: opaque bearer tokens kept in Redis that resolve to the AdminPrincipal; revocable one by
one or all of an administrator's at once (role change, disabling).

Sliding with an absolute cap: a session ends `SZT_ADMIN_SESSION_IDLE_S` (30 min) after its last request and at the
latest `SZT_ADMIN_SESSION_MAX_S` (12 h) after sign-in. Each session also holds a random CSRF token that the console
puts in its forms (admin.pages checks it on every console form post)."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid

import msgspec

from core.redis_client import as_bytes
from core.resources import Resources
from core.settings import Settings
from orgs.models import AdminPrincipal

TTL = 1800  # the default idle time (SZT_ADMIN_SESSION_IDLE_S); `idle_seconds(settings)` is the configured one


class Session(msgspec.Struct, frozen=True):
    principal: AdminPrincipal
    csrf: str  # the console's synchronizer token for this session
    started: float  # Unix time of sign-in: the absolute cap counts from here


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Session)


def idle_seconds(settings: Settings) -> int:
    return max(1, settings.admin_session_idle_s)


def max_seconds(settings: Settings) -> int:
    return max(1, settings.admin_session_max_s)


def _key(token: str) -> str:
    return "adm:at:" + hashlib.sha256(token.encode()).hexdigest()


def _decode(raw: object) -> Session | None:
    try:
        return _dec.decode(as_bytes(raw))  # type: ignore[arg-type]
    except msgspec.DecodeError:
        return None  # a record of the former shape (a bare principal): signed out, sign in again


async def issue(res: Resources, principal: AdminPrincipal) -> str:
    token = "adm_" + secrets.token_urlsafe(32)
    key = _key(token)
    session = Session(principal=principal, csrf=secrets.token_urlsafe(32), started=time.time())
    ttl = min(idle_seconds(res.settings), max_seconds(res.settings))
    async with res.redis.pipeline(transaction=True) as pipe:
        pipe.set(key, _enc.encode(session), ex=ttl)
        pipe.sadd(f"adm:sess:{principal.id}", key)
        pipe.expire(f"adm:sess:{principal.id}", max_seconds(res.settings) + 60)
        await pipe.execute()
    return token


async def resolve_session(res: Resources, token: str) -> Session | None:
    """The live session of `token`, its idle time restarted (never beyond the absolute cap); None when it is
    unknown, idle too long, past its cap or revoked."""
    if not token.startswith("adm_") or len(token) > 100:
        return None
    key = _key(token)
    raw = await res.redis.get(key)
    session = None if raw is None else _decode(raw)
    if session is None:
        return None
    left = session.started + max_seconds(res.settings) - time.time()
    if left <= 0:
        await res.redis.delete(key)
        return None
    await res.redis.expire(key, min(idle_seconds(res.settings), math.ceil(left)))
    return session


async def resolve(res: Resources, token: str) -> AdminPrincipal | None:
    session = await resolve_session(res, token)
    return None if session is None else session.principal


async def revoke(res: Resources, token: str) -> None:
    key = _key(token)
    raw = await res.redis.get(key)
    await res.redis.delete(key)
    session = None if raw is None else _decode(raw)
    if session is not None:
        await res.redis.srem(f"adm:sess:{session.principal.id}", key)


async def revoke_all(res: Resources, admin_id: uuid.UUID) -> None:
    keys = await res.redis.smembers(f"adm:sess:{admin_id}")
    if keys:
        await res.redis.delete(*keys)
    await res.redis.delete(f"adm:sess:{admin_id}")
