"""Redis client (redis.asyncio) from a redis:// or unix:// URL."""

from __future__ import annotations

import redis.asyncio as aioredis

Redis = aioredis.Redis


def create_redis(url: str) -> Redis:
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_timeout=5)


def as_bytes(value: bytes | str) -> bytes:
    """redis-py types replies as bytes | str; ours are bytes (decode_responses=False)."""
    return value if isinstance(value, bytes) else value.encode()
