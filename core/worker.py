"""`szt worker`: long-running consumers (push delivery) and scheduled jobs, each run once per due time across
replicas.

Other domains register work in `<package>/jobs.py` (imported by the worker at start):

    @scheduled("affairs.appointment-reminders", cron="0 8 * * *")     # every day 08:00 Beijing time
    async def remind(res: Resources) -> None: ...

    @scheduled("push-delayed", seconds=1)                            # every second

Due times are aligned across workers (an interval job is due at multiples of its period since 2000-01-01 UTC, a
cron job at its cron times), and a run is keyed by (job, due time) with Redis SET NX: however many workers fire the
same due time, one runs it and the others skip. A worker that dies during a run does not have it re-run for that
due time (jobs are written to catch up at the next one: reminders use push.service.notify's idempotency keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.clock import DISPLAY_TZ_NAME
from core.resources import Resources
from core.settings import Settings

log = logging.getLogger("szt.worker")

Job = Callable[[Resources], Coroutine[Any, Any, None]]
# The due time a scheduled job is running for (a late run still knows which period it serves).
current_due: contextvars.ContextVar[dt.datetime] = contextvars.ContextVar("current_due")
ALIGN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# Settings.worker_heartbeat: how often a worker proves it is alive (its heartbeat lives three times as long; push
# takes back a dead worker's in-flight pairs by it); Settings.worker_metrics_port: its Prometheus /metrics (0: none).
RUN_KEY_TTL = 7 * 86_400  # a due time's run record outlives any late firing of it


@dataclass(frozen=True)
class Scheduled:
    name: str
    seconds: int | None
    job: Job
    cron: str | None = None
    timezone: str = DISPLAY_TZ_NAME
    every: Callable[[Settings], int] | None = None  # the interval from settings, resolved when the worker starts

    def configured(self, settings: Settings) -> Scheduled:
        """This job with its interval read from `settings` (for jobs registered with `every=`)."""
        return self if self.every is None else dataclasses.replace(self, seconds=self.every(settings), every=None)

    def trigger(self) -> IntervalTrigger | CronTrigger:
        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron, timezone=self.timezone)
        assert self.seconds
        return IntervalTrigger(seconds=self.seconds, start_date=ALIGN, timezone=dt.UTC)

    def due_time(self, now: dt.datetime) -> dt.datetime:
        """The latest due time at or before `now` (the one a firing at `now` stands for)."""
        if self.cron is None:
            assert self.seconds
            slots = int((now - ALIGN).total_seconds() // self.seconds)
            return ALIGN + dt.timedelta(seconds=slots * self.seconds)
        trigger = self.trigger()
        due: dt.datetime | None = None
        at: dt.datetime | None = trigger.get_next_fire_time(None, now - dt.timedelta(days=1))
        while at is not None and at <= now:
            due = at
            at = trigger.get_next_fire_time(at, at + dt.timedelta(seconds=1))
        return (due or now).astimezone(dt.UTC)


# Packages append to these at import time of `<package>.jobs`.
SCHEDULED: list[Scheduled] = []
CONSUMERS: list[tuple[str, Job]] = []
JOB_PACKAGES: tuple[str, ...] = ("core", "identity", "catalog", "affairs", "push", "eseal", "orgs", "admin")


def scheduled(
    name: str,
    seconds: int | None = None,
    *,
    cron: str | None = None,
    every: Callable[[Settings], int] | None = None,
    timezone: str = DISPLAY_TZ_NAME,
) -> Callable[[Job], Job]:
    """Register a job: every `seconds`, every `every(settings)` seconds (read when the worker starts), or at the
    times of a crontab line `cron` (in `timezone`)."""
    if sum(x is not None for x in (seconds, cron, every)) != 1:
        raise ValueError("give seconds, every or cron")
    if any(s.name == name for s in SCHEDULED):
        raise ValueError(f"job {name!r} registered twice")

    def register(fn: Job) -> Job:
        item = Scheduled(name, seconds, fn, cron, timezone, every)
        if every is None:
            item.trigger()  # a bad crontab line fails at import, not at 08:00
        SCHEDULED.append(item)
        return fn

    return register


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_key(worker: str) -> str:
    return f"worker:heartbeat:{worker}"


def run_key(name: str, due: dt.datetime) -> str:
    return f"job:run:{name}:{due.strftime('%Y%m%dT%H%M%SZ')}"


async def run_once(res: Resources, item: Scheduled, now: dt.datetime | None = None) -> bool:
    """Run `item` for its current due time unless some worker already took that due time; returns whether it ran
    here. The outcome is kept in `job:last:<name>` (due, worker, ok, seconds) for the administrators' view."""
    due = item.due_time(now or dt.datetime.now(dt.UTC))
    me = worker_id()
    if not await res.redis.set(run_key(item.name, due), me, nx=True, ex=RUN_KEY_TTL):
        return False
    started = time.monotonic()
    ok = False
    token = current_due.set(due)
    try:
        await item.job(res)
        ok = True
    except Exception:
        log.exception("scheduled job failed", extra={"job": item.name})
    finally:
        current_due.reset(token)
    with contextlib.suppress(Exception):
        await res.redis.hset(
            f"job:last:{item.name}",
            mapping={
                "due": due.isoformat(),
                "worker": me,
                "ok": "1" if ok else "0",
                "seconds": f"{time.monotonic() - started:.3f}",
            },
        )
    return True


def _load_jobs(settings: Settings) -> None:
    import importlib

    for package in JOB_PACKAGES:
        try:
            importlib.import_module(f"{package}.jobs")
        except ModuleNotFoundError as exc:
            if exc.name not in (package, f"{package}.jobs"):
                raise
    # More job modules by name (comma-separated), e.g. a deployment's own, or the tests' probe jobs.
    for module in filter(None, settings.worker_extra_jobs.split(",")):
        importlib.import_module(module.strip())


def _serve_metrics(port: int, host: str) -> None:
    """Prometheus /metrics of this worker (push delivery counters, latency, queue depth) on its own port."""
    if not port:
        return
    from prometheus_client import start_http_server

    from core.observe import REGISTRY

    try:
        start_http_server(port, addr=host, registry=REGISTRY)
        log.info("worker metrics", extra={"port": port})
    except OSError as exc:  # another worker on this host has the port: this one runs without
        log.warning("worker metrics port busy", extra={"port": port, "error": str(exc)})


async def run_worker(settings: Settings) -> None:
    _load_jobs(settings)
    res = await Resources.open(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _serve_metrics(settings.worker_metrics_port, settings.worker_metrics_host)
    beat = settings.worker_heartbeat
    me = worker_id()
    await res.redis.set(heartbeat_key(me), "1", ex=max(1, int(beat * 3)))
    scheduler = AsyncIOScheduler(timezone="UTC")
    for item in (s.configured(settings) for s in SCHEDULED):
        scheduler.add_job(
            run_once,
            item.trigger(),
            args=[res, item],
            id=item.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, (item.seconds or 3600) // 2),
        )
    scheduler.start()
    tasks = [asyncio.create_task(fn(res), name=name) for name, fn in CONSUMERS]
    log.info(
        "worker started",
        extra={"worker": me, "jobs": [s.name for s in SCHEDULED], "consumers": [n for n, _ in CONSUMERS]},
    )
    try:
        while not stop.is_set():
            await res.redis.set(heartbeat_key(me), "1", ex=max(1, int(beat * 3)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=beat)
    finally:
        scheduler.shutdown(wait=False)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await res.redis.delete(heartbeat_key(me))
        await res.close()
        log.info("worker stopped", extra={"worker": me})
