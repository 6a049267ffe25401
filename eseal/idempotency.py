"""`Idempotency-Key` for the signing API, scoped by the authenticated app (APPCode), not by the Authorization
header: an HMAC-SM3 request carries a fresh nonce and signature on every retry, so the header never repeats.

Only answers of requests that ran for the authenticated app are kept (200 results; never 401/403/429 or
validation failures, which the retry may fix), encrypted (SM4-GCM, the field keyring: a sealed document may hold
personal data), for 24 hours, and only up to 8 MB. The same key with another body is refused (422); a retry while
the first runs gets 409 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response

from core.problems import ProblemError
from core.resources import Resources

T = TypeVar("T")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
TTL = 86_400
LOCK = 120
MAX_STORED = 8 * 1024 * 1024


async def run(
    request: Request[Any, Any, Any], res: Resources, app_code: str, work: Callable[[], Awaitable[T]]
) -> T | Response[bytes]:
    key = request.headers.get("idempotency-key")
    if key is None:
        return await work()
    if not _KEY.match(key):
        raise ProblemError(
            400,
            "validation",
            "Invalid request",
            "请求参数无效",
            "Idempotency-Key: 1 to 255 visible ASCII characters",
            field="Idempotency-Key",
        )
    body = await request.body()
    fingerprint = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
    redis_key = f"eseal:idem:{request.url.path}:{app_code}:{key}"
    context = f"eseal-idem:{app_code}"
    claimed = await res.redis.set(redis_key, msgspec.json.encode({"f": fingerprint}), nx=True, ex=LOCK)
    if not claimed:
        raw = await res.redis.get(redis_key)
        stored = msgspec.json.decode(raw) if raw else {}
        if stored.get("f", fingerprint) != fingerprint:
            raise ProblemError(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused with another request",
                "幂等键已用于不同的请求",
                "use a new Idempotency-Key for a new request",
            )
        if "a" not in stored:
            raise ProblemError(
                409,
                "idempotency-in-progress",
                "Request with this key in progress",
                "相同幂等键的请求正在处理",
                "retry shortly",
                headers={"Retry-After": "2"},
            )
        if not stored["a"]:
            raise ProblemError(
                409,
                "idempotency-not-replayable",
                "Answer too large to replay",
                "应答过大，无法重放",
                "the first request with this key succeeded; its answer was too large to keep",
            )
        answer = res.fields.decrypt(stored["a"], context=context).encode()
        return Response(
            answer, media_type="application/json", headers={"Idempotent-Replayed": "true", "Cache-Control": "no-store"}
        )
    try:
        result = await work()
    except BaseException:
        await res.redis.delete(redis_key)
        raise
    encoded = msgspec.json.encode(result)
    if len(encoded) <= MAX_STORED:
        sealed = res.fields.encrypt(encoded.decode(), context=context)
        await res.redis.set(redis_key, msgspec.json.encode({"f": fingerprint, "a": sealed}), ex=TTL)
    else:  # too large to keep: the key stays claimed (a retry is refused rather than sealed twice)
        await res.redis.set(redis_key, msgspec.json.encode({"f": fingerprint, "a": ""}), ex=TTL)
    return result
