"""Health polling of every listed app's entry: delisted after FAILURES_TO_DELIST failed polls in a row, relisted on
the first good poll afterwards; the owning organisation is notified of both."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from catalog import repo
from catalog.service import publish_layout
from core import outbound
from core.resources import Resources
from core.worker import scheduled

log = logging.getLogger("szt.catalog.health")
FAILURES_TO_DELIST = 3
PROBE_TIMEOUT = 5.0
CONCURRENCY = 16


def entry_url(res: Resources, entry_path: str) -> str | None:
    """The URL polled for an entry: absolute http(s) as is, site paths on our own server; others (mini-program
    paths, native schemes) have no URL to poll."""
    if entry_path.startswith(("http://", "https://")):
        return entry_path
    if entry_path.startswith("/"):
        return res.settings.base_url + entry_path
    return None


async def probe(res: Resources, url: str, *, own_site: bool = False) -> bool:
    """Up = it answers without a server error. A 4xx (sign-in required, a path the app routes itself) is up.

    A site path (`own_site`) is on our own server: we chose the host. An absolute URL is the applicant's: it goes
    through the outbound guard (core.outbound), and a destination the guard refuses (a private or loopback address,
    our own services, plain http in production) counts as down, exactly as one that does not answer or answers
    with a server error. The outcome is kept as a failure count only: up or down of the URL as registered."""
    try:
        if own_site:
            r = await res.http.get(url, timeout=PROBE_TIMEOUT)
            return r.status_code < 500
        answer = await outbound.get(res.settings, url, time_limit=PROBE_TIMEOUT, read_body=False)
    except (httpx.HTTPError, outbound.OutboundError):
        return False
    return answer.status_code < 500


async def _check(res: Resources, app: Any, ok: bool) -> bool:
    """Apply one poll's outcome; returns whether the home layout changed."""
    failures = 0 if ok else app["health_failures"] + 1
    async with res.db.acquire() as conn, conn.transaction():
        await repo.record_health(conn, app["code"], failures=failures)
        if app["listed"] and failures >= FAILURES_TO_DELIST:
            await repo.set_listed(conn, app["code"], listed=False, reason="health")
            await repo.record_health(conn, app["code"], failures=failures)
            message = f"应用“{app['name']}”入口连续 {failures} 次无法访问，已自动下架"
            kind = "auto_delisted"
        elif not app["listed"] and app["delisted_reason"] == "health" and ok:
            await repo.set_listed(conn, app["code"], listed=True, reason="")
            message, kind = f"应用“{app['name']}”入口已恢复，已自动重新上架", "auto_relisted"
        else:
            return False
        await repo.insert_notification(
            conn, org_path=app["org_path"], org_id=app["org_id"], app_code=app["code"], kind=kind, message=message
        )
        version = await repo.bump_layout(conn)
    await publish_layout(res, version)
    log.warning("app health changed its listing", extra={"app": app["code"], "event": kind})
    return True


async def poll_once(res: Resources, codes: set[str] | None = None) -> int:
    """Poll every candidate (or only `codes`); returns how many listings changed."""
    apps = [a for a in await repo.health_candidates(res.db) if codes is None or a["code"] in codes]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(app: Any) -> bool:
        url = entry_url(res, app["entry_path"])
        if url is None:
            return False
        async with gate:
            ok = await probe(res, url, own_site=app["entry_path"].startswith("/"))
        return await _check(res, app, ok)

    changed = await asyncio.gather(*(one(a) for a in apps))
    return sum(changed)


@scheduled("catalog.health", seconds=60)
async def poll_health(res: Resources) -> None:
    await poll_once(res)
