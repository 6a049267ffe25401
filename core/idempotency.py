"""`Idempotency-Key` handling that a route declares with `middleware=[idempotent()]`, after the IETF
`Idempotency-Key` HTTP header draft and common practice (Stripe).

- Scope: a key belongs to one caller — the SHA-256 of its `Authorization` header, or of its `Cookie` header when it
  signs in by cookie — and to one method and path. Another caller's identical key is another key.
- Stored: only answers of requests that were executed for a caller that presented credentials and succeeded
  (status 2xx). A retry with the same key and the same request gets that answer replayed (`Idempotent-Replayed:
  true`); the same key with another request is refused (422).
- Not stored: every 4xx — validation failures (400, 422), 401, 403, 404, 409, 413, 415, 429 and any other refusal
  leaves nothing behind, so a retry (after signing in, after a fix) runs again — and every 5xx (retryable). A
  request without credentials (an enrolment) is never stored either: its key only guards against a concurrent
  duplicate while it runs.
- Concurrency: a second request with the key while the first runs gets 409 with `Retry-After`.
- Cap: a caller holds at most `idempotency_keys_per_caller` stored answers at a time (429 with `Retry-After` beyond).
- At rest: the whole record (fingerprint, status, headers, body — tokens and personal data included) is encrypted
  with SM4-GCM under the field keyring (core.fieldcrypt), bound to its Redis key; Redis holds no answer in clear.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Annotated, Any

import msgspec
from litestar.middleware import DefineMiddleware
from litestar.params import Parameter

from core.asgi_body import read_body, replay
from core.observe import ASGIApp, Message, Receive, Scope, Send, current_request_id, send_body
from core.problems import PROBLEM_JSON, TYPE_BASE, Problem
from core.redis_client import LuaScript

KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # 1 to 255 visible ASCII characters, as the middleware enforces
_KEY = re.compile(KEY_PATTERN.encode())
_KEY_DOC = "1 to 255 visible ASCII characters; a retry with the same key and body gets the first answer"

# The header as an idempotent route's schema states it (what the middleware enforces): every handler behind
# `middleware=[idempotent()]` takes `idempotency_key: IdempotencyKey = None` so its OpenAPI operation declares it.
IdempotencyKey = Annotated[
    str | None,
    Parameter(
        header="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=KEY_PATTERN,
        required=False,
        description=_KEY_DOC,
    ),
]
HEADER = b"idempotency-key"
IN_PROGRESS_RETRY_AFTER = 1
_CONTEXT = "core.idempotency"

# Claim a key unless the caller already holds `cap` stored answers: 1 claimed, 0 taken, -1 over the cap.
_CLAIM = LuaScript("""
if ARGV[3] ~= '' then
  local n = tonumber(redis.call('GET', KEYS[2]) or '0')
  if n >= tonumber(ARGV[3]) then return -1 end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return 0
