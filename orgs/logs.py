"""Operation log and app-integration log: append, search by every field (keyset pages, newest first), stream
for export, and the periodic report. Other domains call `record_integration` for every app <-> platform call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from core import audit
from core.filters import ESCAPE, contains
from core.ids import new_id
from core.observe import current_request_id
from core.pagination import decode_cursor, encode_cursor
from core.problems import invalid
from core.resources import Resources
from orgs import repo
from orgs.masks import Masker
from orgs.models import AdminPrincipal
from orgs.scope import sql_scope

log = logging.getLogger("szt.orgs.logs")

Short = Annotated[str, msgspec.Meta(max_length=200)]


class OpEntry(msgspec.Struct):
    id: uuid.UUID
    at: datetime
    username: str
    org_path: str
    ip: str
    method: str
    path: str
    action: str
    target: str
    result: str
    status: int
    reason: str
    request_id: str


class OpPage(msgspec.Struct):
    items: list[OpEntry]
    next_cursor: str | None


class IntegrationEntry(msgspec.Struct):
    id: uuid.UUID
    at: datetime
    app_code: str
    org_path: str
    direction: str
    interface: str
    method: str
    status: int
    result: str
    latency_ms: float
    ip: str
    region_code: str
    detail: str


class IntegrationPage(msgspec.Struct):
    items: list[IntegrationEntry]
    next_cursor: str | None


class OpQuery(msgspec.Struct, kw_only=True):
    username: str | None = None
    action: str | None = None
    result: Literal["ok", "fail"] | None = None
    ip: str | None = None
    target: str | None = None
    status: int | None = None
    method: str | None = None
    reason: str | None = None  # substring
    org_code: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class IntegrationQuery(msgspec.Struct, kw_only=True):
    app_code: str | None = None
    interface: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    result: Literal["ok", "fail"] | None = None
    status: int | None = None
    ip: str | None = None
    region_code: str | None = None
    detail: str | None = None  # substring
    since: datetime | None = None
    until: datetime | None = None


OP_COLS = "id, at, username, org_path, ip, method, path, action, target, result, status, reason, request_id"
INT_COLS = (
    "id, at, app_code, org_path, direction, interface, method, status, result, latency_ms, ip, region_code, detail"
)
_SUBSTRING = {"reason", "detail"}


def _uuid7() -> uuid.UUID:
    """Time-ordered ids keep the log's primary-key index append-only."""
    return uuid.UUID(int=(int(datetime.now(UTC).timestamp() * 1000) << 80) | (uuid.uuid4().int & ((1 << 80) - 1)))


async def seal_legacy(conn: Any) -> None:
    """Chain the rows written before the operation log was chained (migration 005 numbered them and left their
    hashes to this, SQL having no SM3): once, under the head's lock, from the genesis; the head then moves to the
    last of them. Joins the caller's transaction or runs in its own."""
    async with contextlib.AsyncExitStack() as stack:
        if not conn.is_in_transaction():
            await stack.enter_async_context(conn.transaction())
        legacy = await conn.fetchval("SELECT legacy FROM orgs.op_log_head FOR UPDATE")
        if not legacy:
            return
        names = [n for n, _ in OP_CHAIN.columns]
        rows = await conn.fetch(
            f"SELECT {', '.join(names)} FROM orgs.op_log WHERE seq <= $1 ORDER BY seq",  # noqa: S608 (constants)
            legacy,
        )
        assert len(rows) == legacy, "rows numbered by migration 005 are missing"
        cols, last_seq, last_hash = OP_CHAIN.chained([[r[n] for n in names] for r in rows], 0, audit.GENESIS)
        await conn.execute(
            """UPDATE orgs.op_log SET prev_hash = x.ph, hash = x.h
               FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS x(s, ph, h)
               WHERE op_log.seq = x.s AND op_log.hash IS NULL""",
            cols[0],
            cols[-2],
            cols[-1],
        )
        await conn.execute("UPDATE orgs.op_log_head SET hash = $1, legacy = 0 WHERE seq = $2", last_hash, last_seq)
        log.info("operation log rows before the chain sealed", extra={"rows": legacy})


