"""Core's scheduled jobs."""

from __future__ import annotations

import logging

from core.audit import CHAINS
from core.resources import Resources
from core.worker import scheduled

log = logging.getLogger("szt.jobs")


@scheduled("audit.verify", seconds=3600)
async def verify_audit_chain(res: Resources) -> None:
    """Every hash-chained log (the audit log, and those other packages register: the operation log of orgs)."""
    for name, chain in list(CHAINS.items()):
        findings = await chain.verify(res.db)
        if findings:
            log.error(
                "hash chain broken",
                extra={"chain": name, "findings": [f"{f.seq}:{f.problem}" for f in findings[:50]]},
            )
        else:
            log.info("hash chain intact", extra={"chain": name})
