"""eseal's logs of signing, verification, certificate and seal events: append-only, SM3 hash-chained.

The chain is the one of core/audit.py (SM3(prev || canonical JSON of the row), a head row holding the last
sequence number and hash) over eseal's own table, which carries the fields the tender lists and is indexed for
search by each of them.

Appends through the pool are group-committed: while one transaction holds the head's lock, the appends that
arrive meanwhile queue up and go in the next transaction together (one head lock, one batched INSERT), each
awaiting its own row. A burst of verifications then costs a few transactions instead of one locked transaction
each; the chain is the same as if they had been appended one by one.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

import asyncpg
import msgspec

from core.audit import GENESIS
from core.crypto import sm3
from core.db import Executor
from eseal import repo
from eseal.models import LogEntry, LogPage

MAX_PAGE = 100
EXPORT_MAX = 100_000


def _canonical(seq: int, at: dt.datetime, fields: list[Any], detail: dict[str, Any]) -> bytes:
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return msgspec.json.encode([seq, stamp, *fields, detail], order="sorted")


async def append(
    db: Executor,
    kind: str,
    action: str,
    *,
    actor: str = "",
    seal_code: str = "",
    cert_serial: str = "",
    doc_name: str = "",
    doc_hash: str = "",
    result: str = "ok",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> int:
    detail = msgspec.json.decode(msgspec.json.encode(detail or {}, order="sorted"))
    if isinstance(db, asyncpg.Pool):
        return await _grouped(db, [kind, action, actor, seal_code, cert_serial, doc_name, doc_hash, result, ip], detail)
    return await _append(db, kind, action, actor, seal_code, cert_serial, doc_name, doc_hash, result, ip, detail)


MAX_BATCH = 500


class _Queue:
    def __init__(self) -> None:
        self.items: list[tuple[list[Any], dict[str, Any], asyncio.Future[int]]] = []
        self.task: asyncio.Task[None] | None = None


_queues: dict[tuple[int, int], _Queue] = {}


async def _grouped(pool: asyncpg.Pool, body: list[Any], detail: dict[str, Any]) -> int:
    loop = asyncio.get_running_loop()
    queue = _queues.setdefault((id(pool), id(loop)), _Queue())
    future: asyncio.Future[int] = loop.create_future()
    queue.items.append((body, detail, future))
    if queue.task is None or queue.task.done():
        # Its own task: a caller cancelled while waiting does not stop the others' rows.
        queue.task = loop.create_task(_drain(pool, queue))
    return await future


async def _drain(pool: asyncpg.Pool, queue: _Queue) -> None:
    while queue.items:
        batch, queue.items = queue.items[:MAX_BATCH], queue.items[MAX_BATCH:]
        try:
            seqs = await _append_many(pool, [(b, d) for b, d, _ in batch])
        except Exception as exc:  # each waiting caller gets the failure
            for _, _, f in batch:
                if not f.done():
                    f.set_exception(exc)
            continue
        for (_, _, f), seq in zip(batch, seqs, strict=True):
            if not f.done():
                f.set_result(seq)


async def _append_many(pool: asyncpg.Pool, entries: list[tuple[list[Any], dict[str, Any]]]) -> list[int]:
    async with pool.acquire() as conn, conn.transaction():
        head = await repo.log_head_reserve(conn, len(entries))
        first = int(head["seq"]) - len(entries) + 1
        prev = bytes(head["hash"])
        rows: list[list[Any]] = []
        for i, (body, detail) in enumerate(entries):
            at = dt.datetime.now(dt.UTC)
            digest = sm3(prev + _canonical(first + i, at, body, detail))
            rows.append([first + i, at, *body, detail, prev, digest])
            prev = digest
        await repo.insert_logs(conn, rows)
        await repo.set_log_head(conn, prev)
    return [first + i for i in range(len(entries))]


async def _append(conn: Any, kind: str, action: str, *fields_and_detail: Any) -> int:
    *fields, detail = fields_and_detail
    at = dt.datetime.now(dt.UTC)
    async with conn.transaction():
        head = await repo.log_head_for_update(conn)
        seq: int = head["seq"]
        body = [kind, action, *fields]
        digest = sm3(bytes(head["hash"]) + _canonical(seq, at, body, detail))
        await repo.insert_log(conn, [seq, at, *body, detail, bytes(head["hash"]), digest])
        await repo.set_log_head(conn, digest)
    return seq


_ORDER = ("kind", "action", "actor", "seal_code", "cert_serial", "doc_name", "doc_hash", "result", "ip")


async def verify_chain(db: Executor) -> list[int]:
    """Sequence numbers whose row does not hash to what the chain says (empty: intact)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await verify_chain(conn)
    bad: list[int] = []
    prev = GENESIS
    expected = 1
    async with db.transaction(isolation="repeatable_read", readonly=True):
        async for r in await repo.all_logs(db):
            body = [r[k] for k in _ORDER]
            if r["seq"] != expected or bytes(r["prev_hash"]) != prev:
                bad.append(r["seq"])
            if sm3(bytes(r["prev_hash"]) + _canonical(r["seq"], r["at"], body, r["detail"])) != bytes(r["hash"]):
                bad.append(r["seq"])
            prev, expected = bytes(r["hash"]), r["seq"] + 1
    return sorted(set(bad))


def _entry(r: Any) -> LogEntry:
    return LogEntry(
        seq=r["seq"],
        at=r["at"],
        kind=r["kind"],
        actor=r["actor"],
        action=r["action"],
        seal_code=r["seal_code"],
        cert_serial=r["cert_serial"],
        doc_name=r["doc_name"],
        doc_hash=r["doc_hash"],
        result=r["result"],
        ip=r["ip"],
    )


async def search(db: Executor, filters: dict[str, Any], *, limit: int = 50, cursor: str | None = None) -> LogPage:
    """Search by any field (exact; doc_name by substring; since/until on time). Cursor = last seq seen."""
    limit = max(1, min(limit, MAX_PAGE))
    query = {k: v for k, v in filters.items() if v not in (None, "")}
    if cursor:
        if not cursor.isdigit():
            from core.problems import invalid

            raise invalid("cursor", "not a cursor from this list")
        query["before_seq"] = int(cursor)
    rows = await repo.search_logs(db, query, limit)
    nxt = str(rows[-1]["seq"]) if len(rows) == limit else None
    return LogPage(items=[_entry(r) for r in rows], next_cursor=nxt)


async def export_csv(db: Executor, filters: dict[str, Any]) -> str:
    """The matching entries as CSV (newest first, at most EXPORT_MAX rows)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", *_ORDER])
    cursor: str | None = None
    written = 0
    while written < EXPORT_MAX:
        page = await search(db, filters, limit=MAX_PAGE, cursor=cursor)
        for e in page.items:
            writer.writerow([e.seq, e.at.isoformat(), *(getattr(e, k) for k in _ORDER)])
        written += len(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return out.getvalue()