OP_CHAIN = audit.register(
    audit.Chain(
        name="op_log",
        table="orgs.op_log",
        head="orgs.op_log_head",
        columns=(
            ("at", "timestamptz"),
            ("id", "uuid"),
            ("admin_id", "uuid"),
            ("username", "text"),
            ("org_path", "text"),
            ("ip", "text"),
            ("method", "text"),
            ("path", "text"),
            ("action", "text"),
            ("target", "text"),
            ("result", "text"),
            ("status", "int4"),
            ("reason", "text"),
            ("request_id", "text"),
        ),
        archive="orgs.op_log_archive",
        prepare=seal_legacy,
    )
)


async def record_op(
    res: Resources,
    *,
    principal: AdminPrincipal | None,
    username: str,
    ip: str,
    method: str,
    path: str,
    action: str,
    target: str,
    status: int,
    reason: str,
) -> None:
    """Append one entry to the chained operation log (the head locked until the commit, as the audit log; the
    entry's time taken once it is held, so time follows the chain's order)."""

    def row() -> list[tuple[Any, ...]]:
        return [
            (
                datetime.now(UTC),
                _uuid7(),
                principal.id if principal else None,
                (principal.username if principal else username)[:64],
                principal.org_path if principal else "",
                ip[:64],
                method,
                path[:300],
                action[:100],
                target[:300],
                "ok" if status < 400 else "fail",
                status,
                reason[:500],
                current_request_id() or new_id(),
            )
        ]

    async with res.db.acquire() as conn, conn.transaction():
        await seal_legacy(conn)
        await OP_CHAIN.append_locked(conn, row)


INTEGRATION_QUEUE = "orgs:integration_queue"
QUEUE_CAP = 1_000_000  # entries kept in Redis while the worker is away; beyond that the oldest are dropped
# Hot-path entries are pushed in batches: one RPUSH per FLUSH_SECONDS (or per FLUSH_AT entries) instead of one round
# trip per call. A process that dies loses at most that window of log lines, never a call.
FLUSH_SECONDS = 0.05
FLUSH_AT = 500


