"""Monitoring: per-interface count, rate, errors and latency percentiles over time, sampled from the server's
Prometheus metrics (core.observe) into `metric_samples`; a server overview; alert rules (metric, threshold,
window) that notify administrators in their inbox when they fire and when they clear."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from core import audit
from core.observe import metrics_headers
from core.problems import invalid, not_found
from core.resources import Resources
from orgs import repo
from orgs.models import AdminPrincipal
from orgs.scope import can_see, sql_scope

_SNAPSHOT_KEY = "orgs:monitor:last"


class Traffic(msgspec.Struct):
    """Requests, their rate and errors, and latency percentiles: of one sample (Point) or of a window
    (RouteSummary)."""

    count: int
    rate_per_s: float
    error_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


class Point(Traffic):
    at: datetime


class Series(msgspec.Struct):
    route: str
    points: list[Point]


class RouteSummary(Traffic):
    route: str


class RouteSummaryList(msgspec.Struct):
    window_s: int
    items: list[RouteSummary]


class Overview(msgspec.Struct):
    at: datetime
    load_1m: float
    load_5m: float
    cpus: int
    memory_total_mb: int
    memory_available_mb: int
    disk_total_gb: float
    disk_free_gb: float
    database_mb: float
    database_connections: int
    redis_used_mb: float
    requests_last_hour: int
    error_rate_last_hour: float


class NewAlertRule(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    metric: Literal["error_rate", "p99_ms", "rate_per_s"]
    threshold: float
    window_s: Annotated[int, msgspec.Meta(ge=60, le=86400)]
    route: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "*"
    op: Literal[">", "<"] = ">"


class AlertRule(msgspec.Struct):
    id: uuid.UUID
    name: str
    metric: str
    route: str
    op: str
    threshold: float
    window_s: int
    org_path: str
    firing: bool
    last_value: float | None
    changed_at: datetime | None
    created_at: datetime


class AlertRuleList(msgspec.Struct):
    items: list[AlertRule]


# --- sampling --------------------------------------------------------------------------------------------------


def _parse(text: str) -> dict[str, dict[str, object]]:
    """route key "app METHOD /path" -> {"count", "errors", "buckets": {le: cumulative}}."""
    out: dict[str, dict[str, object]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if "route" not in labels:
                continue
            key = f"{labels.get('app', '')} {labels.get('method', '')} {labels['route']}"
            entry = out.setdefault(key, {"count": 0.0, "errors": 0.0, "buckets": {}})
            if s.name == "szt_http_requests_total":
                entry["count"] = float(entry["count"]) + s.value  # type: ignore[arg-type]
                if labels.get("status", "0")[:1] == "5":
                    entry["errors"] = float(entry["errors"]) + s.value  # type: ignore[arg-type]
            elif s.name == "szt_http_request_duration_seconds_bucket":
                buckets: dict[str, float] = entry["buckets"]  # type: ignore[assignment]
                buckets[labels["le"]] = buckets.get(labels["le"], 0.0) + s.value
    return out


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Histogram quantile (as Prometheus's histogram_quantile): linear within the bucket; ms."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return 0.0
    rank = q * total
    prev_le, prev_n = 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le * 1000
            span = n - prev_n
            return (prev_le + (le - prev_le) * ((rank - prev_n) / span if span else 0)) * 1000
        prev_le, prev_n = le, n
    return prev_le * 1000


async def sample(res: Resources, metrics_text: str | None = None) -> int:
    """Take one sample per route: the change since the previous scrape. Returns the routes written."""
    if metrics_text is None:
        r = await res.http.get(f"{res.settings.base_url}/metrics", headers=metrics_headers(res.settings))
        r.raise_for_status()
        metrics_text = r.text
    now = _parse(metrics_text)
    raw_prev = await res.redis.get(_SNAPSHOT_KEY)
    await res.redis.set(_SNAPSHOT_KEY, msgspec.json.encode(now), ex=3600)
    if raw_prev is None:
        return 0
    prev = msgspec.json.decode(raw_prev)
    at = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for key, cur in now.items():
        before = prev.get(key, {"count": 0.0, "errors": 0.0, "buckets": {}})
        count = float(cur["count"]) - float(before["count"])  # type: ignore[arg-type]
        if count <= 0:  # nothing new, or the server restarted (counters reset): skip this interval
            continue
        errors = max(0.0, float(cur["errors"]) - float(before["errors"]))  # type: ignore[arg-type]
        cb: dict[str, float] = cur["buckets"]  # type: ignore[assignment]
        pb: dict[str, float] = before["buckets"]
        deltas = sorted((float(le), n - pb.get(le, 0.0)) for le, n in cb.items())
        rows.append(
            (
                at,
                key[:200],
                int(count),
                int(errors),
                _quantile(deltas, 0.5),
                _quantile(deltas, 0.95),
                _quantile(deltas, 0.99),
            )
        )
    await res.db.executemany(
        """INSERT INTO orgs.metric_samples (at, route, count, errors, p50_ms, p95_ms, p99_ms)
           VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (route, at) DO NOTHING""",
        rows,
    )
    return len(rows)


async def trim(res: Resources, days: int = 30) -> None:
    await res.db.execute("DELETE FROM orgs.metric_samples WHERE at < now() - make_interval(days => $1)", days)


# --- reading ---------------------------------------------------------------------------------------------------


async def series(res: Resources, route: str, since: datetime | None, until: datetime | None) -> Series:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=6)
    rows = await res.db.fetch(
        """SELECT at, count, errors, p50_ms, p95_ms, p99_ms,
                  extract(epoch FROM at - lag(at) OVER (ORDER BY at)) AS gap
           FROM orgs.metric_samples WHERE route = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT 2000""",
        route,
        since,
        until,
    )
    return Series(
        route=route,
        points=[
            Point(
                at=r["at"],
                count=r["count"],
                rate_per_s=round(r["count"] / float(r["gap"] or 60), 3),
                error_rate=round(r["errors"] / r["count"], 4) if r["count"] else 0.0,
                p50_ms=round(r["p50_ms"], 2),
                p95_ms=round(r["p95_ms"], 2),
                p99_ms=round(r["p99_ms"], 2),
            )
            for r in rows
        ],
    )


async def traffic(res: Resources, hours: int = 6) -> list[tuple[datetime, float]]:
    """Requests per minute over all interfaces in the last `hours`, oldest first."""
    rows = await repo.requests_per_minute(res.db, datetime.now(UTC) - timedelta(hours=hours))
    return [(r["at"], float(r["n"])) for r in rows]


async def routes(res: Resources, window_s: int) -> RouteSummaryList:
    """Per interface over the window: the percentiles are count-weighted means of the samples' (approximate)."""
    rows = await res.db.fetch(
        """SELECT route, sum(count) AS n, sum(errors) AS e,
                  sum(p50_ms * count) / sum(count) AS p50, sum(p95_ms * count) / sum(count) AS p95,
                  max(p99_ms) AS p99
           FROM orgs.metric_samples WHERE at >= now() - make_interval(secs => $1)
           GROUP BY route ORDER BY n DESC LIMIT 100""",
        window_s,
    )
    return RouteSummaryList(
        window_s=window_s,
        items=[
            RouteSummary(
                route=r["route"],
                count=int(r["n"]),
                rate_per_s=round(int(r["n"]) / window_s, 3),
                error_rate=round(int(r["e"]) / int(r["n"]), 4) if r["n"] else 0.0,
                p50_ms=round(float(r["p50"]), 2),
                p95_ms=round(float(r["p95"]), 2),
                p99_ms=round(float(r["p99"]), 2),
            )
            for r in rows
        ],
    )


