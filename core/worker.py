"""`szt worker`: long-running consumers (push delivery) and scheduled jobs, each run once across replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.resources import Resources
from core.settings import Settings

log = logging.getLogger("szt.worker")

Job = Callable[[Resources], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Scheduled:
    name: str
    seconds: int
    job: Job


# Packages append to these at import time of `<package>.jobs`.
SCHEDULED: list[Scheduled] = []
CONSUMERS: list[tuple[str, Job]] = []
JOB_PACKAGES: tuple[str, ...] = ("core", "orgs", "identity", "catalog", "affairs", "push", "eseal")


def scheduled(name: str, seconds: int) -> Callable[[Job], Job]:
    def register(fn: Job) -> Job:
        SCHEDULED.append(Scheduled(name, seconds, fn))
        return fn

    return register


async def run_once(res: Resources, item: Scheduled) -> bool:
    """Run `item` unless another replica holds its lock; returns whether it ran here."""
    lock = res.redis.lock(f"lock:job:{item.name}", timeout=max(30, item.seconds), blocking=False)
    if not await lock.acquire():
        return False
    try:
        await item.job(res)
        return True
    except Exception:
        log.exception("scheduled job failed", extra={"job": item.name})
        return False
    finally:
        with contextlib.suppress(Exception):
            await lock.release()


def _load_jobs() -> None:
    import importlib

    for package in JOB_PACKAGES:
        try:
            importlib.import_module(f"{package}.jobs")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.jobs":
                raise


async def run_worker(settings: Settings) -> None:
    _load_jobs()
    res = await Resources.open(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheduler = AsyncIOScheduler(timezone="UTC")
    for item in SCHEDULED:
        scheduler.add_job(
            run_once,
            "interval",
            seconds=item.seconds,
            args=[res, item],
            id=item.name,
            max_instances=1,
            coalesce=True,
        )
    scheduler.start()
    me = f"{socket.gethostname()}:{os.getpid()}"
    tasks = [asyncio.create_task(fn(res), name=name) for name, fn in CONSUMERS]
    log.info(
        "worker started",
        extra={"worker": me, "jobs": [s.name for s in SCHEDULED], "consumers": [n for n, _ in CONSUMERS]},
    )
    try:
        while not stop.is_set():
            await res.redis.set(f"worker:heartbeat:{me}", "1", ex=30)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=10)
    finally:
        scheduler.shutdown(wait=False)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await res.close()
        log.info("worker stopped", extra={"worker": me})
