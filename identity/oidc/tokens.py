"""What the token endpoint issues and how it is stored: opaque access tokens in Redis (introspection and revocation
in one round trip), refresh tokens in PostgreSQL (rotated; a family per authorization code), ES256/SM2 ID tokens,
and the group commit that writes an issuance with its audit entry. The grants' rules are in identity.oidc.grants."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from core import audit
from core.db import Record
from core.redis_client import LuaScript, as_bytes
from core.resources import Resources
from core.resp import lean_client
from identity.clients import Client
from identity.codes.service import pairwise_user_code
from identity.oidc import repo
from identity.oidc.authorization import CodeGrant
from identity.oidc.jose import sign_jwt
from identity.oidc.scopes import UNMASKED_SCOPES

ACCESS_TTL = 600
REFRESH_DAYS = 30
ACCESS_PREFIX = "oat_"
MAX_ACCESS_TOKEN = 100  # ours are 47 characters
INTROSPECTION_PARAMETERS = frozenset({"token", "token_type_hint"})  # introspection and revocation (RFC 7662, 7009)


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer: `{"error", "error_description"}`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class AccessToken(msgspec.Struct):
    client_id: str
    scopes: list[str]
    exp: int
    iat: int
    sub: str = ""
    person_id: str = ""
    family: str = ""
    acr: str = ""


class TokenResponse(msgspec.Struct, omit_defaults=True):
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    id_token: str | None = None
    refresh_token: str | None = None


def _h(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def subject(res: Resources, client: Client, person_id: str) -> str:
    """Pairwise `sub`: two clients of different sectors cannot link a user."""
    return pairwise_user_code(res, client.sector, person_id)


def access_key(token: str) -> str:
    """The Redis key an access token's record lives under (only its digest is stored); "" for a string that cannot
    be one of ours, which needs no lookup."""
    return f"oat:{_h(token)}" if token.startswith(ACCESS_PREFIX) and len(token) <= MAX_ACCESS_TOKEN else ""


def new_access_value() -> tuple[str, str]:
    """A new opaque access token and the Redis key its record lives under."""
    value = ACCESS_PREFIX + secrets.token_urlsafe(32)
    return value, access_key(value)


def decode_access(raw: Any) -> AccessToken | None:
    """An access token's stored record as Redis returned it, or None when there is none or it has expired."""
    if raw is None:
        return None
    access = msgspec.msgpack.decode(as_bytes(raw), type=AccessToken)
    return access if access.exp > time.time() else None


def client_token(client: Client, scopes: list[str]) -> tuple[TokenResponse, str, bytes]:
    """A client-credentials access token: the answer, the Redis key and the record to store under it for
    ACCESS_TTL (no family: tokens of users are written by the issue writer)."""
    now = int(time.time())
    value, key = new_access_value()
    record = msgspec.msgpack.encode(AccessToken(client.client_id, scopes, now + ACCESS_TTL, now))
    return TokenResponse(value, "Bearer", ACCESS_TTL, " ".join(scopes)), key, record


def refresh_digest(token: str) -> bytes:
    """What a refresh token's row is found by (only its digest is stored)."""
    return bytes.fromhex(_h(token))


async def revoke_family(res: Resources, family: str, reason: str) -> None:
    # The mark goes first: an issuance of this family still being written checks it after its commit (the issue
    # writer), so whichever of the two finishes last revokes what the other wrote.
    await res.redis.set(f"ofam-revoked:{family}", reason.encode(), ex=ACCESS_TTL + 60)
    await repo.revoke_refresh(res.db, [family])
    keys = await res.redis.smembers(f"ofam:{family}")
    if keys:
        await res.redis.delete(*keys)


async def revoke_replayed(res: Resources, client: Client, family: str, what: str, ip: str) -> None:
    """A one-time credential came back (a code redeemed twice, a rotated refresh token reused): somebody holds a
    copy, so everything issued in its family is revoked, and that is audited."""
    await revoke_family(res, family, what.replace("_", " "))
    await audit.record(
        res.db,
        actor=f"client:{client.client_id}",
        action=f"identity.token.{what}",
        target=family,
        ip=ip,
        result="refused",
    )