class _Outbox:
    """This process's integration-log entries waiting for their batched RPUSH."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.entries: list[bytes] = []
        self.timer: asyncio.Task[None] | None = None
        self.flushes: set[asyncio.Task[None]] = set()  # strong references until each flush is done

    def add(self, entry: bytes) -> None:
        self.entries.append(entry)
        if len(self.entries) >= FLUSH_AT:
            self._spawn(self.flush())
        elif self.timer is None:
            self.timer = self._spawn(self._later())

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.flushes.add(task)
        task.add_done_callback(self.flushes.discard)
        return task

    async def _later(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        self.timer = None
        await self.flush()

    async def flush(self) -> None:
        entries, self.entries = self.entries, []
        if not entries:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(INTEGRATION_QUEUE, *entries)
                pipe.ltrim(INTEGRATION_QUEUE, -QUEUE_CAP, -1)
                await pipe.execute()
        except Exception:
            log.exception("integration log entries lost", extra={"count": len(entries)})


_outboxes: dict[int, _Outbox] = {}


def _outbox(res: Resources) -> _Outbox:
    box = _outboxes.get(id(res.redis))
    if box is None or box.redis is not res.redis:
        box = _outboxes[id(res.redis)] = _Outbox(res.redis)
    return box


_INT_COLS = [
    "id", "at", "app_code", "org_path", "direction", "interface", "method", "status", "result", "latency_ms", "ip",
    "region_code", "detail",
]  # fmt: skip
_INSERT_INT = (
    f"INSERT INTO orgs.integration_log ({', '.join(_INT_COLS)}) "  # noqa: S608  (constant column names)
    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(_INT_COLS)))})"
)


async def record_integration(
    res: Resources,
    *,
    app_code: str,
    interface: str,
    direction: Literal["inbound", "outbound"],
    status: int,
    latency_ms: float,
    method: str = "POST",
    ip: str = "",
    org_path: str = "",
    region_code: str = "",
    detail: str = "",
    queued: bool = False,
) -> None:
    """Append one call between an app (its code or client id) and the platform. Called by other domains.

    `queued=True` is for hot paths (token endpoint, code verification): the entry joins this process's batch for
    one Redis RPUSH (within FLUSH_SECONDS) instead of a PostgreSQL insert; the worker job `orgs.integration_drain`
    moves the queue into the table in batches."""
    row = (
        _uuid7(),
        datetime.now(UTC),
        app_code[:64],
        org_path,
        direction,
        interface[:200],
        method[:10],
        status,
        "ok" if status < 400 else "fail",
        float(latency_ms),
        ip[:64],
        region_code[:6],
        detail[:1000],
    )
    if queued:
        _outbox(res).add(msgspec.msgpack.encode([str(row[0]), row[1].isoformat(), *row[2:]]))
        return
    await res.db.execute(
        _INSERT_INT,
        *(await with_owners(res, [row]))[0],
    )


_ORG, _REGION = _INT_COLS.index("org_path"), _INT_COLS.index("region_code")


async def set_client_org(res: Resources, client_id: str, org_path: str) -> None:
    """The organisation an app's client belongs to (catalog calls this when it approves the app): its calls' log
    rows carry that org path, and its region when the call names none, so each level sees its own apps' calls.
    Rows of the client already written without an organisation get it too."""
    region = await repo.org_region_by_path(res.db, org_path) or ""
    await repo.set_client_org(res.db, client_id, org_path, region)
    await repo.backfill_integration_org(res.db, client_id, org_path, region)


async def with_owners(res: Resources, records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows without an org path get their client's organisation (and its region when they name none); rows of a
    client of no organisation (the platform's own, the demo portal) stay platform-wide ('')."""
    unknown = list({r[2] for r in records if not r[_ORG]})
    if not unknown:
        return records
    owners = await repo.client_orgs(res.db, unknown)
    if not owners:
        return records
    out = []
    for r in records:
        owner = None if r[_ORG] else owners.get(r[2])
        if owner is not None:
            r = (*r[:_ORG], owner[0], *r[_ORG + 1 : _REGION], r[_REGION] or owner[1], *r[_REGION + 1 :])
        out.append(r)
    return out


@asynccontextmanager
async def timed_call(
    res: Resources, *, app_code: str, interface: str, ip: str = "", method: str = "POST", detail: str = ""
) -> AsyncIterator[None]:
    """Around one app's call on a hot path: queue its integration-log entry (status from the exception, if any,
    and latency). A Redis hiccup costs the log line, never the call."""
    started = time.perf_counter()
    status = 200
    try:
        yield
    except Exception as exc:
        status = int(getattr(exc, "status", None) or getattr(exc, "status_code", None) or 500)
        raise
    finally:
        try:
            await record_integration(
                res,
                app_code=app_code,
                interface=interface,
                direction="inbound",
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000,
                method=method,
                ip=ip,
                detail=detail,
                queued=True,
            )
        except Exception:
            log.exception("integration log entry lost")


