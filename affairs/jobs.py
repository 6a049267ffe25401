"""Scheduled jobs of the handling engine (szt worker; each runs on one replica at a time)."""

from __future__ import annotations

import logging
from datetime import timedelta

from affairs import bookings, govservice, payments, ratings, service
from core import clock
from core.problems import ProblemError
from core.resources import Resources
from core.worker import scheduled

log = logging.getLogger("szt.affairs.jobs")


@scheduled("affairs.redeliver", seconds=60)
async def redeliver(res: Resources) -> None:
    """Cases their business system did not take at submission time."""
    n = await service.redeliver(res)
    if n:
        log.info("cases redelivered", extra={"count": n})


@scheduled("affairs.reminders", seconds=900)
async def reminders(res: Resources) -> None:
    await bookings.remind(res)


@scheduled("affairs.no_shows", seconds=600)
async def no_shows(res: Resources) -> None:
    await bookings.sweep_no_shows(res)


@scheduled("affairs.auto_rate", seconds=3600)
async def auto_rate(res: Resources) -> None:
    await service.auto_rate(res)


@scheduled("affairs.reconcile", seconds=6 * 3600)
async def reconcile(res: Resources) -> None:
    """Yesterday's bills (Beijing day) of both channels; rerunning replaces the day's report."""
    day = clock.beijing_today() - timedelta(days=1)
    for channel in ("wechat", "alipay"):
        try:
            report = await payments.reconcile(res, day, channel)
        except ProblemError:
            log.warning("reconciliation failed", extra={"channel": channel})
            continue
        if report.abnormal:
            log.warning("abnormal orders", extra={"channel": channel, "count": report.abnormal})


# The government-service platform (affairs.govservice): its 办件 feed, reconciliation and service guides.
@scheduled("affairs.govfeed", seconds=5)
async def govfeed(res: Resources) -> None:
    """The 办件 records the transitions' nudges did not deliver (platform down, process gone)."""
    n = await govservice.drain(res)
    if n:
        log.info("办件 records delivered", extra={"count": n})


@scheduled("affairs.govreconcile", seconds=3600)
async def govreconcile(res: Resources) -> None:
    try:
        await govservice.reconcile(res)
    except ProblemError as exc:
        log.warning("办件 reconciliation failed", extra={"detail": exc.detail})


@scheduled("affairs.govguides", seconds=3600)
async def govguides(res: Resources) -> None:
    try:
        await govservice.sync_guides(res)
    except ProblemError as exc:
        log.warning("service guide sync failed", extra={"detail": exc.detail})


@scheduled("haocp.deliver", seconds=10)
async def haocp_deliver(res: Resources) -> None:
    """The 好差评 outbox: reports not yet taken by the provincial system (retried with backoff)."""
    n = await ratings.deliver(res)
    if n:
        log.info("haocp reports delivered", extra={"count": n})


@scheduled("haocp.reconcile", seconds=3600)
async def haocp_reconcile(res: Resources) -> None:
    """Our ratings and rectification states of the last 30 days against the provincial system's; drift repaired."""
    try:
        await ratings.reconcile(res)
    except Exception:  # the system is down: the next hour tries again
        log.warning("haocp reconciliation failed", exc_info=True)
