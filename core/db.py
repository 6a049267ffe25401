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


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with. asyncpg still rolls back an open transaction first; its default
    reset query (unlock advisory locks, CLOSE ALL, UNLISTEN *, RESET ALL) would be one more round trip on every
    release, for session state this code base never leaves behind: settings are SET LOCAL, advisory locks are
    transaction-scoped or unlocked in a `finally`, cursors live in transactions, and nothing LISTENs on a pooled
    connection."""


async def create_pool(dsn: str, *, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
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