def _meminfo() -> tuple[int, int]:
    try:
        info = dict(
            (line.split(":")[0], int(line.split()[1]))
            for line in open("/proc/meminfo", encoding="ascii")
            if ":" in line
        )
        return info.get("MemTotal", 0) // 1024, info.get("MemAvailable", 0) // 1024
    except OSError:
        return 0, 0


async def overview(res: Resources) -> Overview:
    load = os.getloadavg()
    total, available = _meminfo()
    disk = shutil.disk_usage(res.settings.var_path)
    db_bytes = await res.db.fetchval("SELECT pg_database_size(current_database())")
    conns = await res.db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
    info = await res.redis.info("memory")
    hour = await res.db.fetchrow(
        "SELECT coalesce(sum(count), 0) AS n, coalesce(sum(errors), 0) AS e FROM orgs.metric_samples "
        "WHERE at >= now() - interval '1 hour'"
    )
    assert hour is not None
    return Overview(
        at=datetime.now(UTC),
        load_1m=round(load[0], 2),
        load_5m=round(load[1], 2),
        cpus=os.cpu_count() or 1,
        memory_total_mb=total,
        memory_available_mb=available,
        disk_total_gb=round(disk.total / 1e9, 1),
        disk_free_gb=round(disk.free / 1e9, 1),
        database_mb=round(int(db_bytes) / 1e6, 1),
        database_connections=int(conns),
        redis_used_mb=round(int(info.get("used_memory", 0)) / 1e6, 1),
        requests_last_hour=int(hour["n"]),
        error_rate_last_hour=round(int(hour["e"]) / int(hour["n"]), 4) if hour["n"] else 0.0,
    )


