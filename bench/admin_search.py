"""make bench group `admin`: operation-log search over 1,000,000 rows by user, time range and action (through
orgs.logs with scope and masking, next to the same SQL on raw asyncpg), and the user statistics over 1,000,000
users (the rollup built from 1,000,000 generated people; orgs.stats.users by region, age band and sex)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.report import Latency, Row

SCENARIO = "admin"
N = 1_000_000
USERS, ACTIONS = 2000, 40


def _lat(samples: list[float]) -> Latency:
    return Latency.from_samples_us([int(s * 1e6) for s in samples])


async def _closed(fn: Callable[[int], Awaitable[Any]], concurrency: int, seconds: float) -> tuple[float, list[float]]:
    lat: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def loop() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await fn(next(counter))
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return len(lat) / (time.perf_counter() - t0), lat


async def _scenario(ctx: Context) -> list[Row]:
    from core import regions
    from core.boot import prepare
    from core.resources import Resources
    from core.settings import load_settings
    from orgs import logs, masks, stats
    from orgs.models import AdminPrincipal

    settings = load_settings()
    await prepare(settings)
    res = await Resources.open(settings)
    rows: list[Row] = []
    secs = 3.0 if ctx.options.quick else 8.0
    try:
        ctx.progress(f"admin: generating {N:,} operation-log rows (COPY-speed INSERT … generate_series)")
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        # Generated as rows from before the chain (numbered newest-last, hashes left to orgs.logs.seal_legacy, which
        # the search never needs): the bench's own fresh database has an empty chain.
        assert await res.db.fetchval("SELECT seq FROM orgs.op_log_head") == 0
        for first in range(0, N, 250_000):
            await res.db.execute(
                """INSERT INTO orgs.op_log (seq, id, at, username, org_path, ip, method, path, action, target, result,
                                            status, reason, request_id)
                   SELECT $7::bigint + 1 - g, gen_random_uuid(), $3::timestamptz - make_interval(secs => g * 2.6),
                          'user' || (g % $4), '320000.' || ($6::text[])[1 + g % 13], '10.0.' || (g % 250) || '.1',
                          'POST', '/admin/v1/x', 'action.' || ((g / 7) % $5), '',
                          CASE WHEN g % 50 = 0 THEN 'fail' ELSE 'ok' END, 200, '', ''
                   FROM generate_series($1::bigint, $2::bigint) AS g""",
                first + 1,
                first + 250_000,
                now,
                USERS,
                ACTIONS,
                list(regions.CITY_CODES),
                N,
                timeout=900,
            )
        await res.db.execute("UPDATE orgs.op_log_head SET seq = $1, legacy = $1", N)
        await res.db.execute("ANALYZE orgs.op_log", timeout=600)
        gen_s = time.perf_counter() - t0
        p = AdminPrincipal(
            id=uuid.uuid4(),
            username="bench",
            org_id=uuid.uuid4(),
            org_path="320000",
            org_level="province",
            region_code="320000",
            data_scope="all",
            permissions=frozenset({"*"}),
            roles=("platform",),
            mask_level=3,
        )
        city = AdminPrincipal(
            id=uuid.uuid4(),
            username="bench-city",
            org_id=uuid.uuid4(),
            org_path="320000.320500",
            org_level="city",
            region_code="320500",
            data_scope="subtree",
            permissions=frozenset({"logs.read", "stats.read"}),
            roles=("org_admin",),
            mask_level=1,
        )
        m = await masks.masker(res, p)

        def query(i: int) -> logs.OpQuery:
            # 30 days = about 1,000,000 rows spread over 2.6 s apart: a 7-day window, one user, one action
            until = now - timedelta(days=i % 20)
            return logs.OpQuery(
                username=f"user{i * 7 % USERS}",
                action=f"action.{i % ACTIONS}",
                since=until - timedelta(days=7),
                until=until,
            )

        async def ours(i: int) -> None:
            await logs.search_ops(res, p, m, query(i), None, 50)

        async def raw(i: int) -> None:
            q = query(i)
            await res.db.fetch(
                """SELECT id, at, username, org_path, ip, method, path, action, target, result, status, reason,
                          request_id FROM orgs.op_log WHERE username = $1 AND action = $2 AND at >= $3 AND at < $4
                   ORDER BY at DESC, id DESC LIMIT 50""",
                q.username,
                q.action,
                q.since,
                q.until,
            )

        async def by_user_range(i: int) -> None:
            q = query(i)
            await logs.search_ops(
                res, city if i % 2 else p, m, logs.OpQuery(username=q.username, since=q.since, until=q.until), None, 50
            )

        for label, fn, peer in (
            ("raw asyncpg, same SQL (peer)", raw, True),
            ("orgs.logs.search_ops: user + action + 7-day range (scope all, masked)", ours, False),
            ("orgs.logs.search_ops: user + 7-day range (city scope / all)", by_user_range, False),
        ):
            ctx.progress(f"admin: {label}")
            rate, lat = await _closed(fn, 8, secs)
            rows.append(
                Row(
                    SCENARIO,
                    f"op-log search over {N:,} rows: {label}",
                    rate,
                    "query/s",
                    peak_latency=_lat(lat),
                    peer=peer,
                    notes=["target p99 ≤ 50 ms (tender 2 s)", f"rows generated in {gen_s:.0f} s"],
                )
            )

        ctx.progress(f"admin: {N:,} users into the statistics rollup")
        t0 = time.perf_counter()
        await res.db.execute(
            """INSERT INTO orgs.user_counts (region_code, birth_year, gender, n)
               SELECT CASE WHEN g % 97 = 0 THEN '' ELSE (($2::text[])[1 + g % 13]::int + 2 + g % 5)::text END,
                      1930 + (g * 7919) % 90, CASE WHEN g % 2 = 0 THEN 'male' ELSE 'female' END, count(*)
               FROM generate_series(1::bigint, $1::bigint) AS g GROUP BY 1, 2, 3
               ON CONFLICT (region_code, birth_year, gender) DO UPDATE SET n = orgs.user_counts.n + EXCLUDED.n""",
            N,
            list(regions.CITY_CODES),
            timeout=600,
        )
        rollup_s = time.perf_counter() - t0

        async def user_stats(i: int) -> None:
            doc = await stats.users(res, p if i % 2 else city)
            assert doc.total > 0

        ctx.progress("admin: statistics over 1,000,000 users")
        rate, lat = await _closed(user_stats, 8, secs)
        rows.append(
            Row(
                SCENARIO,
                f"statistics over {N:,} users: region + age band + sex (province / city)",
                rate,
                "query/s",
                peak_latency=_lat(lat),
                notes=["target p99 ≤ 300 ms", f"rollup of {N:,} users built in {rollup_s:.1f} s"],
            )
        )
    finally:
        await res.close()
    return rows


def run(ctx: Context) -> list[Row]:
    from core.embedded import EmbeddedServices
    from core.settings import export

    var = Path(tempfile.mkdtemp(prefix="szt-bench-admin-"))
    export(var_dir=var, log_level="WARNING")
    embedded = EmbeddedServices(var)
    embedded.start("", "")
    try:
        return asyncio.run(_scenario(ctx))
    finally:
        embedded.stop()
        shutil.rmtree(var, ignore_errors=True)
