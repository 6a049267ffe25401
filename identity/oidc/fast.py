"""The OAuth hot paths of trusted back ends — client credentials and authorization-code redemption at the token
endpoint, and token introspection — answered by a raw ASGI layer in front of identity's Litestar app, in one Redis
round trip each (a redemption's refresh row, audit entry and access token then join identity.oidc.tokens' group commit),
over the auto-pipelined connection of core.resp.

Only the plain case is taken here: POST of a small form with exactly the expected fields, from a client whose
client_secret_basic header authenticated within the last 30 s (identity.clients cache), and for a code: known,
unused, issued to this client for this redirect URI, with a matching PKCE verifier. Everything else — the first
request of a client, other grants, other authentication methods, malformed or oversized bodies, a replayed or
mismatched code, a rate limit reached — goes to the Litestar routes of identity/oidc/routes.py with the body replayed
(and the code untouched), so every rule and every error answer stays in one place. The fast path applies the same
rules as those routes: the per-IP and per-client rate limit counters (same keys, same windows: core.ratelimit),
tokens stored and audited as identity.oidc.tokens stores them, the app-integration log entry of a token call, and the
same response bodies and headers."""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from core.observe import ASGIApp, Receive, Scope, Send, send_body
from core.redis_client import LuaScript, as_bytes
from core.resources import Resources
from core.resp import lean_client
from identity import clients
from identity.oidc import tokens
from identity.oidc.authorization import CodeGrant, code_key
from identity.oidc.tokens import ACCESS_TTL, AccessToken, TokenResponse, introspection, new_access_value
from orgs import logs

