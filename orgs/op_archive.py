"""The operation log's retention: months older than the online window (settings.op_log_online_months) move,
chain hashes and all, into `orgs.op_log_archive`, kept for good; each archived month is listed with its chain
head (first and last sequence numbers, the hash it chains on and its last hash) and exported as JSON Lines.

The database lets a row leave `orgs.op_log` only when its exact copy (same seq and hash) is already in the archive
(migration 005), so the chain verifies across the cut: OP_CHAIN.verify walks the archive and the table as one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from core.resources import Resources
from orgs.logs import OP_CHAIN, seal_legacy


class ArchivedMonth(msgspec.Struct):
    month: str  # YYYY-MM (UTC)
    rows: int
    first_seq: int
    last_seq: int
    prev_hash: str  # hex: the hash the month's first row chains on
    last_hash: str  # hex: the month's last row's hash
    archived_at: datetime


class ArchivedMonths(msgspec.Struct):
    items: list[ArchivedMonth]
    online_months: int


def cut_for(now: datetime, months: int) -> date:
    """The first day (UTC) of the oldest month kept online: every row before it is archived."""
    total = now.astimezone(UTC).year * 12 + now.astimezone(UTC).month - 1 - max(1, months)
    return date(total // 12, total % 12 + 1, 1)


async def archive(res: Resources, *, now: datetime | None = None) -> list[date]:
    """Move each whole month before the online window into the archive, one transaction per month; returns the
    months moved (a month missed by an earlier run is caught up)."""
    cut = cut_for(now or datetime.now(UTC), res.settings.op_log_online_months)
    moved: list[date] = []
    async with res.db.acquire() as conn:
        await seal_legacy(conn)  # a row still waiting for its hash cannot leave
        months = await conn.fetch(
            """SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC')::date AS month FROM orgs.op_log
               WHERE at < ($1::date)::timestamp AT TIME ZONE 'UTC' ORDER BY 1""",
            cut,
        )
        for m in months:
            async with conn.transaction():
                await conn.execute(
                    """WITH bounds AS (SELECT ($1::date)::timestamp AT TIME ZONE 'UTC' AS since,
                                              ($1::date + interval '1 month') AT TIME ZONE 'UTC' AS until),
                       copied AS (
                           INSERT INTO orgs.op_log_archive SELECT o.* FROM orgs.op_log o, bounds
                           WHERE o.at >= bounds.since AND o.at < bounds.until ORDER BY o.seq
                           RETURNING seq, prev_hash, hash)
                       INSERT INTO orgs.op_log_archives (month, first_seq, last_seq, rows, prev_hash, last_hash)
                       SELECT $1, min(seq), max(seq), count(*), (array_agg(prev_hash ORDER BY seq))[1],
                              (array_agg(hash ORDER BY seq DESC))[1]
                       FROM copied HAVING count(*) > 0
                       ON CONFLICT (month) DO NOTHING""",
                    m["month"],
                )
                # Each row's delete is checked by the guard against its copy just made.
                await conn.execute(
                    """DELETE FROM orgs.op_log WHERE at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
                                                 AND at < ($1::date + interval '1 month') AT TIME ZONE 'UTC'""",
                    m["month"],
                )
            moved.append(m["month"])
    return moved


async def months(res: Resources) -> ArchivedMonths:
    rows = await res.db.fetch("SELECT * FROM orgs.op_log_archives ORDER BY month DESC")
    return ArchivedMonths(
        items=[
            ArchivedMonth(
                month=r["month"].strftime("%Y-%m"),
                rows=r["rows"],
                first_seq=r["first_seq"],
                last_seq=r["last_seq"],
                prev_hash=bytes(r["prev_hash"]).hex(),
                last_hash=bytes(r["last_hash"]).hex(),
                archived_at=r["archived_at"],
            )
            for r in rows
        ],
        online_months=res.settings.op_log_online_months,
    )


async def exists(res: Resources, month: date) -> bool:
    return bool(await res.db.fetchval("SELECT 1 FROM orgs.op_log_archives WHERE month = $1", month))


_NAMES = [n for n, _ in OP_CHAIN.columns]


def _line(r: Any) -> bytes:
    hashed = msgspec.json.decode(OP_CHAIN.canonical(r["seq"], [r[n] for n in _NAMES]))
    doc: dict[str, Any] = {"seq": r["seq"], **dict(zip(_NAMES, hashed[1:], strict=True))}
    doc["prev_hash"] = bytes(r["prev_hash"]).hex()
    doc["hash"] = bytes(r["hash"]).hex()
    return msgspec.json.encode(doc) + b"\n"


async def export(res: Resources, month: date, batch: int = 2000) -> AsyncIterator[bytes]:
    """The archived month as JSON Lines in chain order: one object per row with `seq`, the hashed fields as they
    were hashed, and `prev_hash` and `hash` in hex (docs/domains/orgs.md says how to check them)."""
    async with res.db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cols = ", ".join(_NAMES)
        cursor = conn.cursor(
            f"""SELECT seq, {cols}, prev_hash, hash FROM orgs.op_log_archive
                WHERE at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
                  AND at < ($1::date + interval '1 month') AT TIME ZONE 'UTC' ORDER BY seq""",  # noqa: S608
            month,
            prefetch=batch,
        )
        chunk: list[bytes] = []
        async for r in cursor:
            chunk.append(_line(r))
            if len(chunk) >= batch:
                yield b"".join(chunk)
                chunk = []
        if chunk:
            yield b"".join(chunk)