# --- alert rules -----------------------------------------------------------------------------------------------

_RULE_COLS = "id, name, metric, route, op, threshold, window_s, org_path, firing, last_value, changed_at, created_at"


def _rule(r: object) -> AlertRule:
    return AlertRule(**{k: r[k] for k in AlertRule.__struct_fields__})  # type: ignore[index]


async def create_rule(res: Resources, p: AdminPrincipal, data: NewAlertRule) -> AlertRule:
    if data.metric == "error_rate" and not 0 <= data.threshold <= 1:
        raise invalid("threshold", "an error rate is between 0 and 1")
    if data.threshold < 0:
        raise invalid("threshold", "not negative")
    row = await res.db.fetchrow(
        f"""INSERT INTO orgs.alert_rules (id, name, metric, route, op, threshold, window_s, org_path, created_by)
            VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING {_RULE_COLS}""",  # noqa: S608
        uuid.uuid4(),
        data.name,
        data.metric,
        data.route,
        data.op,
        data.threshold,
        data.window_s,
        p.org_path,
        p.id,
    )
    await audit.record(res.db, actor=f"admin:{p.username}", action="monitor.alert.create", target=data.name)
    return _rule(row)


async def list_rules(res: Resources, p: AdminPrincipal) -> AlertRuleList:
    cond, args = sql_scope(p, "org_path", 1)
    rows = await res.db.fetch(
        f"SELECT {_RULE_COLS} FROM orgs.alert_rules WHERE {cond} ORDER BY created_at LIMIT 200",  # noqa: S608
        *args,
    )
    return AlertRuleList(items=[_rule(r) for r in rows])


async def delete_rule(res: Resources, p: AdminPrincipal, rule_id: uuid.UUID) -> None:
    path = await res.db.fetchval("SELECT org_path FROM orgs.alert_rules WHERE id = $1", rule_id)
    if path is None or not can_see(p, path):
        raise not_found("alert rule")
    await res.db.execute("DELETE FROM orgs.alert_rules WHERE id = $1", rule_id)


