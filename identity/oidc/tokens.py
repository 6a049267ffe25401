"""Token endpoint rules: authorization code (+PKCE), refresh with rotation and reuse detection, client
credentials; opaque access tokens in Redis (introspection and revocation in one round trip); ES256/SM2 ID tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from core import audit
from core.redis_client import LuaScript, as_bytes
from core.resources import Resources
from core.resp import lean_client
from identity.clients import Client
from identity.codes.service import pairwise_user_code
from identity.oidc.authorization import CodeGrant, code_key
from identity.oidc.jose import sign_jwt
from identity.oidc.scopes import UNMASKED_SCOPES

ACCESS_TTL = 600
REFRESH_DAYS = 30


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


def new_access_value() -> tuple[str, str]:
    """A new opaque access token and the Redis key its record lives under (only its digest is stored)."""
    value = "oat_" + secrets.token_urlsafe(32)
    return value, f"oat:{_h(value)}"


async def _access(res: Resources, token: AccessToken) -> str:
    """Store a client-credentials access token (no family: tokens of users are written by the issue writer)."""
    value, key = new_access_value()
    await res.redis.set(key, msgspec.msgpack.encode(token), ex=ACCESS_TTL)
    return value


async def revoke_family(res: Resources, family: str, reason: str) -> None:
    # The mark goes first: an issuance of this family still being written checks it after its commit (the issue
    # writer), so whichever of the two finishes last revokes what the other wrote.
    await res.redis.set(f"ofam-revoked:{family}", reason.encode(), ex=ACCESS_TTL + 60)
    await _revoke_refresh(res.db, [family])
    keys = await res.redis.smembers(f"ofam:{family}")
    if keys:
        await res.redis.delete(*keys)


async def _revoke_refresh(db: Any, families: list[str]) -> None:
    await db.execute(
        "UPDATE identity.oidc_refresh SET revoked_at = now() WHERE family = ANY($1::uuid[]) AND revoked_at IS NULL",
        [uuid.UUID(f) for f in families],
    )


async def _revoke_replayed(res: Resources, client: Client, family: str, what: str, ip: str) -> None:
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
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


# A code redeems once; the second redemption learns the family the first one started, to revoke it. The grant is
# msgpack (identity.oidc.authorization.CodeGrant, a map), read in the script with cmsgpack. `strict` (the OAuth fast
# layer) consumes the code only when client, redirect URI and PKCE all match and otherwise leaves it untouched
# (state 3) for the token route, which consumes it whatever the outcome and names what was wrong.
REDEEM_LUA = """
local function redeem(key, strict, client_id, redirect_uri, s256)
  local v = redis.call('GET', key)
  if not v then return {0, false} end
  if string.sub(v, 1, 5) == 'used:' then return {1, string.sub(v, 6)} end
  local g = cmsgpack.unpack(v)
  if strict == '1' and (g.client_id ~= client_id or g.redirect_uri ~= redirect_uri
                        or (g.code_challenge ~= '' and g.code_challenge ~= s256)) then
    return {3, false}
  end
  redis.call('SET', key, 'used:' .. g.family, 'KEEPTTL')
  return {2, v}