async def _id_token(
    res: Resources, client: Client, *, sub: str, nonce: str, acr: str, auth_time: int, sid: str, access_token: str
) -> str:
    now = int(time.time())
    at_hash = base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()[:16]).rstrip(b"=").decode()
    claims: dict[str, Any] = {
        "iss": res.settings.issuer_url,
        "sub": sub,
        "aud": client.client_id,
        "iat": now,
        "exp": now + ACCESS_TTL,
        "auth_time": auth_time,
        "acr": acr,
        "amr": acr.split("+"),
        "sid": sid,
        "at_hash": at_hash,
        "azp": client.client_id,
    }
    if nonce:
        claims["nonce"] = nonce
    return await sign_jwt(res, claims, alg=client.id_token_alg)


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def issue_for_code(res: Resources, client: Client, grant: CodeGrant, *, ip: str) -> TokenResponse:
    """The tokens of a redeemed code whose client, redirect URI and PKCE verifier were checked."""
    return await _issue(
        res,
        client,
        person_id=grant.person_id,
        scopes=grant.scopes,
        acr=grant.acr,
        sid=grant.sid,
        auth_time=grant.auth_time,
        nonce=grant.nonce,
        family=grant.family,
        ip=ip,
        with_id=True,
    )


async def _issue(
    res: Resources,
    client: Client,
    *,
    person_id: str,
    scopes: list[str],
    acr: str,
    sid: str,
    auth_time: int,
    nonce: str,
    family: str,
    ip: str,
    with_id: bool,
) -> TokenResponse:
    now = int(time.time())
    sub = subject(res, client, person_id)
    access, access_key = new_access_value()
    record = AccessToken(client.client_id, scopes, now + ACCESS_TTL, now, sub, person_id, family, acr)
    id_token = None
    if with_id and "openid" in scopes:
        id_token = await _id_token(
            res, client, sub=sub, nonce=nonce, acr=acr, auth_time=auth_time, sid=sid, access_token=access
        )
    refresh = None
    row: tuple[Any, ...] | None = None
    if "offline_access" in scopes or client.kind in ("app", "portal"):
        refresh = "ort_" + secrets.token_urlsafe(32)
        row = (
            refresh_digest(refresh),
            uuid.UUID(family),
            client.client_id,
            uuid.UUID(person_id),
            scopes,
            acr,
            sid,
            datetime.fromtimestamp(auth_time, UTC),
            datetime.now(UTC) + timedelta(days=REFRESH_DAYS),
        )
    entry = audit.Entry(
        actor=f"client:{client.client_id}",
        action="identity.token.issue",
        target=sub,
        ip=ip,
        detail={"scopes": scopes, "family": family, "unmasked": sorted(UNMASKED_SCOPES.intersection(scopes))},
    )
    # The refresh token, the audit entry and the access token are written (with those of the requests arriving
    # alongside) before the answer leaves: nothing issued goes unrecorded.
    await _writer(res).write(_Issued(row, entry, access_key, msgspec.msgpack.encode(record), family))
    return TokenResponse(access, "Bearer", ACCESS_TTL, " ".join(scopes), id_token, refresh)


assert audit.APPEND_PARAMS == 13  # repo.REFRESH_IF_MOVED's parameters follow the append's
_BATCH_MAX = 256


class _Issued(NamedTuple):
    refresh_row: tuple[Any, ...] | None
    entry: audit.Entry
    access_key: str
    access_record: bytes
    family: str


class _IssueWriter:
    """Group commit of token issuance, one per process and database: what the requests arriving while a batch is
    under way issue is written together in the next one — refresh-token rows and audit entries in one PostgreSQL
    statement, then the access tokens in one Redis script — and each request waits for its own batch. Every
    issuance audit entry goes through the chain's single head row, held until the commit; one commit (and one Redis
    round trip) per batch instead of one per request is what lifts that cap. The audit commit comes first: an
    access token is never stored unaudited (a failure after it leaves an audited issuance nobody received)."""

    def __init__(self, res: Resources) -> None:
        self.res, self.db = res, res.db
        self.pending: list[tuple[_Issued, asyncio.Future[None]]] = []
        self.head: audit.Head | None = None  # the audit chain's head after this writer's last append
        self.task: asyncio.Task[None] | None = None

    async def write(self, issued: _Issued) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((issued, done))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        await asyncio.shield(done)  # a request that goes away does not take its batch's commit with it

    async def _run(self) -> None:
        while self.pending:
            await asyncio.sleep(0)  # the requests already on their way join this batch
            batch, self.pending = self.pending[:_BATCH_MAX], self.pending[_BATCH_MAX:]
            try:
                await self._write([i for i, _ in batch])
            except Exception as exc:  # every request of the batch fails
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)
            else:
                for _, f in batch:
                    if not f.done():
                        f.set_result(None)

    async def _write(self, batch: list[_Issued]) -> None:
        await self._commit(batch)
        # After the commit: the access tokens, unless their family was revoked meanwhile (a replayed code arriving
        # while this batch was written), in which case the refresh rows just committed are revoked too.
        revoked = await _STORE_ACCESS(
            lean_client(self.res.settings.redis_url),
            [i.access_key for i in batch],
            [ACCESS_TTL, *(x for i in batch for x in (i.access_record, i.family))],
        )
        if revoked:
            await repo.revoke_refresh(self.db, [as_bytes(f).decode() for f in revoked])

    async def _commit(self, batch: list[_Issued]) -> None:
        """The batch's audit entries and refresh rows in one statement chained on the head this writer last saw
        (one round trip, committing alone); if another writer moved the head meanwhile, try again on the head that
        statement found, and while the chain stays that busy take the head's lock in a transaction instead."""
        entries = [i.entry for i in batch]
        rows = [i.refresh_row for i in batch if i.refresh_row is not None]
        cols: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(9)]
        cols[4] = [" ".join(scopes) for scopes in cols[4]]
        args = tuple(cols)
        async with self.db.acquire() as conn:
            head = self.head or await audit.read_head(conn)
            for _ in range(2):
                moved, head = await audit.append_if_head(
                    conn, head, entries, also=repo.REFRESH_IF_MOVED, also_args=args
                )
                if moved:
                    self.head = head
                    return
            # A busy chain: hold the head while appending.
            self.head = await audit.append_locked(conn, entries, also=repo.REFRESH_IF_MOVED, also_args=args)


