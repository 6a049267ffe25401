"""Scheduled jobs of the government-service platform's party (affairs.govservice), imported by affairs.jobs."""

from __future__ import annotations

import logging

from affairs import govservice
from core.problems import ProblemError
from core.resources import Resources
from core.worker import scheduled

log = logging.getLogger("szt.affairs.govjobs")


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
