"""Seed: the demo third-party portal client `demo-portal` (DESIGN.md), its secret kept under var/."""

from __future__ import annotations

import logging
import secrets

from core.resources import Resources
from core.secrets_file import read_or_create
from identity import clients

log = logging.getLogger("szt.seed.identity")
DEMO_CLIENT = "demo-portal"


def _demo_secret(res: Resources) -> str:
    if res.settings.demo_client_secret:
        return res.settings.demo_client_secret
    return read_or_create(res.settings.var_path / "demo-client-secret", lambda: secrets.token_urlsafe(32))


async def seed(res: Resources) -> None:
    if await clients.get(res, DEMO_CLIENT) is not None:
        return
    await clients.create(
        res,
        client_id=DEMO_CLIENT,
        name="演示门户 Demo portal",
        kind="portal",
        redirect_uris=[f"{res.settings.base_url}/demo/callback"],
        entitlements=["name_masked", "age_band", "over_18", "gender"],
        secret=_demo_secret(res),
    )
    log.info(
        "demo portal client created",
        extra={"client_id": DEMO_CLIENT, "secret_file": str(res.settings.var_path / "demo-client-secret")},
    )