# Store each access token (and its family membership) unless its family is marked revoked; returns those families.
_STORE_ACCESS = LuaScript("""
local ttl = ARGV[1]
local revoked = {}
for i, key in ipairs(KEYS) do
  local record, family = ARGV[2 * i], ARGV[2 * i + 1]
  if family ~= '' and redis.call('EXISTS', 'ofam-revoked:' .. family) == 1 then
    revoked[#revoked + 1] = family
  else
    redis.call('SET', key, record, 'EX', ttl)
    if family ~= '' then
      redis.call('SADD', 'ofam:' .. family, key)
      redis.call('EXPIRE', 'ofam:' .. family, ttl)
    end
  end
end
return revoked
""")


_writers: dict[int, _IssueWriter] = {}


def _writer(res: Resources) -> _IssueWriter:
    w = _writers.get(id(res))
    if w is None or w.res is not res:
        w = _writers[id(res)] = _IssueWriter(res)
    return w


async def issue_for_refresh(res: Resources, client: Client, row: Record, *, ip: str) -> TokenResponse:
    """The tokens of a rotated refresh token whose row was checked and marked used: same family, scopes and acr."""
    return await _issue(
        res,
        client,
        person_id=str(row["person_id"]),
        scopes=list(row["scopes"]),
        acr=row["acr"],
        sid=row["sid"],
        auth_time=int(row["auth_time"].timestamp()),
        nonce="",
        family=str(row["family"]),
        ip=ip,
        with_id=True,
    )


async def lookup(res: Resources, token: str) -> AccessToken | None:
    key = access_key(token)
    if not key:
        return None
    return decode_access(await res.redis.get(key))


def introspection(access: AccessToken | None, issuer: str) -> dict[str, Any]:
    """The RFC 7662 answer about a looked-up access token (None: unknown, expired or revoked)."""
    if access is None:
        return {"active": False}
    out: dict[str, Any] = {
        "active": True,
        "client_id": access.client_id,
        "scope": " ".join(access.scopes),
        "exp": access.exp,
        "iat": access.iat,
        "token_type": "Bearer",
        "iss": issuer,
    }
    if access.sub:
        out["sub"] = access.sub
    return out


async def revoke(res: Resources, client: Client, token: str) -> None:
    """RFC 7009: revoking a refresh token revokes its family; an access token only itself. Unknown: no error."""
    access = await lookup(res, token)
    if access is not None:
        if access.client_id == client.client_id:
            await res.redis.delete(access_key(token))
        return
    family = await repo.refresh_family(res.db, refresh_digest(token), client.client_id)
    if family is not None:
        await revoke_family(res, str(family), "revoked by client")


async def revoke_for(
    res: Resources, *, person_id: str, client_id: str | None = None, sid: str | None = None, reason: str
) -> list[str]:
    """Revoke every token family of a person (for one client, or of one app session). Returns the client ids."""
    rows = await repo.live_families(res.db, person_id, client_id, sid)
    for r in rows:
        await revoke_family(res, str(r["family"]), reason)
    return sorted({r["client_id"] for r in rows})
