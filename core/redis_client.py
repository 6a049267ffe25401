"""Redis client (redis.asyncio) from a redis:// or unix:// URL."""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from core.resp import LeanRedis, RespError

Redis = aioredis.Redis


def create_redis(url: str) -> Redis:
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_timeout=5)


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