MAX_BODY = 4096
FORM = b"application/x-www-form-urlencoded"
CC_SCOPES = ("codes:verify", "status:read", "affairs", "eseal")  # what client_credentials grants (identity.oidc.tokens)
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
# match (tokens.REDEEM_LUA, strict); anything else gives the counts back and leaves the code to the token route,
# whose guard counts the request then.
_REDEEM = LuaScript(
    _COUNT_AND
    + tokens.REDEEM_LUA
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
_INTROSPECT_FIELDS = {"token", "token_type_hint"}
_CC_FIELDS = {"grant_type", "scope"}
_TOKEN_FIELDS = _CC_FIELDS | {"code", "redirect_uri", "code_verifier"}


class _Fallback(Exception):
    """Not the plain case: the Litestar route answers."""


def _header(scope: Scope, name: bytes) -> bytes:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return b""


def _form(body: bytes, allowed: set[str]) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Fallback from exc
    form = dict(pairs)
    if len(form) != len(pairs) or not set(form) <= allowed:
        raise _Fallback  # repeated or unexpected fields: the full route says what is wrong
    return form


def _ip(scope: Scope) -> str:
    return str(scope["client"][0]) if scope.get("client") else ""


def _window_keys(scope: Scope, client_id: str) -> list[str]:
    window = int(time.time()) // 60
    return [f"rl:oidc-ip:{_ip(scope) or 'unknown'}:{window}", f"rl:oidc-client:{client_id}:{window}"]


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
    """ASGI: POST /identity/token (client_credentials) and /identity/introspect in their plain case."""

    def __init__(self, app: Any, mount: str) -> None:
        self.app: ASGIApp = app
        self.token_path, self.introspect_path = f"/{mount}/token", f"/{mount}/introspect"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope["method"] != "POST" or path not in (self.token_path, self.introspect_path):
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive)
        try:
            if more or len(body) > MAX_BODY or not _header(scope, b"content-type").startswith(FORM):
                raise _Fallback
            client = clients.basic_cached(_header(scope, b"authorization"))
            if client is None or client.auth_method == "none" or client.status != "active":
                raise _Fallback
            res: Resources = self.app.state.resources  # type: ignore[attr-defined]
            if path == self.token_path:
                form = _form(body, _TOKEN_FIELDS)
                grant = form.get("grant_type")
                if grant == "client_credentials":
                    await self._client_credentials(scope, send, res, client, form)
                elif grant == "authorization_code":
                    await self._authorization_code(scope, send, res, client, form)
                else:
                    raise _Fallback
            else:
                await self._introspect(scope, send, res, client, body)
        except _Fallback:
            await self.app(scope, _replay(body, receive, more), send)

    async def _client_credentials(
        self, scope: Scope, send: Send, res: Resources, client: clients.Client, form: dict[str, str]
    ) -> None:
        started = time.perf_counter()
        if not set(form) <= _CC_FIELDS:
            raise _Fallback
        now = int(time.time())
        scopes = [s for s in form.get("scope", "").split() if s in CC_SCOPES]
        value, key = new_access_value()
        token = AccessToken(client.client_id, scopes, now + ACCESS_TTL, now)
        s = res.settings
        ok, _ = await _ISSUE(
            lean_client(res.settings.redis_url),
            [*_window_keys(scope, client.client_id), key],
            [61, s.oidc_rate_per_ip, s.oidc_rate_per_client, msgspec.msgpack.encode(token), ACCESS_TTL],
        )
        if not ok:
            raise _Fallback  # over a limit: the route answers 429 (its guard counts this request once more)
        await send_body(send, 200, _ENCODE(TokenResponse(value, "Bearer", ACCESS_TTL, " ".join(scopes))), TOKEN_HEADERS)
        await _log_token_call(res, scope, client, "client_credentials", started)

    async def _authorization_code(
        self, scope: Scope, send: Send, res: Resources, client: clients.Client, form: dict[str, str]
    ) -> None:
        started = time.perf_counter()
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        if not code or len(code) > 200 or len(verifier) > 128:
            raise _Fallback
        s = res.settings
        reply = await _REDEEM(
            lean_client(res.settings.redis_url),
            [*_window_keys(scope, client.client_id), code_key(code)],
            [
                61,
                s.oidc_rate_per_ip,
                s.oidc_rate_per_client,
                client.client_id,
                form.get("redirect_uri", ""),
                tokens.pkce_s256(verifier) if verifier else "",
            ],
        )
        if reply[0] != 1 or reply[1] != 2:  # over a limit ({0, nil}); unknown, used or mismatched (counts given back)
            raise _Fallback  # the route answers, the code untouched
        grant = msgspec.msgpack.decode(as_bytes(reply[2]), type=CodeGrant)
        answer = await tokens.issue_for_code(res, client, grant, ip=_ip(scope))
        await send_body(send, 200, _ENCODE(answer), TOKEN_HEADERS)
        await _log_token_call(res, scope, client, "authorization_code", started)

    async def _introspect(self, scope: Scope, send: Send, res: Resources, client: clients.Client, body: bytes) -> None:
        form = _form(body, _INTROSPECT_FIELDS)
        token = form.get("token", "")
        key = (
            f"oat:{hashlib.sha256(token.encode()).hexdigest()}"
            if token.startswith("oat_") and len(token) <= 100
            else ""
        )
        s = res.settings
        ok, raw = await _LOOKUP(
            lean_client(res.settings.redis_url),
            [*_window_keys(scope, client.client_id), key],
            [61, s.oidc_rate_per_ip, s.oidc_rate_per_client],
        )
        if not ok:
            raise _Fallback
        access = msgspec.msgpack.decode(as_bytes(raw), type=AccessToken) if raw else None
        if access is not None and access.exp <= time.time():
            access = None  # as tokens.lookup: an expired record is no token
        await send_body(send, 200, _ENCODE(introspection(access, s.issuer_url)), JSON_HEADERS)


_ENCODE = msgspec.json.Encoder().encode


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The body read so far and whether the server has more: reading stops past MAX_BODY (the route then applies
    its own limits to the whole body)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
        if not more or size > MAX_BODY:
            return b"".join(chunks), more


def _replay(body: bytes, receive: Receive, more: bool) -> Receive:
    """A receive() that first gives back what the fast path read, then hands over to the server's."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed
