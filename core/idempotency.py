"""`Idempotency-Key` handling that a route declares with `middleware=[idempotent()]`.

The first request with a key runs and its response (status, headers, body) is kept in Redis; a retry with the
same key and the same request gets the same response replayed; the same key with a different request is refused
(422); a retry while the first is still running is refused (409). Server errors are not kept, so they can be
retried. Keys are scoped by route and by the caller's credentials.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec
from litestar.middleware import DefineMiddleware

from core.observe import ASGIApp, Message, Receive, Scope, Send, current_request_id, send_body
from core.problems import PROBLEM_JSON, TYPE_BASE, Problem

_KEY = re.compile(rb"^[\x21-\x7e]{1,255}$")
HEADER = b"idempotency-key"


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
        chunks: list[bytes] = []
        more = True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body_in = b"".join(chunks)

        principal = hashlib.sha256(headers.get(b"authorization", b"") + b"|" + headers.get(b"cookie", b"")).hexdigest()
        redis_key = f"idem:{scope['method']}:{path}:{principal[:32]}:{key.decode()}"
        fingerprint = hashlib.sha256(
            scope["method"].encode() + b" " + path.encode() + b"?" + scope.get("query_string", b"") + b"\n" + body_in
        ).hexdigest()
        redis = scope["litestar_app"].state.resources.redis

        claimed = await redis.set(redis_key, msgspec.msgpack.encode(_Stored(fingerprint)), nx=True, ex=self.lock)
        if not claimed:
            raw = await redis.get(redis_key)
            stored = msgspec.msgpack.decode(raw, type=_Stored) if raw else None
            if stored is None:  # expired between the two calls; the client may simply retry
                status, body = _problem(
                    409,
                    "idempotency-in-progress",
                    "Request with this key in progress",
                    "相同幂等键的请求正在处理",
                    "retry shortly",
                    path,
                )
            elif stored.fingerprint != fingerprint:
                status, body = _problem(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused with another request",
                    "幂等键已用于不同的请求",
                    "use a new Idempotency-Key for a new request",
                    path,
                )
            elif not stored.done:
                status, body = _problem(
                    409,
                    "idempotency-in-progress",
                    "Request with this key in progress",
                    "相同幂等键的请求正在处理",
                    "retry shortly",
                    path,
                )
            else:
                replay = [(k.encode(), v.encode()) for k, v in stored.headers]
                await send_body(send, stored.status, stored.body, [*replay, (b"idempotent-replayed", b"true")])
                return
            await send_body(send, status, body, [(b"content-type", PROBLEM_JSON.encode())])
            return

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body_in, "more_body": False}
            return await receive()

        captured = _Stored(fingerprint)
        out_chunks: list[bytes] = []

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = [
                    (k.decode(), v.decode())
                    for k, v in message.get("headers", ())
                    if k.lower() not in (b"content-length", b"x-request-id", b"set-cookie")
                ]
            elif message["type"] == "http.response.body":
                out_chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            await redis.delete(redis_key)
            raise
        if captured.status >= 500 or captured.status == 0:
            await redis.delete(redis_key)
            return
        captured.body = b"".join(out_chunks)
        captured.done = True
        await redis.set(redis_key, msgspec.msgpack.encode(captured), ex=self.ttl)


def idempotent(ttl_seconds: int = 86_400) -> Any:
    return DefineMiddleware(IdempotencyMiddleware, ttl_seconds=ttl_seconds)  # type: ignore[arg-type]
