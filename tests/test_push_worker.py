"""`szt worker` scheduling: each due time of a job runs once however many workers fire it; cron due times; the
delivery metrics the administrators' view reads."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from core.resources import Resources
from core.worker import Scheduled, run_key, run_once
from push import service
from push.models import HmsDevice
from tests.harness import ROOT
from tests.test_push import drain, hms_token


async def _nothing(res: Resources) -> None:
    return None


def test_due_times_are_aligned_across_workers() -> None:
    every10 = Scheduled("x", 10, _nothing)
    at = dt.datetime(2026, 5, 1, 8, 0, 7, 500_000, tzinfo=dt.UTC)
    assert every10.due_time(at) == dt.datetime(2026, 5, 1, 8, 0, 0, tzinfo=dt.UTC)
    daily = Scheduled("y", None, _nothing, cron="0 8 * * *")  # 08:00 Beijing = 00:00 UTC
    assert daily.due_time(at) == dt.datetime(2026, 5, 1, 0, 0, tzinfo=dt.UTC)
    assert daily.due_time(dt.datetime(2026, 4, 30, 23, 59, tzinfo=dt.UTC)) == dt.datetime(
        2026, 4, 30, 0, 0, tzinfo=dt.UTC
    )


async def test_one_due_time_runs_once_among_concurrent_firings(res: Resources) -> None:
    runs: list[int] = []

    async def job(r: Resources) -> None:
        runs.append(1)
        await asyncio.sleep(0.05)

    item = Scheduled(f"t.{secrets.token_hex(3)}", 60, job)
    now = item.due_time(dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=5)  # one second later is the same due time
    ran = await asyncio.gather(*(run_once(res, item, now) for _ in range(8)))  # eight workers, one due time
    assert sorted(ran) == [False] * 7 + [True] and runs == [1]
    assert not await run_once(res, item, now + dt.timedelta(seconds=1))  # still the same due time
    assert await run_once(res, item, now + dt.timedelta(seconds=60))  # the next one
    assert await res.redis.exists(run_key(item.name, item.due_time(now)))
    last = await res.redis.hgetall(f"job:last:{item.name}")
    assert last[b"ok"] == b"1"


def _spawn(var_dir: Path, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (var_dir / f"worker-{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "szt.cli", "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )


async def test_two_workers_run_each_due_time_once(res: Resources, var_dir: Path) -> None:
    key = f"test:probe:{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SZT_LOG_LEVEL": "WARNING",
        "SZT_WORKER_EXTRA_JOBS": "tests.worker_probe_jobs",
        "SZT_PROBE_KEY": key,
        "SZT_WORKER_METRICS_PORT": "0",
    }
    procs = [_spawn(var_dir, name, env) for name in ("J1", "J2")]
    try:
        # Both workers are up once both have beaten their heart; then count a few seconds of probe runs.
        for _ in range(200):
            if len([k async for k in res.redis.scan_iter("worker:heartbeat:*")]) >= 2 and await res.redis.llen(key):
                break
            await asyncio.sleep(0.1)
        await res.redis.delete(key)
        await asyncio.sleep(6.2)
        got = [(x.decode() if isinstance(x, bytes) else x).split() for x in await res.redis.lrange(key, 0, -1)]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
    dues = [due for _, _, due in got]
    assert len(dues) == len(set(dues)), got  # no due time ran twice
    assert 4 <= len(dues) <= 7, got  # one run per second (a run fired late may take the next second's due time)
    assert all(p.returncode == 0 for p in procs)


async def test_delivery_metrics_for_the_admin_view(res: Resources, sim_url: str) -> None:
    before = {c.channel: c for c in (await service.metrics(res)).channels}
    pid = uuid.uuid4()
    await service.register_device(res, str(pid), HmsDevice(token=hms_token()))
    await service.notify(
        res, str(pid), template="alert", params={"title": "测试", "body": "指标"}, source="tests", idempotency_key="m1"
    )
    await drain(res)
    after = await service.metrics(res)
    hms = next(c for c in after.channels if c.channel == "hms")
    assert hms.delivered == before["hms"].delivered + 1
    assert hms.latency_mean_seconds is not None and hms.queued == 0
    assert {c.channel for c in after.channels} >= {"apns", "hms", "sms"}


@pytest.fixture(autouse=True)
def _probe_importable() -> None:
    assert (ROOT / "tests" / "worker_probe_jobs.py").exists()
