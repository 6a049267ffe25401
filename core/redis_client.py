"""Redis client (redis.asyncio) from a redis:// or unix:// URL."""

from __future__ import annotations

import redis.asyncio as aioredis

Redis = aioredis.Redis


def create_redis(url: str) -> Redis:
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_timeout=5)
