"""eseal's scheduled jobs: the seal platform's outbox, sealing logs and reconciliation (eseal.sealplatform)."""

from __future__ import annotations

import logging

from core.resources import Resources
from core.worker import scheduled
from eseal import sealplatform

log = logging.getLogger("szt.eseal.jobs")


@scheduled("eseal.platform-outbox", seconds=5)
async def platform_outbox(res: Resources) -> None:
    """Filings and status changes the platform has not taken yet, then the sealing logs after its cursor."""
    delivered = await sealplatform.deliver(res)
    try:
        shipped = await sealplatform.ship_logs(res)
    except (sealplatform.PlatformError, sealplatform.Rejected) as exc:
        log.warning("sealing logs not shipped", extra={"error": str(exc)})
        shipped = 0
    if delivered or shipped:
        log.info("seal platform outbox", extra={"delivered": delivered, "logs": shipped})


@scheduled("eseal.platform-reconcile", seconds=3600)
async def platform_reconcile(res: Resources) -> None:
    """Our seals' state compared with the platform's; drift repaired (ours is authoritative for our seals)."""
    repaired = await sealplatform.reconcile(res)
    if repaired:
        log.warning("seal platform drift repaired", extra={"codes": repaired[:50], "count": len(repaired)})
