"""Core's scheduled jobs."""

from __future__ import annotations

import logging

from core.audit import verify
from core.resources import Resources
from core.worker import scheduled

log = logging.getLogger("szt.jobs")


@scheduled("audit.verify", seconds=3600)
async def verify_audit_chain(res: Resources) -> None:
    findings = await verify(res.db)
    if findings:
        log.error("audit chain broken", extra={"findings": [f"{f.seq}:{f.problem}" for f in findings[:50]]})
    else:
        log.info("audit chain intact")