async def _value(res: Resources, metric: str, route: str, window_s: int) -> float | None:
    row = await res.db.fetchrow(
        """SELECT sum(count) AS n, sum(errors) AS e, max(p99_ms) AS p99 FROM orgs.metric_samples
           WHERE at >= now() - make_interval(secs => $1) AND ($2 = '*' OR route = $2)""",
        window_s,
        route,
    )
    if row is None or not row["n"]:
        return 0.0 if metric == "rate_per_s" else None
    if metric == "error_rate":
        return float(row["e"]) / float(row["n"])
    if metric == "p99_ms":
        return float(row["p99"])
    return float(row["n"]) / window_s


async def _notify(res: Resources, rule: object, kind: str, value: float) -> int:
    """Inbox messages to every active administrator who may watch monitoring over the rule's organisation."""
    r = rule  # an asyncpg record
    title = f"告警{'触发' if kind == 'fired' else '解除'}：{r['name']}"  # type: ignore[index]
    body = (
        f"指标 {r['metric']} {r['op']} {r['threshold']}（窗口 {r['window_s']} 秒，接口 {r['route']}），"  # type: ignore[index]
        f"当前值 {value:.4g}"
    )
    done = await res.db.execute(
        """INSERT INTO orgs.admin_inbox (id, admin_id, title, body)
           SELECT gen_random_uuid(), a.id, $1, $2 FROM orgs.admins a
           WHERE a.status = 'active' AND ($3 = a.org_path OR $3 LIKE a.org_path || '.%')
             AND EXISTS (SELECT 1 FROM orgs.admin_roles ar JOIN orgs.roles ro ON ro.id = ar.role_id
                         WHERE ar.admin_id = a.id
                           AND ('monitor.read' = ANY(ro.permissions) OR '*' = ANY(ro.permissions)))""",
        title,
        body,
        r["org_path"],  # type: ignore[index]
    )
    return int(done.split()[-1])


async def evaluate(res: Resources) -> list[tuple[str, str]]:
    """Check every rule; returns (rule name, fired|cleared) for each change of state."""
    changes = []
    for rule in await res.db.fetch(f"SELECT {_RULE_COLS} FROM orgs.alert_rules"):  # noqa: S608
        value = await _value(res, rule["metric"], rule["route"], rule["window_s"])
        if value is None:
            continue
        breach = value > rule["threshold"] if rule["op"] == ">" else value < rule["threshold"]
        if breach == rule["firing"]:
            await res.db.execute("UPDATE orgs.alert_rules SET last_value = $2 WHERE id = $1", rule["id"], value)
            continue
        kind = "fired" if breach else "cleared"
        moved = await res.db.execute(
            """UPDATE orgs.alert_rules SET firing = $2, last_value = $3, changed_at = now()
               WHERE id = $1 AND firing = $4""",
            rule["id"],
            breach,
            value,
            rule["firing"],
        )
        if moved != "UPDATE 1":
            continue
        await res.db.execute(
            "INSERT INTO orgs.alert_events (id, rule_id, kind, value) VALUES ($1,$2,$3,$4)",
            uuid.uuid4(),
            rule["id"],
            kind,
            value,
        )
        await _notify(res, rule, kind, value)
        changes.append((rule["name"], kind))
    return changes


# --- the administrators' inbox ---------------------------------------------------------------------------------


class InboxItem(msgspec.Struct):
    id: uuid.UUID
    title: str
    body: str
    read: bool
    created_at: datetime


class Inbox(msgspec.Struct):
    unread: int
    items: list[InboxItem]


async def inbox(res: Resources, p: AdminPrincipal, limit: int = 50) -> Inbox:
    rows = await res.db.fetch(
        """SELECT id, title, body, read_at IS NOT NULL AS read, created_at FROM orgs.admin_inbox
           WHERE admin_id = $1 ORDER BY created_at DESC LIMIT $2""",
        p.id,
        limit,
    )
    unread = await res.db.fetchval(
        "SELECT count(*) FROM orgs.admin_inbox WHERE admin_id = $1 AND read_at IS NULL", p.id
    )
    return Inbox(unread=int(unread), items=[InboxItem(**dict(r)) for r in rows])
