"""Statistics: users by region, age band and sex (a rollup fed from identity.stats); access by period, region
and service, and per-app usage (from the integration log). A city administrator sees its own city only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from core import regions
from core.resources import Resources
from identity.facade import stats as identity_stats
from orgs.models import AdminPrincipal
from orgs.scope import sql_scope

BATCH = 1000
BANDS: tuple[tuple[int, str], ...] = ((14, "0-13"), (18, "14-17"), (30, "18-29"), (45, "30-44"), (60, "45-59"))


class Bucket(msgspec.Struct):
    key: str
    label: str
    count: int


class UserStats(msgspec.Struct):
    total: int
    by_region: list[Bucket]
    by_age_band: list[Bucket]
    by_sex: list[Bucket]


class AccessRow(msgspec.Struct):
    period_start: datetime
    key: str
    label: str
    calls: int
    failed: int
    avg_latency_ms: float


class AccessStats(msgspec.Struct):
    period: str
    group: str
    rows: list[AccessRow]


class AppUsage(msgspec.Struct):
    app_code: str
    calls: int
    failed: int
    avg_latency_ms: float
    active_days: int
    last_call: datetime


class AppUsageList(msgspec.Struct):
    items: list[AppUsage]


async def sync(res: Resources) -> int:
    """Fold people enrolled since the last run into the rollup; returns how many were added."""
    added = 0
    while True:
        cur = await res.db.fetchrow("SELECT created_at, id FROM orgs.stats_cursor WHERE name = 'people'")
        facts = await identity_stats.facts_after(res, (cur["created_at"], cur["id"]) if cur else None, BATCH)
        if not facts:
            return added
        counts: dict[tuple[str, int, str], int] = {}
        for f in facts:
            key = (f.region_code, f.birth_year or 0, f.gender)
            counts[key] = counts.get(key, 0) + 1
        last = facts[-1]
        async with res.db.acquire() as conn, conn.transaction():
            moved = await conn.execute(
                """INSERT INTO orgs.stats_cursor (name, created_at, id) VALUES ('people', $1, $2)
                   ON CONFLICT (name) DO UPDATE SET created_at = $1, id = $2
                   WHERE (orgs.stats_cursor.created_at, orgs.stats_cursor.id) = ($3, $4)""",
                last.created_at,
                last.person_id,
                cur["created_at"] if cur else None,
                cur["id"] if cur else None,
            )
            if cur is not None and moved == "INSERT 0 0":
                return added  # another run moved the cursor first; it counts this batch
            await conn.executemany(
                """INSERT INTO orgs.user_counts (region_code, birth_year, gender, n) VALUES ($1,$2,$3,$4)
                   ON CONFLICT (region_code, birth_year, gender) DO UPDATE SET n = orgs.user_counts.n + EXCLUDED.n""",
                [(*k, n) for k, n in counts.items()],
            )
        added += len(facts)


def region_prefix(p: AdminPrincipal) -> str:
    """The region codes an administrator's statistics cover: all of them, a city's (first four digits) or a
    county's own code."""
    if p.data_scope == "all":
        return ""
    code = p.region_code
    if p.org_level == "province":
        return code[:2]
    if p.org_level == "city":
        return code[:4]
    return code


_CITY_NAMES = {c.code: c.name for c in regions.CITIES}
_SEX = {"male": "男", "female": "女", "unknown": "未知"}


async def users(res: Resources, p: AdminPrincipal) -> UserStats:
    prefix = region_prefix(p)
    like = prefix + "%"
    year = datetime.now(UTC).year
    by_city = await res.db.fetch(
        """SELECT CASE WHEN region_code = '' THEN '' ELSE left(region_code, 4) || '00' END AS city, sum(n) AS n
           FROM orgs.user_counts WHERE region_code LIKE $1 GROUP BY 1 ORDER BY 1""",
        like,
    )
    by_year = await res.db.fetch(
        "SELECT birth_year, sum(n) AS n FROM orgs.user_counts WHERE region_code LIKE $1 GROUP BY 1", like
    )
    by_sex = await res.db.fetch(
        "SELECT gender, sum(n) AS n FROM orgs.user_counts WHERE region_code LIKE $1 GROUP BY 1 ORDER BY 1", like
    )
    bands: dict[str, int] = {label: 0 for _, label in BANDS} | {"60+": 0, "unknown": 0}
    for r in by_year:
        if not r["birth_year"]:
            bands["unknown"] += int(r["n"])
            continue
        age = year - r["birth_year"]
        bands[next((label for upper, label in BANDS if age < upper), "60+")] += int(r["n"])
    return UserStats(
        total=sum(int(r["n"]) for r in by_sex),
        by_region=[
            Bucket(key=r["city"], label=_CITY_NAMES.get(r["city"], "其他/港澳台及外籍"), count=int(r["n"]))
            for r in by_city
        ],
        by_age_band=[Bucket(key=k, label="未知" if k == "unknown" else k, count=v) for k, v in bands.items()],
        by_sex=[Bucket(key=r["gender"], label=_SEX.get(r["gender"], r["gender"]), count=int(r["n"])) for r in by_sex],
    )


