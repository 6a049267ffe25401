"""The token endpoint writes the app-integration log cheaply: one Redis push per call, moved into PostgreSQL in
batches by the worker job `orgs.integration_drain`; the calls then show in the integration-log search."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from core.resources import Resources
from identity import clients
from orgs import jobs, logs
from tests.admin_helpers import platform_admin
from tests.oidc_helpers import make_portal


async def queued_at_least(res: Resources, n: int) -> int:
    """The server pushes its entries in batches within logs.FLUSH_SECONDS: wait for them (bounded)."""
    for _ in range(100):
        length: int = await res.redis.llen(logs.INTEGRATION_QUEUE)
        if length >= n:
            return length
        await asyncio.sleep(0.05)
    return length


async def test_token_calls_show_in_the_integration_log(http: httpx.Client, res: Resources, var_dir: Path) -> None:
    portal = await make_portal(res)
    admin = platform_admin(http, var_dir)
    ok = http.post("/identity/token", data={"grant_type": "client_credentials"}, auth=portal.auth)
    assert ok.status_code == 200, ok.text
    bad = http.post("/identity/token", data={"grant_type": "password"}, auth=portal.auth)
    assert bad.status_code == 400, bad.text

    def search() -> list[dict[str, object]]:
        r = http.get("/admin/v1/logs/integration", params={"app_code": portal.client_id}, headers=admin)
        assert r.status_code == 200, r.text
        items: list[dict[str, object]] = r.json()["items"]
        return items

    assert search() == []  # queued, not written on the request's path
    assert await queued_at_least(res, 2) >= 2
    got: list[dict[str, object]] = []
    for _ in range(50):  # the server's batch may still be on its way
        await jobs.integration_drain(res)
        got = sorted(search(), key=lambda e: str(e["at"]))
        if len(got) >= 2:
            break
        await asyncio.sleep(0.1)
    assert [(e["interface"], e["status"], e["result"], e["detail"]) for e in got] == [
        ("/identity/token", 200, "ok", "client_credentials"),
        ("/identity/token", 400, "fail", "password"),
    ]
    assert all(e["direction"] == "inbound" and float(str(e["latency_ms"])) > 0 for e in got)
    assert await res.redis.llen(logs.INTEGRATION_QUEUE) == 0


async def test_code_verification_shows_in_the_integration_log(
    http: httpx.Client, res: Resources, var_dir: Path
) -> None:
    made = await clients.create(
        res, client_id=f"v-{uuid.uuid4().hex[:8]}", name="核验点", kind="verifier", entitlements=["name"]
    )
    r = http.post(
        "/identity/v1/codes/verify", json={"code": "HELLO"}, auth=(made.client.client_id, made.client_secret or "")
    )
    assert r.status_code == 400, r.text
    found: list[dict[str, object]] = []
    admin = platform_admin(http, var_dir)
    for _ in range(50):  # the server's batch may still be on its way
        await jobs.integration_drain(res)
        found = http.get(
            "/admin/v1/logs/integration", params={"app_code": made.client.client_id}, headers=admin
        ).json()["items"]
        if found:
            break
        await asyncio.sleep(0.1)
    assert [(e["interface"], e["status"], e["result"]) for e in found] == [("/identity/v1/codes/verify", 400, "fail")]
