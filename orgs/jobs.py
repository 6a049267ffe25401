"""Scheduled jobs of orgs: the integration log's daily backup, the operation log's monthly archive, monitoring
samples and alert evaluation."""

from __future__ import annotations

import logging

from core.resources import Resources
from core.worker import scheduled
from orgs import backup, logs, monitoring, op_archive, stats

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


@scheduled("orgs.op_log_archive", cron="45 0 1 * *", timezone="UTC")
async def op_log_archive(res: Resources) -> None:
    """Monthly, after the turn of the month (UTC): months of the operation log older than the online window move
    into the archive (a missed month is caught up). The hourly audit.verify job verifies the chain across it."""
    moved = await op_archive.archive(res)
    if moved:
        log.info("operation log archived", extra={"months": [m.strftime("%Y-%m") for m in moved]})