Period = Literal["day", "week", "month"]
Group = Literal["region", "service", "total"]


async def access(
    res: Resources, p: AdminPrincipal, period: Period, group: Group, since: datetime | None, until: datetime | None
) -> AccessStats:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    cond, args = sql_scope(p, "org_path", 5)
    key = {"region": "region_code", "service": "app_code", "total": "''"}[group]
    rows = await res.db.fetch(
        f"""SELECT date_trunc($1, at AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS k, {key} AS g,
                   count(*) AS n, count(*) FILTER (WHERE result = 'fail') AS failed, avg(latency_ms) AS latency
            FROM orgs.integration_log WHERE at >= $2 AND at < $3 AND ($4 = '' OR region_code LIKE $4 || '%')
                 AND {cond}
            GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 5000""",  # noqa: S608  (key and cond are our own)
        period,
        since,
        until,
        region_prefix(p),
        *args,
    )
    return AccessStats(
        period=period,
        group=group,
        rows=[
            AccessRow(
                period_start=r["k"],
                key=r["g"],
                label=_CITY_NAMES.get(r["g"][:4] + "00", r["g"]) if group == "region" else (r["g"] or "全部"),
                calls=r["n"],
                failed=r["failed"],
                avg_latency_ms=round(float(r["latency"] or 0), 2),
            )
            for r in rows
        ],
    )


async def app_usage(res: Resources, p: AdminPrincipal, since: datetime | None, until: datetime | None) -> AppUsageList:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    cond, args = sql_scope(p, "org_path", 3)
    rows = await res.db.fetch(
        f"""SELECT app_code, count(*) AS n, count(*) FILTER (WHERE result = 'fail') AS failed,
                   avg(latency_ms) AS latency, count(DISTINCT (at AT TIME ZONE 'Asia/Shanghai')::date) AS days,
                   max(at) AS last
            FROM orgs.integration_log WHERE at >= $1 AND at < $2 AND {cond}
            GROUP BY app_code ORDER BY n DESC LIMIT 200""",  # noqa: S608
        since,
        until,
        *args,
    )
    return AppUsageList(
        items=[
            AppUsage(
                app_code=r["app_code"],
                calls=r["n"],
                failed=r["failed"],
                avg_latency_ms=round(float(r["latency"] or 0), 2),
                active_days=r["days"],
                last_call=r["last"],
            )
            for r in rows
        ]
    )


async def calls_per_minute(res: Resources, p: AdminPrincipal, hours: int = 6) -> list[tuple[datetime, float]]:
    """The app-integration calls in the administrator's scope per minute over the last `hours`, oldest first: the
    request counts a city (or any level short of the platform) sees are its own apps', never the server's."""
    cond, args = sql_scope(p, "org_path", 2)
    rows = await res.db.fetch(
        f"""SELECT date_trunc('minute', at) AS m, count(*) AS n FROM orgs.integration_log
            WHERE at >= $1 AND {cond} GROUP BY 1 ORDER BY 1""",  # noqa: S608  (cond holds only placeholders)
        datetime.now(UTC) - timedelta(hours=hours),
        *args,
    )
    return [(r["m"], float(r["n"])) for r in rows]


async def calls_last_hour(res: Resources, p: AdminPrincipal) -> int:
    cond, args = sql_scope(p, "org_path", 2)
    n = await res.db.fetchval(
        f"SELECT count(*) FROM orgs.integration_log WHERE at >= $1 AND {cond}",  # noqa: S608
        datetime.now(UTC) - timedelta(hours=1),
        *args,
    )
    return int(n or 0)
