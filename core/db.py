"""asyncpg pool with JSON codecs and UTC sessions, and the connection types repositories accept."""

from __future__ import annotations

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ,
            encoder=lambda v: msgspec.json.encode(v).decode(),
            decoder=msgspec.json.decode,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, *, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        init=_init_connection,
        command_timeout=30,
        server_settings={"timezone": "UTC", "application_name": "szt"},
    )
    assert pool is not None
    return pool


Record = asyncpg.Record
Pool = asyncpg.Pool
# What `pool.acquire()` yields and what a bare connect gives: repositories accept either.
Connection = asyncpg.Connection | PoolConnectionProxy
# Anything that can run a query: the pool itself or one connection.
Executor = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy

__all__ = ["Connection", "Executor", "Pool", "Record", "create_pool"]
