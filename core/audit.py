"""Append-only audit log, hash-chained with SM3, and a verifier that names changed, inserted or missing rows.

Each row's hash is SM3(prev_hash || canonical JSON of its fields); `core.audit_head` holds the latest
sequence number and hash, so cutting rows off the end is detected too.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from core.crypto import sm3
from core.db import Executor
from core.observe import current_request_id

GENESIS = bytes(32)


class AuditFinding(msgspec.Struct):
    seq: int
    problem: str  # "changed" | "missing" | "inserted" | "head-mismatch"


def _canonical(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    result: str,
    ip: str,
    request_id: str,
    detail: dict[str, Any],
) -> bytes:
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return msgspec.json.encode([seq, stamp, actor, action, target, result, ip, request_id, detail], order="sorted")


def _chain(prev: bytes, body: bytes) -> bytes:
    return sm3(prev + body)


async def record(
    db: Executor,
    *,
    actor: str,
    action: str,
    target: str = "",
    result: str = "ok",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one entry; returns its sequence number. Joins the caller's transaction when given a connection."""
    entry = Entry(actor=actor, action=action, target=target, result=result, ip=ip, detail=detail or {})
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as pooled:
            return (await record_many(pooled, [entry]))[0]
    return (await record_many(db, [entry]))[0]


class Entry(msgspec.Struct, kw_only=True):
    """One audit entry for `record_many`; `request_id` is taken where the entry is made (a batch is written
    outside the requests that made its entries)."""

    actor: str
    action: str
    target: str = ""
    result: str = "ok"
    ip: str = ""
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    request_id: str = msgspec.field(default_factory=current_request_id)


_INSERT_ROWS = """INSERT INTO core.audit_log (seq, at, actor, action, target, result, ip, request_id, detail,
                                prev_hash, hash)
     SELECT s, a, ac, act, t, r, ip, rid, d::jsonb, ph, h
     FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                 $8::text[], $9::text[], $10::bytea[], $11::bytea[]) AS x(s, a, ac, act, t, r, ip, rid, d, ph, h)"""
# The 11 row arrays are $1–$11, then $12 the new head hash, $13 the head's sequence number the rows were chained on.
APPEND_PARAMS = 13
_READ_HEAD = "SELECT seq, hash FROM core.audit_head"
_READ_HEAD_LOCKED = _READ_HEAD + " FOR UPDATE"
_APPEND_IF_HEAD = f"""WITH moved AS (UPDATE core.audit_head SET seq = $13 + cardinality($1::bigint[]), hash = $12
                                     WHERE seq = $13 RETURNING 1),
                      added AS ({_INSERT_ROWS} WHERE EXISTS (SELECT 1 FROM moved)){{also}}
                 SELECT (SELECT count(*) FROM moved) AS moved, seq, hash FROM core.audit_head"""  # noqa: S608 (constants)


def _chained(entries: list[Entry], head_seq: int, head_hash: bytes) -> tuple[list[list[Any]], int, bytes]:
    """The rows of `entries` chained after the head (seq, hash), as the 11 column arrays of _INSERT_ROWS, and the
    new head (last seq, last hash)."""
    at = datetime.now(UTC)
    prev = head_hash
    cols: list[list[Any]] = [[] for _ in range(11)]
    for i, e in enumerate(entries):
        seq = head_seq + 1 + i
        detail_json = msgspec.json.encode(e.detail, order="sorted")
        detail = msgspec.json.decode(detail_json)  # what jsonb will give back
        digest = _chain(prev, _canonical(seq, at, e.actor, e.action, e.target, e.result, e.ip, e.request_id, detail))
        row = (seq, at, e.actor, e.action, e.target, e.result, e.ip, e.request_id, detail_json.decode(), prev, digest)
        for col, value in zip(cols, row, strict=True):
            col.append(value)
        prev = digest
    return cols, head_seq + len(entries), prev


async def record_many(conn: Any, entries: list[Entry]) -> list[int]:  # a connection, pooled or not
    """Append several entries in one transaction with one head update: a writer that gathers the entries of
    requests arriving together pays one commit for all of them (the head row is held until the commit). Joins the
    caller's transaction (no savepoint). Returns their sequence numbers."""
    if not entries:
        return []
    last_seq, _ = await append_locked(conn, entries)
    return list(range(last_seq - len(entries) + 1, last_seq + 1))


