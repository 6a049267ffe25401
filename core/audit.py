"""Append-only logs hash-chained with SM3, and a verifier that names changed, inserted or missing rows.

Each row's hash is SM3(prev_hash || canonical JSON of its fields); a head table holds the latest sequence number
and hash, so cutting rows off the end is detected too. The chaining works on any table described by a `Chain`:
`core.audit_log` (AUDIT, below) and the logs of other packages (the operation log of orgs), each with its own
head, and optionally an archive table that rows move into (the chain is verified across both).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
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


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _stamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@dataclass(frozen=True)
class Chain:
    """A hash-chained table: `table` has `seq bigint` (1, 2, …), the `columns` (name, PostgreSQL type; the first
    is `at timestamptz`), `prev_hash` and `hash`; `head` is its one-row (seq, hash) table. `archive`, when given,
    is a table of the same columns that rows move into: verify walks both as one chain. `prepare`, when given,
    runs on the connection before verify walks (to chain rows that wait for their hashes)."""

    name: str
    table: str
    head: str
    columns: tuple[tuple[str, str], ...]
    archive: str | None = None
    prepare: Callable[[Any], Awaitable[None]] | None = field(default=None, compare=False)
    _sql: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        assert self.columns[0] == ("at", "timestamptz")
        names = ", ".join(n for n, _ in self.columns)
        n = len(self.columns)
        arrays = ", ".join(f"${i + 2}::{'text' if t == 'jsonb' else t}[]" for i, (_, t) in enumerate(self.columns))
        picks = ", ".join(f"c{i}::jsonb" if t == "jsonb" else f"c{i}" for i, (_, t) in enumerate(self.columns))
        aliases = ", ".join(f"c{i}" for i in range(n))
        insert = (
            f"INSERT INTO {self.table} (seq, {names}, prev_hash, hash) SELECT s, {picks}, ph, h "  # noqa: S608
            f"FROM unnest($1::bigint[], {arrays}, ${n + 2}::bytea[], ${n + 3}::bytea[]) AS x(s, {aliases}, ph, h)"
        )
        rows, head_hash, head_seq = n + 3, n + 4, n + 5
        self._sql["append"] = f"""WITH moved AS (UPDATE {self.head} SET seq = ${head_seq} + cardinality($1::bigint[]),
                                                  hash = ${head_hash} WHERE seq = ${head_seq} RETURNING 1),
                      added AS ({insert} WHERE EXISTS (SELECT 1 FROM moved)){{also}}
                 SELECT (SELECT count(*) FROM moved) AS moved, seq, hash FROM {self.head}"""  # noqa: S608
        self._sql["head"] = f"SELECT seq, hash FROM {self.head}"  # noqa: S608
        source = f"SELECT seq, {names}, prev_hash, hash FROM {{t}}"  # noqa: S608 (constants)
        walk = source.format(t=self.table)
        if self.archive:
            walk = f"{source.format(t=self.archive)} UNION ALL {walk}"
        self._sql["walk"] = f"SELECT * FROM ({walk}) AS rows ORDER BY seq"  # noqa: S608
        assert rows + 2 == self.append_params

    @property
    def append_params(self) -> int:
        """Parameters of the append statement: the row arrays, then the new head hash and the head's seq."""
        return len(self.columns) + 5

    def canonical(self, seq: int, values: Sequence[Any]) -> bytes:
        """What is hashed for a row: the JSON array [seq, *values] (timestamps as UTC `…T…:….ffffffZ`, UUIDs as
        text, object keys sorted, no spaces)."""
        return msgspec.json.encode([seq, *map(_plain, values)], order="sorted")

    def chained(
        self, rows: Iterable[Sequence[Any]], head_seq: int, head_hash: bytes
    ) -> tuple[list[list[Any]], int, bytes]:
        """`rows` (values of `columns`) chained after the head (seq, hash), as the column arrays of the append
        statement, and the new head (last seq, last hash)."""
        prev = head_hash
        jsonb = [t == "jsonb" for _, t in self.columns]
        cols: list[list[Any]] = [[] for _ in range(len(self.columns) + 3)]
        seq = head_seq
        for seq, values in enumerate(rows, start=head_seq + 1):
            stored, hashed = [], []
            for is_json, value in zip(jsonb, values, strict=True):
                if is_json:
                    text = msgspec.json.encode(value, order="sorted")
                    stored.append(text.decode())
                    hashed.append(msgspec.json.decode(text))  # what jsonb will give back
                else:
                    stored.append(value)
                    hashed.append(value)
            digest = chain_hash(prev, self.canonical(seq, hashed))
            for col, value in zip(cols, (seq, *stored, prev, digest), strict=True):
                col.append(value)
            prev = digest
        return cols, seq, prev

    async def read_head(self, conn: Any, *, lock: bool = False) -> Head:
        """The head (sequence number, hash): as committed, or locked until the caller's transaction ends."""
        row = await conn.fetchrow(self._sql["head"] + (" FOR UPDATE" if lock else ""))
        assert row is not None
        return int(row["seq"]), bytes(row["hash"])

    async def append_if_head(
        self,
        conn: Any,
        head: Head,
        rows: Sequence[Sequence[Any]],
        *,
        also: str = "",
        also_args: tuple[Any, ...] = (),
    ) -> tuple[bool, Head]:
        """Append rows chained on a head read earlier, in one statement that moves the head only if it is still
        that one (and inserts nothing otherwise). Returns whether it moved, and the new head; or, when another
        writer got there first, the head as this statement found it, to chain a retry on without reading it again.
        `also`: a data-modifying statement of the caller's to run in the same statement only when the head moved,
        with its parameters numbered from append_params + 1 and `WHERE EXISTS (SELECT 1 FROM moved)` in it."""
        if not rows:
            return True, head
        cols, last_seq, last_hash = self.chained(rows, head[0], head[1])
        extra = f", also AS ({also})" if also else ""
        row = await conn.fetchrow(self._sql["append"].replace("{also}", extra), *cols, last_hash, head[0], *also_args)
        if row["moved"]:
            return True, (last_seq, last_hash)
        return False, (int(row["seq"]), bytes(row["hash"]))

    async def append_locked(
        self,
        conn: Any,
        rows: Sequence[Sequence[Any]] | Callable[[], Sequence[Sequence[Any]]],
        *,
        also: str = "",
        also_args: tuple[Any, ...] = (),
    ) -> Head:
        """Append while holding the head (joining the caller's transaction, or in one of its own): lock and read
        the head, then append_if_head, which cannot miss while the lock is held. `rows` may be a function giving
        them, called once the head is held (so their `at` follows the chain's order). Returns the new head."""
        async with contextlib.AsyncExitStack() as stack:
            if not conn.is_in_transaction():
                await stack.enter_async_context(conn.transaction())
            head = await self.read_head(conn, lock=True)
            moved, head = await self.append_if_head(
                conn, head, rows() if callable(rows) else rows, also=also, also_args=also_args
            )
            assert moved
        return head

    async def verify(self, db: Executor, *, batch: int = 5000) -> list[AuditFinding]:
        """Walk the whole chain (archive, then table); an empty list means intact."""
        if isinstance(db, asyncpg.Pool):
            async with db.acquire() as pooled:
                return await self.verify(pooled, batch=batch)
        conn = db
        if self.prepare is not None:
            await self.prepare(conn)
        findings: list[AuditFinding] = []
        expected_prev = GENESIS
        expected_seq = 1
        last_seq = 0
        names = [n for n, _ in self.columns]
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            async for r in conn.cursor(self._sql["walk"], prefetch=batch):
                seq = r["seq"]
                if seq < expected_seq:
                    findings.append(AuditFinding(seq, "inserted"))
                    continue
                findings.extend(AuditFinding(missing, "missing") for missing in range(expected_seq, seq))
                stored_prev = bytes(r["prev_hash"] or b"")
                stored_hash = bytes(r["hash"] or b"")
                if chain_hash(stored_prev, self.canonical(seq, [r[n] for n in names])) != stored_hash:
                    findings.append(AuditFinding(seq, "changed"))
                elif stored_prev != expected_prev and seq == expected_seq and seq > 1:
                    # This row is intact but its predecessor's hash moved: the predecessor was rewritten whole.
                    findings.append(AuditFinding(seq - 1, "changed"))
                expected_prev = stored_hash
                expected_seq = seq + 1
                last_seq = seq
            head = await conn.fetchrow(self._sql["head"])
        assert head is not None
        if head["seq"] > last_seq:
            findings.extend(AuditFinding(s, "missing") for s in range(last_seq + 1, head["seq"] + 1))
        elif head["seq"] != last_seq or (last_seq and bytes(head["hash"]) != expected_prev):
            findings.append(AuditFinding(head["seq"], "head-mismatch"))
        return findings


