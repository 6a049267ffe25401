"""The OAuth hot paths of trusted back ends — client credentials and authorization-code redemption at the token
endpoint, and token introspection — answered by a raw ASGI layer in front of identity's Litestar app, in one Redis
round trip each (a redemption's refresh row, audit entry and access token then join identity.oidc.tokens' group commit),
over the auto-pipelined connection of core.resp.

Only the plain case is taken here: POST of a small form with exactly the expected fields, from a client whose
client_secret_basic header authenticated within the last 30 s (identity.clients cache), and for a code: known,
unused, issued to this client for this redirect URI, with a matching PKCE verifier. Everything else — the first
request of a client, other grants, other authentication methods, malformed or oversized bodies, a replayed or
mismatched code, a rate limit reached — goes to the Litestar routes of identity/oidc/routes.py with the body replayed
(and the code untouched), so every error answer stays in one place. The grant rules are the routes' own,
identity.oidc.grants (each grant's fields, the code and verifier limits, the checks, the client-credentials scopes, the
token records); only the transport is this layer's: the per-IP and per-client rate-limit counters (the same buckets
and windows) and the store in one script, tokens audited through identity.oidc.tokens' group commit, the
app-integration log entry of a token call, and the same response bodies and headers."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from core.asgi_body import read_body, replay
from core.observe import ASGIApp, Receive, Scope, Send, send_body
from core.ratelimit import window_key
from core.redis_client import LuaScript
from core.resources import Resources
from core.resp import lean_client
from identity import clients
from identity.oidc import grants, tokens
from identity.oidc.authorization import code_key
from identity.oidc.grants import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, RATE_WINDOW, Grant
from identity.oidc.tokens import ACCESS_TTL, INTROSPECTION_PARAMETERS, OAuthError, introspection
from orgs import logs

MAX_BODY = 4096
FORM = b"application/x-www-form-urlencoded"
TOKEN_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]

# Both rate-limit windows counted as core.ratelimit.count does; the token written (or read) only within the limits.
_COUNT_AND = """
local function count(key, ttl)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ttl) end
  return n
end
local ip = count(KEYS[1], ARGV[1])
local cl = count(KEYS[2], ARGV[1])
if ip > tonumber(ARGV[2]) or cl > tonumber(ARGV[3]) then return {0, false} end
"""
_ISSUE = LuaScript(_COUNT_AND + "redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])\nreturn {1, false}\n")
# Code redemption in its plain case: within the limits, the code is consumed only when client, redirect URI and PKCE
# match (grants.REDEEM_LUA, strict); anything else gives the counts back and leaves the code to the token route,
# whose guard counts the request then.
_REDEEM = LuaScript(
    _COUNT_AND
    + grants.REDEEM_LUA
    + """local r = redeem(KEYS[3], '1', ARGV[4], ARGV[5], ARGV[6])
if r[1] ~= 2 then
  redis.call('DECR', KEYS[1])
  redis.call('DECR', KEYS[2])
end
return {1, r[1], r[2]}
"""
)
_LOOKUP = LuaScript(
    _COUNT_AND + "if KEYS[3] == '' then return {1, false} end\nreturn {1, redis.call('GET', KEYS[3])}\n"
)
_COUNT_TTL = RATE_WINDOW + 1  # as core.ratelimit.hit


class _Fallback(Exception):
    """Not the plain case: the Litestar route answers."""


def _header(scope: Scope, name: bytes) -> bytes:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return b""


def _form(body: bytes, allowed: frozenset[str]) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Fallback from exc
    form = dict(pairs)
    if len(form) != len(pairs) or not form.keys() <= allowed:
        raise _Fallback  # repeated or unexpected fields: the full route says what is wrong
    return form


def _ip(scope: Scope) -> str:
    return str(scope["client"][0]) if scope.get("client") else ""


def _window_keys(scope: Scope, client_id: str) -> list[str]:
    """The counters of the routes' per-IP guard and per-client check, this window (identity.oidc.grants)."""
    return [
        window_key(grants.ip_bucket(_ip(scope)), RATE_WINDOW),
        window_key(grants.client_bucket(client_id), RATE_WINDOW),
    ]


async def _log_token_call(res: Resources, scope: Scope, client: clients.Client, grant: str, started: float) -> None:
    """The app-integration log entry the token route writes for a successful call (orgs.logs.timed_call)."""
    await logs.record_integration(
        res,
        app_code=client.client_id,
        interface="/identity/token",
        direction="inbound",
        status=200,
        latency_ms=(time.perf_counter() - started) * 1000,
        ip=_ip(scope),
        detail=grant,
        queued=True,
    )


