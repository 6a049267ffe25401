"""Scheduled jobs of orgs: the integration log's daily backup, monitoring samples and alert evaluation."""

from __future__ import annotations

import logging

from core.resources import Resources
from core.worker import scheduled
from orgs import backup, logs, monitoring, stats

log = logging.getLogger("szt.orgs.jobs")


@scheduled("orgs.integration_backup", cron="15 0 * * *", timezone="UTC")
async def integration_backup(res: Resources) -> None:
    """Daily after midnight UTC: each finished day not yet backed up (a missed night is caught up)."""
    made = await backup.backup_missing(res)
    if made:
        log.info("integration log backed up", extra={"days": [d.isoformat() for d in made]})


@scheduled("orgs.monitor_sample", seconds=60)
async def monitor_sample(res: Resources) -> None:
    await monitoring.sample(res)
    await monitoring.evaluate(res)


@scheduled("orgs.monitor_trim", cron="30 0 * * *", timezone="UTC")
async def monitor_trim(res: Resources) -> None:
    await monitoring.trim(res)


@scheduled("orgs.stats_sync", seconds=300)
async def stats_sync(res: Resources) -> None:
    await stats.sync(res)


@scheduled("orgs.integration_drain", seconds=5)
async def integration_drain(res: Resources) -> None:
    """The hot paths queue their integration-log entries in Redis; this moves them into PostgreSQL in batches."""
    moved = await logs.drain_integration(res)
    if moved:
        log.debug("integration log drained", extra={"rows": moved})
