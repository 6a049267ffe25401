"""Seeding on first start (and in tests): each package may define `seed.py` with `async def seed(res)`."""

from __future__ import annotations

import importlib
import logging

from core.resources import Resources

log = logging.getLogger("szt.seed")

SEEDED: tuple[str, ...] = ("orgs", "identity", "catalog", "affairs", "push", "eseal")


async def seed_all(res: Resources) -> list[str]:
    """Run every package's idempotent seed under one advisory lock, so replicas starting together agree."""
    done: list[str] = []
    async with res.db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7200001)")
        for package in SEEDED:
            try:
                module = importlib.import_module(f"{package}.seed")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.seed":
                    raise
                continue
            await module.seed(res)
            done.append(package)
    log.info("seeded", extra={"packages": done})
    return done