class OAuthFastPath:
    """ASGI: POST /identity/token (client_credentials, authorization_code) and /identity/introspect in their plain
    case."""

    def __init__(self, app: Any, mount: str) -> None:
        self.app: ASGIApp = app
        self.token_path, self.introspect_path = f"/{mount}/token", f"/{mount}/introspect"
        self.grants: dict[str, tuple[Grant, Any]] = {
            "client_credentials": (CLIENT_CREDENTIALS, self._client_credentials),
            "authorization_code": (AUTHORIZATION_CODE, self._authorization_code),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope["method"] != "POST" or path not in (self.token_path, self.introspect_path):
            await self.app(scope, receive, send)
            return
        body, more = await read_body(receive, MAX_BODY)
        try:
            if more or len(body) > MAX_BODY or not _header(scope, b"content-type").startswith(FORM):
                raise _Fallback
            client = clients.basic_cached(_header(scope, b"authorization"))
            if client is None or client.auth_method == "none" or client.status != "active":
                raise _Fallback
            res: Resources = self.app.state.resources  # type: ignore[attr-defined]
            if path == self.token_path:
                form = _form(body, grants.TOKEN_FIELDS)
                fast = self.grants.get(form.get("grant_type", ""))
                if fast is None or not form.keys() <= fast[0].fields:
                    raise _Fallback  # another grant, or fields this grant does not take
                await fast[1](scope, send, res, client, form)
            else:
                await self._introspect(scope, send, res, client, _form(body, INTROSPECTION_PARAMETERS))
        except (_Fallback, OAuthError):  # a check that refuses: the route names what is wrong
            await self.app(scope, replay(body, receive, more), send)

    async def _client_credentials(
        self, scope: Scope, send: Send, res: Resources, client: clients.Client, form: dict[str, str]
    ) -> None:
        started = time.perf_counter()
        grants.check_confidential(client)
        answer, key, record = tokens.client_token(client, grants.client_credentials_scopes(form.get("scope", "")))
        s = res.settings
        ok, _ = await _ISSUE(
            lean_client(s.redis_url),
            [*_window_keys(scope, client.client_id), key],
            [_COUNT_TTL, s.oidc_rate_per_ip, s.oidc_rate_per_client, record, ACCESS_TTL],
        )
        if not ok:
            raise _Fallback  # over a limit: the route answers 429 (its guard counts this request once more)
        await send_body(send, 200, _ENCODE(answer), TOKEN_HEADERS)
        await _log_token_call(res, scope, client, "client_credentials", started)

    async def _authorization_code(
        self, scope: Scope, send: Send, res: Resources, client: clients.Client, form: dict[str, str]
    ) -> None:
        started = time.perf_counter()
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        if not grants.code_may_exist(code) or len(verifier) > grants.MAX_VERIFIER:
            raise _Fallback
        redirect_uri, s256 = form.get("redirect_uri", ""), grants.s256_of(verifier)
        s = res.settings
        reply = await _REDEEM(
            lean_client(s.redis_url),
            [*_window_keys(scope, client.client_id), code_key(code)],
            [_COUNT_TTL, s.oidc_rate_per_ip, s.oidc_rate_per_client, client.client_id, redirect_uri, s256],
        )
        if reply[0] != 1 or reply[1] != 2:  # over a limit ({0, nil}); unknown, used or mismatched (counts given back)
            raise _Fallback  # the route answers, the code untouched
        grant = grants.decode_code_grant(reply[2])
        # The grant's checks, as the route runs them. The script consumed the code only if they hold; should one added
        # here not be mirrored there, the refusal reaches the route, which finds the code used and revokes its family.
        grants.check_code(client, grant, redirect_uri, s256)
        answer = await tokens.issue_for_code(res, client, grant, ip=_ip(scope))
        await send_body(send, 200, _ENCODE(answer), TOKEN_HEADERS)
        await _log_token_call(res, scope, client, "authorization_code", started)

    async def _introspect(
        self, scope: Scope, send: Send, res: Resources, client: clients.Client, form: dict[str, str]
    ) -> None:
        s = res.settings
        ok, raw = await _LOOKUP(
            lean_client(s.redis_url),
            [*_window_keys(scope, client.client_id), tokens.access_key(form.get("token", ""))],
            [_COUNT_TTL, s.oidc_rate_per_ip, s.oidc_rate_per_client],
        )
        if not ok:
            raise _Fallback
        await send_body(send, 200, _ENCODE(introspection(tokens.decode_access(raw), s.issuer_url)), JSON_HEADERS)


_ENCODE = msgspec.json.Encoder().encode
