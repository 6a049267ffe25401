"""Migrations run safely from two replicas at once; the audit chain names edited, removed or forged rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core import audit
from core.migrate import discover, migrate
from core.resources import Resources


async def test_concurrent_migration_runs_apply_each_file_once(res: Resources) -> None:
    async with res.db.acquire() as a, res.db.acquire() as b:
        first, second = await asyncio.gather(migrate(a), migrate(b))
    assert first == [] and second == []  # everything was applied at start-up, exactly once
    rows = await res.db.fetch("SELECT package, version FROM core.schema_migrations")
    assert len(rows) == len({(r["package"], r["version"]) for r in rows}) == len(discover())


async def test_migrations_from_scratch_in_parallel(res: Resources) -> None:
    """Two runners on an empty database: one applies, the other waits and finds nothing left to do."""
    await res.db.execute("DROP DATABASE IF EXISTS szt_migrate_probe")
    await res.db.execute("CREATE DATABASE szt_migrate_probe")
    dsn = res.settings.database_url.replace("/postgres?", "/szt_migrate_probe?")
    c1, c2 = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        applied = await asyncio.gather(migrate(c1), migrate(c2))
        assert sorted(len(a) for a in applied) == [0, len(discover())]
        assert await c1.fetchval("SELECT count(*) FROM core.schema_migrations") == len(discover())
    finally:
        await c1.close()
        await c2.close()
        await res.db.execute("DROP DATABASE szt_migrate_probe")


async def test_audit_log_is_append_only_and_verifiable(res: Resources) -> None:
    seq = await audit.record(res.db, actor="admin", action="test.append", target="x", detail={"b": 2, "a": [1]})
    assert await audit.verify(res.db) == []
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await res.db.execute("UPDATE core.audit_log SET actor = 'mallory' WHERE seq = $1", seq)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await res.db.execute("DELETE FROM core.audit_log WHERE seq = $1", seq)


async def _as_superuser_bypassing_triggers(res: Resources, sql: str, *args: object) -> None:
    async with res.db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


@pytest.fixture
async def clean_audit(res: Resources) -> AsyncIterator[None]:
    """Each tamper test starts from an intact chain of its own and leaves an intact (empty) one behind."""

    async def reset() -> None:
        await _as_superuser_bypassing_triggers(res, "DELETE FROM core.audit_log")
        await res.db.execute("UPDATE core.audit_head SET seq = 0, hash = $1", audit.GENESIS)

    await reset()
    yield
    await reset()


@pytest.mark.usefixtures("clean_audit")
async def test_editing_one_row_is_named(res: Resources) -> None:
    seqs = [await audit.record(res.db, actor=f"user{i}", action="test.edit") for i in range(5)]
    await _as_superuser_bypassing_triggers(res, "UPDATE core.audit_log SET actor = 'mallory' WHERE seq = $1", seqs[2])
    findings = await audit.verify(res.db)
    assert [(f.seq, f.problem) for f in findings] == [(seqs[2], "changed")]


@pytest.mark.usefixtures("clean_audit")
async def test_rewriting_a_row_with_its_hash_is_named(res: Resources) -> None:
    seqs = [await audit.record(res.db, actor=f"user{i}", action="test.rehash") for i in range(4)]
    row = await res.db.fetchrow("SELECT * FROM core.audit_log WHERE seq = $1", seqs[1])
    assert row is not None
    forged = audit._chain(
        bytes(row["prev_hash"]),
        audit._canonical(
            row["seq"],
            row["at"],
            "mallory",
            row["action"],
            row["target"],
            row["result"],
            row["ip"],
            row["request_id"],
            row["detail"],
        ),
    )
    await _as_superuser_bypassing_triggers(
        res, "UPDATE core.audit_log SET actor = 'mallory', hash = $2 WHERE seq = $1", seqs[1], forged
    )
    assert [(f.seq, f.problem) for f in await audit.verify(res.db)] == [(seqs[1], "changed")]


@pytest.mark.usefixtures("clean_audit")
async def test_deleting_rows_is_named(res: Resources) -> None:
    seqs = [await audit.record(res.db, actor=f"user{i}", action="test.delete") for i in range(5)]
    await _as_superuser_bypassing_triggers(res, "DELETE FROM core.audit_log WHERE seq = $1", seqs[1])
    await _as_superuser_bypassing_triggers(res, "DELETE FROM core.audit_log WHERE seq = $1", seqs[4])
    findings = {(f.seq, f.problem) for f in await audit.verify(res.db)}
    assert (seqs[1], "missing") in findings and (seqs[4], "missing") in findings


@pytest.mark.usefixtures("clean_audit")
async def test_inserting_a_row_is_named(res: Resources) -> None:
    seqs = [await audit.record(res.db, actor=f"user{i}", action="test.insert") for i in range(3)]
    row = await res.db.fetchrow("SELECT * FROM core.audit_log WHERE seq = $1", seqs[-1])
    assert row is not None
    await res.db.execute(
        "INSERT INTO core.audit_log (seq, at, actor, action, prev_hash, hash) VALUES ($1, now(), 'x', 'y', $2, $2)",
        seqs[-1] + 1,
        bytes(row["hash"]),
    )
    findings = {(f.seq, f.problem) for f in await audit.verify(res.db)}
    assert (seqs[-1] + 1, "changed") in findings or (seqs[-1] + 1, "head-mismatch") in findings


@pytest.mark.usefixtures("clean_audit")
async def test_entries_written_in_one_batch_chain_like_single_ones(res: Resources) -> None:
    first = await audit.record(res.db, actor="single", action="test.batch")
    async with res.db.acquire() as conn:
        seqs = await audit.record_many(
            conn, [audit.Entry(actor=f"b{i}", action="test.batch", detail={"i": i, "z": [1]}) for i in range(4)]
        )
    last = await audit.record(res.db, actor="single", action="test.batch")
    assert seqs == [first + 1, first + 2, first + 3, first + 4] and last == first + 5
    assert await audit.verify(res.db) == []
    await _as_superuser_bypassing_triggers(res, "UPDATE core.audit_log SET actor = 'mallory' WHERE seq = $1", seqs[1])
    assert [(f.seq, f.problem) for f in await audit.verify(res.db)] == [(seqs[1], "changed")]
