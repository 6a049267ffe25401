"""App sessions: opaque access tokens in Redis (10 minutes, revocable at once) and refresh tokens in PostgreSQL,
rotated on each use; presenting a retired refresh token ends the whole session (reuse detection)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from core.db import Executor
from core.redis_client import as_bytes
from core.resources import Resources
from identity import repo
from identity.errors import unauthorized
from identity.models import SessionView, Tokens

ACCESS_TTL = 600
SESSION_DAYS = 30
# Mini-program sessions (identity.credentials.bindings): the platform's login alone ranks as an SMS sign-in; with a
# fresh CTID face check of the bound person ("wechat+face", "alipay+face") as a 网证 sign-in.
ACR_ORDER = {
    "sms": 0,
    "wechat": 0,
    "alipay": 0,
    "wz": 1,
    "wechat+face": 1,
    "alipay+face": 1,
    "wz+pin": 2,
    "wz+face": 3,
    "wz+pin+face": 4,
}


class Principal(msgspec.Struct, frozen=True):
    session_id: str
    person_id: str
    device_id: str | None
    acr: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _issue_access(res: Resources, principal: Principal) -> str:
    token = "at_" + secrets.token_urlsafe(32)
    key = f"at:{_digest(token).hex()}"
    async with res.redis.pipeline(transaction=True) as pipe:
        pipe.set(key, msgspec.msgpack.encode(principal), ex=ACCESS_TTL)
        pipe.sadd(f"sat:{principal.session_id}", key)
        pipe.expire(f"sat:{principal.session_id}", ACCESS_TTL)
        await pipe.execute()
    return token


async def create(
    res: Resources, *, person_id: str, device_id: str | None, acr: str, label: str, conn: Executor | None = None
) -> Tokens:
    session_id = str(uuid.uuid4())
    refresh = "rt_" + secrets.token_urlsafe(32)
    db = conn if conn is not None else res.db
    await repo.insert_session(
        db,
        uuid.UUID(session_id),
        uuid.UUID(person_id),
        uuid.UUID(device_id) if device_id else None,
        label[:64],
        acr,
        _digest(refresh),
        datetime.now(UTC) + timedelta(days=SESSION_DAYS),
    )
    principal = Principal(session_id, person_id, device_id, acr)
    access = await _issue_access(res, principal)
    return Tokens(access, refresh, "Bearer", ACCESS_TTL, session_id, acr)


async def authenticate(res: Resources, authorization: str | None) -> Principal:
    if not authorization or not authorization.startswith("Bearer ") or len(authorization) > 200:
        raise unauthorized()
    raw = await res.redis.get(f"at:{_digest(authorization[7:]).hex()}")
    if raw is None:
        raise unauthorized("the access token is unknown, expired or revoked")
    return msgspec.msgpack.decode(as_bytes(raw), type=Principal)


async def refresh(res: Resources, token: str) -> Tokens:
    digest = _digest(token)
    reused = await repo.session_of_retired_refresh(res.db, digest)
    if reused is not None:  # a rotated-out token came back: somebody holds a copy, so the session ends
        await _end(res, res.db, str(reused), "refresh token reused")
        raise unauthorized("the refresh token is not valid")
    async with res.db.acquire() as conn, conn.transaction():
        row = await repo.lock_live_session_by_refresh(conn, digest)
        if row is None:
            raise unauthorized("the refresh token is not valid")
        new = "rt_" + secrets.token_urlsafe(32)
        await repo.retire_refresh(conn, digest, row["id"])
        await repo.rotate_refresh(conn, row["id"], _digest(new))
    principal = Principal(
        str(row["id"]), str(row["person_id"]), str(row["device_id"]) if row["device_id"] else None, row["acr"]
    )
    access = await _issue_access(res, principal)
    return Tokens(access, new, "Bearer", ACCESS_TTL, principal.session_id, principal.acr)


async def _end(res: Resources, conn: Executor, session_id: str, reason: str) -> None:
    await repo.end_session(conn, uuid.UUID(session_id), reason)
    keys = await res.redis.smembers(f"sat:{session_id}")
    if keys:
        await res.redis.delete(*keys)
    await res.redis.delete(f"sat:{session_id}")


async def end(res: Resources, *, person_id: str, session_id: str, reason: str = "signed out") -> bool:
    owner = await repo.live_session_owner(res.db, uuid.UUID(session_id))
    if owner is None or str(owner) != person_id:
        return False
    await _end(res, res.db, session_id, reason)
    return True


async def end_for_device(res: Resources, device_id: str, reason: str) -> None:
    rows = await repo.live_sessions_of_device(res.db, uuid.UUID(device_id))
    for r in rows:
        await _end(res, res.db, str(r["id"]), reason)


async def list_for(res: Resources, principal: Principal) -> list[SessionView]:
    rows = await repo.live_sessions_of(res.db, uuid.UUID(principal.person_id))
    return [
        SessionView(
            str(r["id"]),
            r["device_label"],
            r["acr"],
            r["created_at"].isoformat(),
            r["last_used_at"].isoformat(),
            str(r["id"]) == principal.session_id,
        )
        for r in rows
    ]