Head = tuple[int, bytes]

# Every chain, by name, for the hourly verification and `szt audit verify`; packages register theirs on import.
CHAINS: dict[str, Chain] = {}


def register(chain: Chain) -> Chain:
    CHAINS[chain.name] = chain
    return chain


AUDIT = register(
    Chain(
        name="audit",
        table="core.audit_log",
        head="core.audit_head",
        columns=(
            ("at", "timestamptz"),
            ("actor", "text"),
            ("action", "text"),
            ("target", "text"),
            ("result", "text"),
            ("ip", "text"),
            ("request_id", "text"),
            ("detail", "jsonb"),
        ),
    )
)
# The 11 row arrays are $1–$11, then $12 the new head hash, $13 the head's sequence number the rows were chained on.
APPEND_PARAMS = AUDIT.append_params


def chain_hash(prev: bytes, body: bytes) -> bytes:
    return sm3(prev + body)


_chain = chain_hash


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
    return AUDIT.canonical(seq, (at, actor, action, target, result, ip, request_id, detail))


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


def _rows(entries: list[Entry]) -> list[tuple[Any, ...]]:
    at = datetime.now(UTC)
    return [(at, e.actor, e.action, e.target, e.result, e.ip, e.request_id, e.detail) for e in entries]


async def record_many(conn: Any, entries: list[Entry]) -> list[int]:  # a connection, pooled or not
    """Append several entries in one transaction with one head update: a writer that gathers the entries of
    requests arriving together pays one commit for all of them (the head row is held until the commit). Joins the
    caller's transaction (no savepoint). Returns their sequence numbers."""
    if not entries:
        return []
    last_seq, _ = await append_locked(conn, entries)
    return list(range(last_seq - len(entries) + 1, last_seq + 1))


async def append_locked(conn: Any, entries: list[Entry], *, also: str = "", also_args: tuple[Any, ...] = ()) -> Head:
    """Chain.append_locked on the audit log."""
    return await AUDIT.append_locked(conn, lambda: _rows(entries), also=also, also_args=also_args)


async def read_head(conn: Any, *, lock: bool = False) -> Head:
    """The audit head (sequence number, hash): as committed, or locked until the caller's transaction ends."""
    return await AUDIT.read_head(conn, lock=lock)


async def append_if_head(
    conn: Any, head: Head, entries: list[Entry], *, also: str = "", also_args: tuple[Any, ...] = ()
) -> tuple[bool, Head]:
    """Chain.append_if_head on the audit log: outside a transaction the statement commits alone, so an
    uncontended append is one round trip."""
    return await AUDIT.append_if_head(conn, head, _rows(entries), also=also, also_args=also_args)


async def verify(db: Executor, *, batch: int = 5000, chain: Chain = AUDIT) -> list[AuditFinding]:
    """Walk a whole chain (the audit log unless told); an empty list means intact."""
    return await chain.verify(db, batch=batch)