async def drain_integration(res: Resources, batch: int = 2000, max_batches: int = 50) -> int:
    """Move queued integration-log entries into PostgreSQL, `batch` at a time with COPY; returns how many.
    A batch whose COPY fails goes back to the head of the queue for the next run."""
    moved = 0
    for _ in range(max_batches):
        raw = await res.redis.lpop(INTEGRATION_QUEUE, batch)
        if not raw:
            break
        entries: list[bytes] = list(raw)  # type: ignore[arg-type]
        records = []
        for e in entries:
            f = msgspec.msgpack.decode(e)
            records.append((uuid.UUID(f[0]), datetime.fromisoformat(f[1]), *f[2:]))
        try:
            records = await with_owners(res, records)
            async with res.db.acquire() as conn:
                await conn.copy_records_to_table(
                    "integration_log", schema_name="orgs", columns=_INT_COLS, records=records
                )
        except Exception:
            await res.redis.lpush(INTEGRATION_QUEUE, *reversed(entries))
            raise
        moved += len(records)
        if len(records) < batch:
            break
    return moved


def _where(query: msgspec.Struct, scope: tuple[str, list[object]], org_path: str | None) -> tuple[list[str], list[Any]]:
    cond, args = scope
    where, params = [cond], list(args)
    for name in query.__struct_fields__:
        value = getattr(query, name)
        if value is None or name in ("org_code", "since", "until"):
            continue
        params.append(contains(value) if name in _SUBSTRING else value)
        where.append(f"{name} ILIKE ${len(params)} {ESCAPE}" if name in _SUBSTRING else f"{name} = ${len(params)}")
    if org_path is not None:
        params.extend([org_path, org_path + ".%"])
        where.append(f"(org_path = ${len(params) - 1} OR org_path LIKE ${len(params)})")
    since, until = getattr(query, "since", None), getattr(query, "until", None)
    if since is not None:
        params.append(since)
        where.append(f"at >= ${len(params)}")
    if until is not None:
        params.append(until)
        where.append(f"at < ${len(params)}")
    return where, params


async def _org_path(res: Resources, code: str | None) -> str | None:
    if not code:
        return None
    path = await res.db.fetchval("SELECT path FROM orgs.orgs WHERE code = $1", code)
    if path is None:
        raise invalid("org_code", "no such organisation")
    return str(path)


