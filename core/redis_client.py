"""Redis client (redis.asyncio) from a redis:// or unix:// URL."""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from core.resp import LeanRedis, RespError

Redis = aioredis.Redis


MAX_CONNECTIONS = 100  # per process; redis-py's own default, which it enforces by raising "Too many connections"
POOL_WAIT = 10.0  # seconds a command waits for a free connection before it fails


def create_redis(url: str) -> Redis:
    """A client whose commands wait for a free pooled connection: with redis-py's default pool, a burst of more than
    100 concurrent requests in one process (500 verifications at once over two workers) failed with
    MaxConnectionsError instead of queueing for a few milliseconds."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT,
        decode_responses=False,
        health_check_interval=30,
        socket_timeout=5,
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes the pool


def as_bytes(value: bytes | str) -> bytes:
    """redis-py types replies as bytes | str; ours are bytes (decode_responses=False)."""
    return value if isinstance(value, bytes) else value.encode()


class LuaScript:
    """A Lua script sent once and then called by its SHA1 (EVALSHA), reloaded if the server forgot it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, redis: Redis | LeanRedis, keys: list[str], args: list[object] | None = None) -> Any:
        argv = [*keys, *(args or [])]
        if isinstance(redis, LeanRedis):
            try:
                return await redis.execute("EVALSHA", self.sha, len(keys), *argv)
            except RespError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                return await redis.execute("EVAL", self.source, len(keys), *argv)
        try:
            return await redis.evalsha(self.sha, len(keys), *argv)  # type: ignore[arg-type]
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *argv)  # type: ignore[arg-type]