end
"""
_REDEEM = LuaScript(REDEEM_LUA + "return redeem(KEYS[1], '0', '', '', '')\n")


async def redeem_code(
    res: Resources, client: Client, *, code: str, redirect_uri: str, verifier: str, ip: str
) -> TokenResponse:
    state, value = await _REDEEM(res.redis, [code_key(code)], [])
    if state == 0:
        raise OAuthError("invalid_grant", "the code is unknown or expired")
    if state == 1:
        await _revoke_replayed(res, client, as_bytes(value).decode(), "code_replay", ip)
        raise OAuthError("invalid_grant", "the code was already used; tokens issued with it are revoked")
    grant = msgspec.msgpack.decode(as_bytes(value), type=CodeGrant)
    if grant.client_id != client.client_id:
        raise OAuthError("invalid_grant", "the code was issued to another client")
    if grant.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if grant.code_challenge and not (verifier and hmac.compare_digest(pkce_s256(verifier), grant.code_challenge)):
        raise OAuthError("invalid_grant", "PKCE verification failed")
    if client.auth_method == "none" and not grant.code_challenge:
        raise OAuthError("invalid_grant", "public clients must use PKCE")
    return await issue_for_code(res, client, grant, ip=ip)


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
            bytes.fromhex(_h(refresh)),
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


# The refresh rows of a batch, inserted by the audit append's statement only when it moved the chain's head
# (core.audit.append_if_head): columns as unnest arrays from $14, scopes space-joined (an array of arrays would
# flatten).
_REFRESH_IF_MOVED = """INSERT INTO identity.oidc_refresh (token_hash, family, client_id, person_id, scopes, acr, sid,
                                                      auth_time, expires_at)
    SELECT th, f, c, p, string_to_array(sc, ' '), a, s, at, ex
    FROM unnest($14::bytea[], $15::uuid[], $16::text[], $17::uuid[], $18::text[], $19::text[], $20::text[],
                $21::timestamptz[], $22::timestamptz[]) AS y(th, f, c, p, sc, a, s, at, ex)
    WHERE EXISTS (SELECT 1 FROM moved)"""
assert audit.APPEND_PARAMS == 13
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
            await _revoke_refresh(self.db, [as_bytes(f).decode() for f in revoked])

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
                moved, head = await audit.append_if_head(conn, head, entries, also=_REFRESH_IF_MOVED, also_args=args)
                if moved:
                    self.head = head
                    return
            # A busy chain: hold the head while appending.
            self.head = await audit.append_locked(conn, entries, also=_REFRESH_IF_MOVED, also_args=args)


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


async def refresh(res: Resources, client: Client, token: str, *, ip: str) -> TokenResponse:
    digest = bytes.fromhex(_h(token))
    async with res.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM identity.oidc_refresh WHERE token_hash = $1 FOR UPDATE", digest)
        if row is None or row["client_id"] != client.client_id:
            raise OAuthError("invalid_grant", "the refresh token is not valid")
        if row["revoked_at"] is not None or row["expires_at"] < datetime.now(UTC):
            raise OAuthError("invalid_grant", "the refresh token is revoked or expired")
        if row["used_at"] is not None:
            family = str(row["family"])
        else:
            family = ""
            await conn.execute("UPDATE identity.oidc_refresh SET used_at = now() WHERE token_hash = $1", digest)
    if family:  # reuse of a rotated refresh token: somebody holds a copy; end the whole family
        await _revoke_replayed(res, client, family, "refresh_reuse", ip)
        raise OAuthError("invalid_grant", "the refresh token was already used; the session is revoked")
    consent = await res.db.fetchval(
        "SELECT 1 FROM identity.consents WHERE person_id = $1 AND client_id = $2 AND withdrawn_at IS NULL",
        row["person_id"],
        client.client_id,
    )
    if not consent:
        raise OAuthError("invalid_grant", "the user withdrew consent")
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


async def client_credentials(res: Resources, client: Client, scope: str, *, ip: str) -> TokenResponse:
    if client.auth_method == "none":
        raise OAuthError("unauthorized_client", "public clients cannot use client_credentials")
    now = int(time.time())
    scopes = [s for s in scope.split() if s in ("codes:verify", "status:read", "affairs", "eseal")]
    access = await _access(res, AccessToken(client.client_id, scopes, now + ACCESS_TTL, now))
    return TokenResponse(access, "Bearer", ACCESS_TTL, " ".join(scopes))


async def lookup(res: Resources, token: str) -> AccessToken | None:
    if not token.startswith("oat_") or len(token) > 100:
        return None
    raw = await res.redis.get(f"oat:{_h(token)}")
    if raw is None:
        return None
    access = msgspec.msgpack.decode(as_bytes(raw), type=AccessToken)
    return access if access.exp > time.time() else None


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
            await res.redis.delete(f"oat:{_h(token)}")
        return
    family = await res.db.fetchval(
        "SELECT family FROM identity.oidc_refresh WHERE token_hash = $1 AND client_id = $2",
        bytes.fromhex(_h(token)),
        client.client_id,
    )
    if family is not None:
        await revoke_family(res, str(family), "revoked by client")


async def revoke_for(
    res: Resources, *, person_id: str, client_id: str | None = None, sid: str | None = None, reason: str
) -> list[str]:
    """Revoke every token family of a person (for one client, or of one app session). Returns the client ids."""
    rows = await res.db.fetch(
        """SELECT DISTINCT family, client_id FROM identity.oidc_refresh WHERE person_id = $1 AND revoked_at IS NULL
           AND ($2::text IS NULL OR client_id = $2) AND ($3::text IS NULL OR sid = $3)""",
        uuid.UUID(person_id),
        client_id,
        sid,
    )
    for r in rows:
        await revoke_family(res, str(r["family"]), reason)
    return sorted({r["client_id"] for r in rows})
