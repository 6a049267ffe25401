"""Administrator sessions: opaque bearer tokens kept in Redis (30 minutes, sliding) that resolve to the
AdminPrincipal; revocable one by one or all of an administrator's at once (role change, disabling)."""

from __future__ import annotations

import hashlib
import secrets
import uuid

import msgspec

from core.redis_client import as_bytes
from core.resources import Resources
from orgs.models import AdminPrincipal

TTL = 1800
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(AdminPrincipal)


def _key(token: str) -> str:
    return "adm:at:" + hashlib.sha256(token.encode()).hexdigest()


async def issue(res: Resources, principal: AdminPrincipal) -> str:
    token = "adm_" + secrets.token_urlsafe(32)
    key = _key(token)
    async with res.redis.pipeline(transaction=True) as pipe:
        pipe.set(key, _enc.encode(principal), ex=TTL)
        pipe.sadd(f"adm:sess:{principal.id}", key)
        pipe.expire(f"adm:sess:{principal.id}", TTL * 16)
        await pipe.execute()
    return token


async def resolve(res: Resources, token: str) -> AdminPrincipal | None:
    if not token.startswith("adm_") or len(token) > 100:
        return None
    key = _key(token)
    raw = await res.redis.get(key)
    if raw is None:
        return None
    await res.redis.expire(key, TTL)
    return _dec.decode(as_bytes(raw))


async def revoke(res: Resources, token: str) -> None:
    key = _key(token)
    raw = await res.redis.get(key)
    await res.redis.delete(key)
    if raw is not None:
        await res.redis.srem(f"adm:sess:{_dec.decode(as_bytes(raw)).id}", key)


async def revoke_all(res: Resources, admin_id: uuid.UUID) -> None:
    keys = await res.redis.smembers(f"adm:sess:{admin_id}")
    if keys:
        await res.redis.delete(*keys)
    await res.redis.delete(f"adm:sess:{admin_id}")