async def append_locked(conn: Any, entries: list[Entry], *, also: str = "", also_args: tuple[Any, ...] = ()) -> Head:
    """Append while holding the head (joining the caller's transaction, or in one of its own): two statements, lock
    and read the head, then append_if_head, which cannot miss while the lock is held. Returns the new head; `also`
    as for append_if_head."""
    async with contextlib.AsyncExitStack() as stack:
        if not conn.is_in_transaction():
            await stack.enter_async_context(conn.transaction())
        moved, head = await append_if_head(
            conn, await read_head(conn, lock=True), entries, also=also, also_args=also_args
        )
        assert moved
    return head


Head = tuple[int, bytes]


async def read_head(conn: Any, *, lock: bool = False) -> Head:
    """The head (sequence number, hash): as committed, or locked until the caller's transaction ends."""
    row = await conn.fetchrow(_READ_HEAD_LOCKED if lock else _READ_HEAD)
    assert row is not None
    return int(row["seq"]), bytes(row["hash"])


async def append_if_head(
    conn: Any, head: Head, entries: list[Entry], *, also: str = "", also_args: tuple[Any, ...] = ()
) -> tuple[bool, Head]:
    """Append entries chained on a head read earlier, in one statement that moves the head only if it is still
    that one (and inserts nothing otherwise). Returns whether it moved, and the new head; or, when another writer
    got there first, the head as this statement found it, to chain a retry on without reading it again. Outside a
    transaction the statement commits alone, so an uncontended append is one round trip. `also`: a data-modifying
    statement of the caller's to run in the same statement only when the head moved, with its parameters numbered
    from APPEND_PARAMS + 1 and `WHERE EXISTS (SELECT 1 FROM moved)` in it."""
    if not entries:
        return True, head
    cols, last_seq, last_hash = _chained(entries, head[0], head[1])
    extra = f", also AS ({also})" if also else ""
    row = await conn.fetchrow(
        _APPEND_IF_HEAD.replace("{also}", extra),
        *cols,
        last_hash,
        head[0],
        *also_args,
    )
    if row["moved"]:
        return True, (last_seq, last_hash)
    return False, (int(row["seq"]), bytes(row["hash"]))


async def verify(db: Executor, *, batch: int = 5000) -> list[AuditFinding]:
    """Walk the whole chain; an empty list means intact."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as pooled:
            return await verify(pooled, batch=batch)
    conn = db
    findings: list[AuditFinding] = []
    expected_prev = GENESIS
    expected_seq = 1
    last_seq = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for r in conn.cursor("SELECT * FROM core.audit_log ORDER BY seq", prefetch=batch):
            seq = r["seq"]
            if seq < expected_seq:
                findings.append(AuditFinding(seq, "inserted"))
                continue
            for missing in range(expected_seq, seq):
                findings.append(AuditFinding(missing, "missing"))
            body = _canonical(
                seq,
                r["at"],
                r["actor"],
                r["action"],
                r["target"],
                r["result"],
                r["ip"],
                r["request_id"],
                r["detail"],
            )
            stored_prev, stored_hash = bytes(r["prev_hash"]), bytes(r["hash"])
            if _chain(stored_prev, body) != stored_hash:
                findings.append(AuditFinding(seq, "changed"))
            elif stored_prev != expected_prev and seq == expected_seq and seq > 1:
                # This row is intact but its predecessor's hash moved: the predecessor was rewritten whole.
                findings.append(AuditFinding(seq - 1, "changed"))
            expected_prev = stored_hash
            expected_seq = seq + 1
            last_seq = seq
        head = await conn.fetchrow("SELECT seq, hash FROM core.audit_head")
    assert head is not None
    if head["seq"] > last_seq:
        findings.extend(AuditFinding(s, "missing") for s in range(last_seq + 1, head["seq"] + 1))
    elif head["seq"] != last_seq or (last_seq and bytes(head["hash"]) != expected_prev):
        findings.append(AuditFinding(head["seq"], "head-mismatch"))
    return findings