async def _page(
    res: Resources,
    table: str,
    cols: str,
    p: AdminPrincipal,
    query: msgspec.Struct,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    where, params = _where(query, sql_scope(p, "org_path", 1), await _org_path(res, getattr(query, "org_code", None)))
    at, rid = decode_cursor(cursor)
    if at is not None and rid is not None:
        params.extend([at, rid])
        where.append(f"(at, id) < (${len(params) - 1}, ${len(params)})")
    params.append(limit)
    rows = await res.db.fetch(
        f"SELECT {cols} FROM orgs.{table} WHERE {' AND '.join(where)} "  # noqa: S608  (columns are our own)
        f"ORDER BY at DESC, id DESC LIMIT ${len(params)}",
        *params,
    )
    nxt = encode_cursor(rows[-1]["at"], rows[-1]["id"]) if len(rows) == limit else None
    return list(rows), nxt


def _mask_op(m: Masker, r: Any) -> OpEntry:
    e = OpEntry(**{k: r[k] for k in OpEntry.__struct_fields__})
    e.ip = m("ip", e.ip)
    return e


def _mask_int(m: Masker, r: Any) -> IntegrationEntry:
    e = IntegrationEntry(**{k: r[k] for k in IntegrationEntry.__struct_fields__})
    e.ip = m("ip", e.ip)
    return e


async def search_ops(
    res: Resources, p: AdminPrincipal, m: Masker, query: OpQuery, cursor: str | None, limit: int
) -> OpPage:
    rows, nxt = await _page(res, "op_log", OP_COLS, p, query, cursor, limit)
    return OpPage(items=[_mask_op(m, r) for r in rows], next_cursor=nxt)


async def search_integration(
    res: Resources, p: AdminPrincipal, m: Masker, query: IntegrationQuery, cursor: str | None, limit: int
) -> IntegrationPage:
    rows, nxt = await _page(res, "integration_log", INT_COLS, p, query, cursor, limit)
    return IntegrationPage(items=[_mask_int(m, r) for r in rows], next_cursor=nxt)


EXPORT_MAX = 100_000


async def stream_ops(res: Resources, p: AdminPrincipal, m: Masker, query: OpQuery) -> AsyncIterator[OpEntry]:
    """Every matching entry (up to EXPORT_MAX), fetched a page at a time."""
    cursor: str | None = None
    sent = 0
    while sent < EXPORT_MAX:
        rows, cursor = await _page(res, "op_log", OP_COLS, p, query, cursor, 1000)
        for r in rows:
            yield _mask_op(m, r)
        sent += len(rows)
        if cursor is None:
            return


async def stream_integration(
    res: Resources, p: AdminPrincipal, m: Masker, query: IntegrationQuery
) -> AsyncIterator[IntegrationEntry]:
    cursor: str | None = None
    sent = 0
    while sent < EXPORT_MAX:
        rows, cursor = await _page(res, "integration_log", INT_COLS, p, query, cursor, 1000)
        for r in rows:
            yield _mask_int(m, r)
        sent += len(rows)
        if cursor is None:
            return


# --- reports ---------------------------------------------------------------------------------------------------

Period = Literal["week", "month", "quarter", "year"]
_STEP = {"week": "1 week", "month": "1 month", "quarter": "3 months", "year": "1 year"}


class ReportRow(msgspec.Struct):
    period_start: datetime
    operations: int
    failed_operations: int
    administrators: int
    integration_calls: int
    failed_calls: int
    apps: int
    avg_latency_ms: float


class Report(msgspec.Struct):
    period: str
    rows: list[ReportRow]


async def report(res: Resources, p: AdminPrincipal, period: Period, periods: int) -> Report:
    """The last `periods` weeks / months / quarters / years (Asia/Shanghai calendar) of both logs."""
    cond, args = sql_scope(p, "org_path", 4)
    rows = await res.db.fetch(
        f"""
        WITH bounds AS (
            SELECT (date_trunc($1, now() AT TIME ZONE 'Asia/Shanghai')
                    - ($2 - 1) * $3::text::interval) AT TIME ZONE 'Asia/Shanghai' AS since
        ),
        ops AS (
            SELECT date_trunc($1, at AT TIME ZONE 'Asia/Shanghai') AS k, count(*) AS n,
                   count(*) FILTER (WHERE result = 'fail') AS failed, count(DISTINCT username) AS admins
            FROM orgs.op_log, bounds WHERE at >= bounds.since AND {cond} GROUP BY 1
        ),
        calls AS (
            SELECT date_trunc($1, at AT TIME ZONE 'Asia/Shanghai') AS k, count(*) AS n,
                   count(*) FILTER (WHERE result = 'fail') AS failed, count(DISTINCT app_code) AS apps,
                   avg(latency_ms) AS latency
            FROM orgs.integration_log, bounds WHERE at >= bounds.since AND {cond} GROUP BY 1
        )
        SELECT coalesce(ops.k, calls.k) AT TIME ZONE 'Asia/Shanghai' AS k, coalesce(ops.n, 0) AS ops,
               coalesce(ops.failed, 0) AS ops_failed, coalesce(ops.admins, 0) AS admins,
               coalesce(calls.n, 0) AS calls, coalesce(calls.failed, 0) AS calls_failed,
               coalesce(calls.apps, 0) AS apps, coalesce(calls.latency, 0) AS latency
        FROM ops FULL JOIN calls ON ops.k = calls.k ORDER BY 1
        """,  # noqa: S608  (the scope condition holds only placeholders)
        period,
        periods,
        _STEP[period],
        *args,
    )
    return Report(
        period=period,
        rows=[
            ReportRow(
                period_start=r["k"],
                operations=r["ops"],
                failed_operations=r["ops_failed"],
                administrators=r["admins"],
                integration_calls=r["calls"],
                failed_calls=r["calls_failed"],
                apps=r["apps"],
                avg_latency_ms=round(float(r["latency"]), 2),
            )
            for r in rows
        ],
    )
