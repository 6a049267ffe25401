"""The token endpoint's grants, written once for both of its transports.

Shaped like node-oidc-provider's lib/actions/grants: each grant declares the form parameters it reads; each rule is a
small function that checks one thing and raises the RFC 6749 §5.2 error that names it; a grant is its checks composed
in order around the store calls. The Litestar token route (identity.oidc.routes) runs a grant with `run`. The raw ASGI
fast path (identity.oidc.fast) takes the same parameter sets, limits, checks and token records and changes only the
transport: in its plain case one Redis round trip (the rate-limit counts and the store together); whatever a check
refuses there goes to the route, which answers it."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec

from core.db import Record
from core.redis_client import LuaScript, as_bytes
from core.resources import Resources
from identity.clients import Client
from identity.oidc import repo, tokens
from identity.oidc.authorization import CodeGrant, code_key
from identity.oidc.tokens import OAuthError, TokenResponse

Params = Mapping[str, str]

# ---------------------------------------------------------------- what every OAuth form endpoint shares

CLIENT_AUTH_PARAMETERS = frozenset({"client_id", "client_secret", "client_assertion", "client_assertion_type"})
# The rate limits (core.ratelimit windows), counted by the routes' guard and client check and by the fast path alike.
RATE_WINDOW = 60
IP_BUCKET = "oidc-ip"


def ip_bucket(ip: str) -> str:
    return f"{IP_BUCKET}:{ip or 'unknown'}"


def client_bucket(client_id: str) -> str:
    return f"oidc-client:{client_id}"


# ---------------------------------------------------------------- client credentials (RFC 6749 §4.4)

CLIENT_CREDENTIALS_SCOPES = frozenset({"codes:verify", "status:read", "affairs", "eseal"})


def check_confidential(client: Client) -> None:
    if client.auth_method == "none":
        raise OAuthError("unauthorized_client", "public clients cannot use client_credentials")


def client_credentials_scopes(scope: str) -> list[str]:
    """The requested scopes a client-credentials token carries (others are dropped, not refused), in request order."""
    return [s for s in scope.split() if s in CLIENT_CREDENTIALS_SCOPES]


async def client_credentials(res: Resources, client: Client, params: Params, ip: str) -> TokenResponse:
    check_confidential(client)
    answer, key, record = tokens.client_token(client, client_credentials_scopes(params.get("scope", "")))
    await res.redis.set(key, record, ex=tokens.ACCESS_TTL)
    return answer


# ---------------------------------------------------------------- authorization code (RFC 6749 §4.1, RFC 7636)

MAX_CODE = 200  # ours are 43 characters: a longer one is unknown without a lookup
MAX_VERIFIER = 128  # RFC 7636 §4.1: the longest verifier the fast path takes (the route decides on longer ones)
UNKNOWN_CODE = "the code is unknown or expired"


def code_may_exist(code: str) -> bool:
    return 0 < len(code) <= MAX_CODE


def s256_of(verifier: str) -> str:
    """The S256 challenge the verifier answers ("" when there is no verifier)."""
    return tokens.pkce_s256(verifier) if verifier else ""


# Each check of a redeemed code: (client, grant, redirect_uri, s256 of the verifier). REDEEM_LUA's strict mode holds
# the first three in the store, so that the fast path consumes only a code these checks will accept.
def check_code_client(client: Client, grant: CodeGrant, redirect_uri: str, s256: str) -> None:
    if grant.client_id != client.client_id:
        raise OAuthError("invalid_grant", "the code was issued to another client")


def check_redirect_uri(client: Client, grant: CodeGrant, redirect_uri: str, s256: str) -> None:
    if grant.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")


def check_pkce(client: Client, grant: CodeGrant, redirect_uri: str, s256: str) -> None:
    if grant.code_challenge and not (s256 and hmac.compare_digest(s256, grant.code_challenge)):
        raise OAuthError("invalid_grant", "PKCE verification failed")


def check_public_client_pkce(client: Client, grant: CodeGrant, redirect_uri: str, s256: str) -> None:
    if client.auth_method == "none" and not grant.code_challenge:
        raise OAuthError("invalid_grant", "public clients must use PKCE")


CODE_CHECKS = (check_code_client, check_redirect_uri, check_pkce, check_public_client_pkce)


def check_code(client: Client, grant: CodeGrant, redirect_uri: str, s256: str) -> None:
    for check in CODE_CHECKS:
        check(client, grant, redirect_uri, s256)


# A code redeems once; the second redemption learns the family the first one started, to revoke it. The grant is
# msgpack (identity.oidc.authorization.CodeGrant, a map), read in the script with cmsgpack. `strict` (the fast path)
# consumes the code only when check_code_client, check_redirect_uri and check_pkce hold, and otherwise leaves it
# untouched (state 3) for the token route, which consumes it whatever the outcome and names what was wrong.
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


def decode_code_grant(raw: bytes | str) -> CodeGrant:
    return msgspec.msgpack.decode(as_bytes(raw), type=CodeGrant)


async def authorization_code(res: Resources, client: Client, params: Params, ip: str) -> TokenResponse:
    code = params.get("code", "")
    if not code_may_exist(code):
        raise OAuthError("invalid_grant", UNKNOWN_CODE)
    state, value = await _REDEEM(res.redis, [code_key(code)], [])
    if state == 0:
        raise OAuthError("invalid_grant", UNKNOWN_CODE)
    if state == 1:
        await tokens.revoke_replayed(res, client, as_bytes(value).decode(), "code_replay", ip)
        raise OAuthError("invalid_grant", "the code was already used; tokens issued with it are revoked")
    grant = decode_code_grant(value)
    check_code(client, grant, params.get("redirect_uri", ""), s256_of(params.get("code_verifier", "")))
    return await tokens.issue_for_code(res, client, grant, ip=ip)


# ---------------------------------------------------------------- refresh token (RFC 6749 §6, rotation)


def check_refresh_known(client: Client, row: Record | None) -> Record:
    if row is None or row["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", "the refresh token is not valid")
    return row


def check_refresh_live(row: Record) -> None:
    if row["revoked_at"] is not None or row["expires_at"] < datetime.now(UTC):
        raise OAuthError("invalid_grant", "the refresh token is revoked or expired")


async def check_consent(res: Resources, client: Client, row: Record) -> None:
    if not await repo.has_consent(res.db, row["person_id"], client.client_id):
        raise OAuthError("invalid_grant", "the user withdrew consent")


async def refresh_token(res: Resources, client: Client, params: Params, ip: str) -> TokenResponse:
    digest = tokens.refresh_digest(params.get("refresh_token", ""))
    async with res.db.acquire() as conn, conn.transaction():
        row = check_refresh_known(client, await repo.lock_refresh(conn, digest))
        check_refresh_live(row)
        reused = row["used_at"] is not None
        if not reused:
            await repo.mark_refresh_used(conn, digest)
    if reused:  # reuse of a rotated refresh token: somebody holds a copy; end the whole family
        await tokens.revoke_replayed(res, client, str(row["family"]), "refresh_reuse", ip)
        raise OAuthError("invalid_grant", "the refresh token was already used; the session is revoked")
    await check_consent(res, client, row)
    return await tokens.issue_for_refresh(res, client, row, ip=ip)


# ---------------------------------------------------------------- the grants


class Grant(NamedTuple):
    parameters: frozenset[str]  # the form fields it reads, client authentication aside
    fields: frozenset[str]  # all a plain request of this grant holds: grant_type and the parameters
    run: Callable[[Resources, Client, Params, str], Awaitable[TokenResponse]]


def _grant(parameters: set[str], run: Callable[[Resources, Client, Params, str], Awaitable[TokenResponse]]) -> Grant:
    return Grant(frozenset(parameters), frozenset({"grant_type", *parameters}), run)


AUTHORIZATION_CODE = _grant({"code", "redirect_uri", "code_verifier"}, authorization_code)
REFRESH_TOKEN = _grant({"refresh_token"}, refresh_token)
CLIENT_CREDENTIALS = _grant({"scope"}, client_credentials)
GRANTS: dict[str, Grant] = {
    "authorization_code": AUTHORIZATION_CODE,
    "refresh_token": REFRESH_TOKEN,
    "client_credentials": CLIENT_CREDENTIALS,
}
# Every field the token endpoint reads (identity.oidc.routes.TokenForm holds exactly these and CLIENT_AUTH_PARAMETERS).
TOKEN_FIELDS = frozenset().union(*(g.fields for g in GRANTS.values()))


async def run(res: Resources, client: Client, params: Params, ip: str) -> TokenResponse:
    """The token endpoint's answer to an authenticated client: the grant `grant_type` names, its checks in order."""
    grant = GRANTS.get(params.get("grant_type", ""))
    if grant is None:
        raise OAuthError("unsupported_grant_type", "use authorization_code, refresh_token or client_credentials")
    return await grant.run(res, client, params, ip)
