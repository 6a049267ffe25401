"""The shared resources of a process: settings, PostgreSQL pool, Redis, HTTP client to external parties."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from core.db import Pool, create_pool
from core.fieldcrypt import FieldKeyring
from core.redis_client import Redis, create_redis
from core.settings import Settings


@dataclass
class Resources:
    settings: Settings
    db: Pool
    redis: Redis
    http: httpx.AsyncClient
    fields: FieldKeyring

    @classmethod
    async def open(cls, settings: Settings) -> Resources:
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("DATABASE_URL and REDIS_URL must be set (szt starts embedded ones when unset)")
        db = await create_pool(settings.database_url, max_size=settings.db_pool_max)
        redis = create_redis(settings.redis_url)
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), follow_redirects=False)
        fields = FieldKeyring.load_or_create(settings.var_path / "keys" / "field-keys", settings.field_keys)
        return cls(settings=settings, db=db, redis=redis, http=http, fields=fields)

    async def close(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()
        await self.db.close()
