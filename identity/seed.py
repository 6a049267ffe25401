"""Seed: the demo third-party portal client `demo-portal` (docs/design.md), its secret kept under var/."""

from __future__ import annotations

import logging
import secrets

from core.resources import Resources
from core.secrets_file import read_or_create
from identity import clients, repo

log = logging.getLogger("szt.seed.identity")
DEMO_CLIENT = "demo-portal"


def demo_secret(res: Resources) -> str:
    if res.settings.demo_client_secret:
        return res.settings.demo_client_secret
    return read_or_create(res.settings.var_path / "demo-client-secret", lambda: secrets.token_urlsafe(32))


async def seed(res: Resources) -> None:
    redirect = f"{res.settings.base_url}/demo/callback"
    if await clients.get(res, DEMO_CLIENT) is not None:
        # The server's address may have changed since the first start (SZT_PORT, SZT_PUBLIC_URL).
        await repo.set_client_redirect_uris(res.db, DEMO_CLIENT, [redirect])
        return
    await clients.create(
        res,
        client_id=DEMO_CLIENT,
        name="演示门户 Demo portal",
        kind="portal",
        redirect_uris=[redirect],
        entitlements=["name_masked", "age_band", "over_18", "gender"],
        secret=demo_secret(res),
    )
    log.info(
        "demo portal client created",
        extra={"client_id": DEMO_CLIENT, "secret_file": str(res.settings.var_path / "demo-client-secret")},
    )
