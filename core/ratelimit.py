"""Redis-backed fixed-window rate limits that any route declares as a guard: `guards=[rate_limit(5, 60)]`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from core.problems import ProblemError
from core.redis_client import LuaScript
from core.settings import Settings

# One round trip, atomic, and valid on Redis 6.2 (the embedded server), which lacks EXPIRE ... NX.
_INCR_WITH_TTL = LuaScript("""
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
""")
KeyFunc = Callable[[ASGIConnection[Any, Any, Any, Any]], str]


async def count(redis: Any, key: str, ttl_seconds: int) -> int:
    """Add one to a counter that expires `ttl_seconds` after its first increment; returns the new count."""
    n: int = await _INCR_WITH_TTL(redis, [key], [ttl_seconds])
    return n


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address; behind a trusted proxy (SZT_TRUSTED_PROXIES) the forwarded one, since core.edge has
    rewritten the scope's client by then (core.forwarded.client_address)."""
    return connection.client.host if connection.client else "unknown"


def window_key(bucket: str, per_seconds: int) -> str:
    """The counter of `bucket`'s current window (a raw ASGI layer counting alongside `hit` uses the same key)."""
    return f"rl:{bucket}:{int(time.time()) // per_seconds}"


async def hit(redis: Any, bucket: str, limit: int, per_seconds: int) -> None:
    """Count one request in `bucket`'s current window; raise a 429 problem when over `limit`."""
    if await count(redis, window_key(bucket, per_seconds), per_seconds + 1) > limit:
        retry_after = per_seconds - int(time.time()) % per_seconds
        raise ProblemError(
            429,
            "rate-limited",
            "Too many requests",
            "请求过于频繁",
            f"at most {limit} requests per {per_seconds} s; retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def rate_limit(
    limit: int | Callable[[Settings], int], per_seconds: int, *, key: KeyFunc = client_ip, name: str = ""
) -> Any:
    """A guard allowing `limit` requests (or `limit(settings)`) per `per_seconds` window for each value of `key`."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        state = connection.app.state
        n = limit(state.settings) if callable(limit) else limit
        await hit(state.resources.redis, f"{name or handler.handler_name}:{key(connection)}", n, per_seconds)

    return guard
