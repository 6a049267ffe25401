"""The operation log is hash-chained with SM3 and guarded like the audit log: the database refuses changes, a row
altered behind the guard is named by verify, the chain verifies across the archive cut, rows older than the chain
are sealed by the migration's step, and an archived month downloads with hashes that check against the docs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from gmssl import func, sm3  # an SM3 of its own, independent of core.crypto

from core.migrate import apply, discover, migrate
from core.resources import Resources
from orgs import logs, op_archive
from tests.admin_helpers import platform_admin


async def _op(res: Resources, action: str, target: str = "") -> int:
    await logs.record_op(
        res,
        principal=None,
        username="chain-test",
        ip="10.1.2.3",
        method="POST",
        path="/admin/v1/test",
        action=action,
        target=target,
        status=201,
        reason="",
    )
    seq = await res.db.fetchval("SELECT max(seq) FROM orgs.op_log WHERE action = $1", action)
    assert seq is not None
    return int(seq)


async def _behind_the_guard(res: Resources, sql: str, *args: object, table: str = "op_log") -> None:
    """As the superuser: the guard trigger disabled, the change made, the trigger enabled, in one transaction (so
    no other session ever finds the table unguarded)."""
    async with res.db.acquire() as conn, conn.transaction():
        await conn.execute(f"ALTER TABLE orgs.{table} DISABLE TRIGGER {table}_no_update")
        await conn.execute(sql, *args)
        await conn.execute(f"ALTER TABLE orgs.{table} ENABLE TRIGGER {table}_no_update")


async def test_update_delete_and_truncate_are_refused_by_the_database(res: Resources) -> None:
    seq = await _op(res, "test.chain.guard")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await res.db.execute("UPDATE orgs.op_log SET username = 'mallory' WHERE seq = $1", seq)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await res.db.execute("UPDATE orgs.op_log SET hash = NULL, prev_hash = NULL WHERE seq = $1", seq)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await res.db.execute("DELETE FROM orgs.op_log WHERE seq = $1", seq)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await res.db.execute("TRUNCATE orgs.op_log")
    for table in ("op_log_archive", "op_log_archives"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await res.db.execute(f"DELETE FROM orgs.{table}")  # noqa: S608 (constant)
    assert await res.db.fetchval("SELECT username FROM orgs.op_log WHERE seq = $1", seq) == "chain-test"
    assert await logs.OP_CHAIN.verify(res.db) == []


async def test_a_row_altered_behind_the_guard_is_named(res: Resources) -> None:
    seqs = [await _op(res, "test.chain.tamper", f"t{i}") for i in range(4)]
    assert await logs.OP_CHAIN.verify(res.db) == []
    before = await res.db.fetchval("SELECT reason FROM orgs.op_log WHERE seq = $1", seqs[1])
    await _behind_the_guard(res, "UPDATE orgs.op_log SET reason = 'nothing happened' WHERE seq = $1", seqs[1])
    try:
        assert [(f.seq, f.problem) for f in await logs.OP_CHAIN.verify(res.db)] == [(seqs[1], "changed")]
    finally:
        await _behind_the_guard(res, "UPDATE orgs.op_log SET reason = $2 WHERE seq = $1", seqs[1], before)
    assert await logs.OP_CHAIN.verify(res.db) == []

    # a row removed behind the guard is named missing (and put back as it was)
    row = await res.db.fetchrow("SELECT * FROM orgs.op_log WHERE seq = $1", seqs[2])
    assert row is not None
    await _behind_the_guard(res, "DELETE FROM orgs.op_log WHERE seq = $1", seqs[2])
    try:
        assert [(f.seq, f.problem) for f in await logs.OP_CHAIN.verify(res.db)] == [(seqs[2], "missing")]
    finally:
        cols = list(row.keys())
        await res.db.execute(
            f"INSERT INTO orgs.op_log ({', '.join(cols)}) "  # noqa: S608 (the table's own column names)
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})",
            *row.values(),
        )
    assert await logs.OP_CHAIN.verify(res.db) == []


def _old_rows(month: datetime, n: int) -> list[tuple[Any, ...]]:
    """Entries as they were written in an old month (the writer of that time stamped them then)."""
    return [
        (
            month.replace(day=1 + i, hour=8, microsecond=123456 + i),
            uuid.uuid4(),
            None if i % 2 else uuid.uuid4(),
            f"历史{i}",
            "1.32",
            "192.0.2.7",
            "PUT",
            "/admin/v1/apps/x",
            "catalog.app.update",
            f"app-{i}",
            "ok" if i % 3 else "fail",
            200 if i % 3 else 409,
            "" if i % 3 else 'conflict: "already" \\ 已存在\n',
            f"req-{i}",
        )
        for i in range(n)
    ]


async def _write_old_month(res: Resources, month: datetime, n: int) -> datetime:
    """`n` entries of `month` (each test its own: a run has a database of its own)."""
    assert not await op_archive.exists(res, month.date())
    async with res.db.acquire() as conn, conn.transaction():
        await logs.seal_legacy(conn)
        await logs.OP_CHAIN.append_locked(conn, _old_rows(month, n))
    return month


async def test_the_chain_verifies_across_an_archive_cut(res: Resources) -> None:
    await _op(res, "test.chain.before-cut")
    month = await _write_old_month(res, datetime(2019, 5, 1, tzinfo=UTC), 5)
    after = await _op(res, "test.chain.after-cut")
    moved = await op_archive.archive(res)
    assert month.date() in moved
    assert await res.db.fetchval("SELECT count(*) FROM orgs.op_log WHERE at < now() - interval '2 years'") == 0
    assert await res.db.fetchval("SELECT count(*) FROM orgs.op_log WHERE seq = $1", after) == 1  # still online
    listed = {m.month: m for m in (await op_archive.months(res)).items}[month.strftime("%Y-%m")]
    assert listed.rows == 5 and listed.last_seq - listed.first_seq == 4
    assert await logs.OP_CHAIN.verify(res.db) == []  # archive + online, one chain

    # an archived row altered behind the archive's guard is named too
    target = await res.db.fetchval("SELECT target FROM orgs.op_log_archive WHERE seq = $1", listed.first_seq + 1)
    forge = "UPDATE orgs.op_log_archive SET target = $2 WHERE seq = $1"
    await _behind_the_guard(res, forge, listed.first_seq + 1, "forged", table="op_log_archive")
    try:
        assert [(f.seq, f.problem) for f in await logs.OP_CHAIN.verify(res.db)] == [(listed.first_seq + 1, "changed")]
    finally:
        await _behind_the_guard(res, forge, listed.first_seq + 1, target, table="op_log_archive")
    assert await logs.OP_CHAIN.verify(res.db) == []


def _sm3_hex(data: bytes) -> str:
    return str(sm3.sm3_hash(func.bytes_to_list(data)))


# The body of docs/domains/orgs.md, "What is hashed", in its order.
FIELDS = "at id admin_id username org_path ip method path action target result status reason request_id".split()


def _check_month(lines: Sequence[dict[str, Any]], prev_hash: str, last_hash: str) -> None:
    prev = prev_hash
    for row in lines:
        assert row["prev_hash"] == prev
        body = json.dumps([row["seq"], *(row[f] for f in FIELDS)], ensure_ascii=False, separators=(",", ":"))
        assert _sm3_hex(bytes.fromhex(row["prev_hash"]) + body.encode()) == row["hash"], row["seq"]
        prev = row["hash"]
    assert prev == last_hash


async def test_an_archived_month_downloads_and_its_hashes_verify(
    res: Resources, http: httpx.Client, var_dir: Path
) -> None:
    month = await _write_old_month(res, datetime(2020, 11, 1, tzinfo=UTC), 7)
    assert month.date() in await op_archive.archive(res)
    boss = platform_admin(http, var_dir)
    key = month.strftime("%Y-%m")

    r = http.get("/admin/v1/op-logs/archives", headers=boss)
    assert r.status_code == 200, r.text
    listed = {m["month"]: m for m in r.json()["items"]}[key]
    assert r.json()["online_months"] == 24 and listed["rows"] == 7

    r = http.get(f"/admin/v1/op-logs/archives/{key}", headers=boss)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert f"op-log-{key}.jsonl" in r.headers["content-disposition"]
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [line["seq"] for line in lines] == list(range(listed["first_seq"], listed["last_seq"] + 1))
    assert lines[0]["at"] == month.replace(hour=8, microsecond=123456).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert "已存在" in lines[0]["reason"] and lines[1]["admin_id"] is None
    _check_month(lines, listed["prev_hash"], listed["last_hash"])
    with pytest.raises(AssertionError):  # the check does catch a changed field
        _check_month([{**lines[0], "target": "x"}, *lines[1:]], listed["prev_hash"], listed["last_hash"])

    # the download is itself an operation-log entry; no token, no archive; unknown month, 404; bad month, 400
    entry = await res.db.fetchrow(
        "SELECT * FROM orgs.op_log WHERE action = 'logs.export.operations.archive' ORDER BY seq DESC LIMIT 1"
    )
    assert entry is not None and entry["username"] == "admin" and entry["hash"] is not None
    assert http.get(f"/admin/v1/op-logs/archives/{key}").status_code == 401
    assert http.get("/admin/v1/op-logs/archives/1970-01", headers=boss).status_code == 404
    assert http.get("/admin/v1/op-logs/archives/2020-13", headers=boss).status_code == 400
    assert await logs.OP_CHAIN.verify(res.db) == []


async def test_rows_written_before_the_chain_are_sealed_from_the_genesis(res: Resources) -> None:
    """A database at orgs migration 004 with operation-log rows: migration 005 numbers them, the first writer
    chains them, and the new row chains after them."""
    await res.db.execute("DROP DATABASE IF EXISTS szt_oplog_probe")
    await res.db.execute("CREATE DATABASE szt_oplog_probe")
    dsn = res.settings.database_url.replace("/postgres?", "/szt_oplog_probe?")
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, ("core",))
        for mig in discover(("orgs",)):
            if mig.version < 5:  # the operation log as it was before its chain
                await apply(conn, mig)
        for i, row in enumerate(_old_rows(datetime(2024, 3, 1, tzinfo=UTC), 6)):
            await conn.execute(
                """INSERT INTO orgs.op_log (at, id, admin_id, username, org_path, ip, method, path, action, target,
                                            result, status, reason, request_id)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)""",
                *row[:1],
                uuid.UUID(int=6 - i),
                *row[2:],
            )
        assert await migrate(conn, ("core", "orgs")) == [
            f"orgs/{m.name}" for m in discover(("orgs",)) if m.version >= 5
        ]
        assert await conn.fetchval("SELECT count(*) FROM orgs.op_log WHERE hash IS NULL") == 6
        with pytest.raises(asyncpg.RaiseError, match="append-only"):  # filling hashes must change nothing else
            await conn.execute("UPDATE orgs.op_log SET hash = '\\x00', prev_hash = '\\x00', target = 'x'")
        async with conn.transaction():
            await logs.seal_legacy(conn)
            head = await logs.OP_CHAIN.append_locked(conn, _old_rows(datetime(2026, 1, 1, tzinfo=UTC), 1))
        assert head[0] == 7
        assert await conn.fetchval("SELECT count(*) FROM orgs.op_log WHERE hash IS NULL") == 0
        assert await logs.OP_CHAIN.verify(conn) == []
        rows = await conn.fetch("SELECT seq, at FROM orgs.op_log ORDER BY seq")
        assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    finally:
        await conn.close()
        await res.db.execute("DROP DATABASE szt_oplog_probe")