""")
# Keep an answer and count it against the caller.
_STORE = LuaScript("""
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return n
""")


class _Stored(msgspec.Struct):
    fingerprint: str
    status: int = 0
    headers: list[tuple[str, str]] = []
    body: bytes = b""
    done: bool = False


def _problem(status: int, slug: str, title: str, title_zh: str, detail: str, path: str) -> tuple[int, bytes]:
    doc = Problem(
        type=TYPE_BASE + slug,
        title=title,
        title_zh=title_zh,
        status=status,
        detail=detail,
        instance=path,
        request_id=current_request_id(),
    )
    return status, msgspec.json.encode(doc)


def stored_status(status: int) -> bool:
    """Which answers are kept for replay: executed and succeeded (see the module docstring)."""
    return 200 <= status < 300


def _seal(fields: Any, redis_key: str, record: _Stored) -> bytes:
    plain = base64.b64encode(msgspec.msgpack.encode(record)).decode()
    return str(fields.encrypt(plain, context=f"{_CONTEXT}:{redis_key}")).encode()


def _open(fields: Any, redis_key: str, raw: bytes) -> _Stored | None:
    try:
        plain = fields.decrypt(raw.decode(), context=f"{_CONTEXT}:{redis_key}")
        return msgspec.msgpack.decode(base64.b64decode(plain), type=_Stored)
    except Exception:  # unreadable (another keyring, tampered): as if absent
        return None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, ttl_seconds: int = 86_400, lock_seconds: int = 60) -> None:
        self.app = app
        self.ttl = ttl_seconds
        self.lock = lock_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        key = headers.get(HEADER)
        if scope["type"] != "http" or key is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not _KEY.match(key):
            status, body = _problem(
                400,
                "validation",
                "Invalid request",
                "请求参数无效",
                "Idempotency-Key: 1 to 255 visible ASCII characters",
                path,
            )
            await send_body(send, status, body, [(b"content-type", PROBLEM_JSON.encode())])
            return

        # Read the whole body (already capped by the app's request_max_body_size upstream of the handler).
        body_in, _ = await read_body(receive)

        credential = headers.get(b"authorization") or headers.get(b"cookie") or b""
        principal = hashlib.sha256(b"szt-idem|" + credential).hexdigest()[:32] if credential else "anonymous"
        redis_key = f"idem:{scope['method']}:{path}:{principal}:{key.decode()}"
        count_key = f"idem-n:{principal}"
        fingerprint = hashlib.sha256(
            scope["method"].encode() + b" " + path.encode() + b"?" + scope.get("query_string", b"") + b"\n" + body_in
        ).hexdigest()
        state = scope["litestar_app"].state
        redis, fields = state.resources.redis, state.resources.fields
        cap = state.settings.idempotency_keys_per_caller if credential else 0

        claimed = await _CLAIM(
            redis, [redis_key, count_key], [_seal(fields, redis_key, _Stored(fingerprint)), self.lock, cap or ""]
        )
        if claimed != 1:
            extra: list[tuple[bytes, bytes]] = []
            if claimed == -1:
                status, body = _problem(
                    429,
                    "idempotency-keys-exhausted",
                    "Too many Idempotency-Keys in use",
                    "幂等键数量超出上限",
                    f"at most {cap} stored answers per caller within {self.ttl} s",
                    path,
                )
                extra = [(b"retry-after", str(self.lock).encode())]
                await send_body(send, status, body, [(b"content-type", PROBLEM_JSON.encode()), *extra])
                return
            raw = await redis.get(redis_key)
            stored = _open(fields, redis_key, raw) if raw else None
            if stored is None or (not stored.done and stored.fingerprint == fingerprint):
                # Running (or gone between the two calls): the client retries shortly.
                status, body = _problem(
                    409,
                    "idempotency-in-progress",
                    "Request with this key in progress",
                    "相同幂等键的请求正在处理",
                    "retry shortly",
                    path,
                )
                extra = [(b"retry-after", str(IN_PROGRESS_RETRY_AFTER).encode())]
            elif stored.fingerprint != fingerprint:
                status, body = _problem(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused with another request",
                    "幂等键已用于不同的请求",
                    "use a new Idempotency-Key for a new request",
                    path,
                )
            else:
                stored_headers = [(k.encode(), v.encode()) for k, v in stored.headers]
                await send_body(send, stored.status, stored.body, [*stored_headers, (b"idempotent-replayed", b"true")])
                return
            await send_body(send, status, body, [(b"content-type", PROBLEM_JSON.encode()), *extra])
            return

        replay_receive = replay(body_in, receive)
        captured = _Stored(fingerprint)
        out_chunks: list[bytes] = []
        keep = False
        settled = False  # the claim released or the answer stored, before the client can see the end of it

        async def capture_send(message: Message) -> None:
            nonlocal keep, settled
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                keep = bool(credential) and stored_status(captured.status)
                if not keep:  # released first, so an immediate retry runs instead of meeting a 409
                    settled = True
                    await redis.delete(redis_key)
                captured.headers = [
                    (k.decode(), v.decode())
                    for k, v in message.get("headers", ())
                    if k.lower() not in (b"content-length", b"x-request-id", b"set-cookie")
                ]
            elif message["type"] == "http.response.body" and keep:
                out_chunks.append(message.get("body", b""))
                if not message.get("more_body", False):  # stored before the last byte leaves: a retry replays it
                    captured.body = b"".join(out_chunks)
                    captured.done = True
                    settled = True
                    await _STORE(redis, [redis_key, count_key], [_seal(fields, redis_key, captured), self.ttl])
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            if not settled:  # once released, the key may already be another request's claim
                await redis.delete(redis_key)
            raise
        if not settled:  # no answer at all
            await redis.delete(redis_key)


def idempotent(ttl_seconds: int = 86_400) -> Any:
    return DefineMiddleware(IdempotencyMiddleware, ttl_seconds=ttl_seconds)  # type: ignore[arg-type]
