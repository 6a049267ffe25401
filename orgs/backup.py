"""Daily backup of the app-integration log: one gzip-compressed CSV per UTC day under var/orgs/backups, with its
SM3 digest recorded, so the table can be trimmed later without losing the record."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from core.crypto import sm3
from core.resources import Resources
from orgs.logs import INT_COLS

COLUMNS = [c.strip() for c in INT_COLS.split(",")]


def _write(path: Path, rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    w.writerows(rows)
    data = gzip.compress(buf.getvalue().encode(), compresslevel=6, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(path)
    return sm3(data).hex()


async def backup_day(res: Resources, day: date) -> tuple[Path, int]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    rows = await res.db.fetch(
        f"SELECT {INT_COLS} FROM orgs.integration_log WHERE at >= $1 AND at < $2 ORDER BY at, id",  # noqa: S608
        start,
        start + timedelta(days=1),
    )
    table = [["" if r[c] is None else (r[c].isoformat() if c == "at" else str(r[c])) for c in COLUMNS] for r in rows]
    path = res.settings.var_path / "orgs" / "backups" / f"integration-{day.isoformat()}.csv.gz"
    digest = await asyncio.to_thread(_write, path, table)
    await res.db.execute(
        """INSERT INTO orgs.integration_backups (day, file, rows, sm3) VALUES ($1,$2,$3,$4)
           ON CONFLICT (day) DO UPDATE SET file = EXCLUDED.file, rows = EXCLUDED.rows, sm3 = EXCLUDED.sm3,
               created_at = now()""",
        day,
        str(path),
        len(table),
        digest,
    )
    return path, len(table)


async def backup_missing(res: Resources, *, days_back: int = 7) -> list[date]:
    """Back up every finished day of the last week that has no backup yet."""
    today = datetime.now(UTC).date()
    done = {r["day"] for r in await res.db.fetch("SELECT day FROM orgs.integration_backups")}
    made = []
    for n in range(days_back, 0, -1):
        day = today - timedelta(days=n)
        if day not in done:
            await backup_day(res, day)
            made.append(day)
    return made
