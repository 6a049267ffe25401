"""Signing server simulator (port 8200): plays a GM/T 0029-style signing and verification device."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.observe import ASGIApp, Observability
from core.settings import Settings, load_settings


def create_app(settings: Settings) -> Litestar:
    return build_app(
        "",
        settings=settings,
        title="Simulator: signing and verification server",
        description="Stands in for the hardware signing server: keys at indexes, SM2/RSA sign and verify.",
        route_handlers=[],
        stateless=True,
    )


def create_signer(settings: Settings | None = None) -> ASGIApp:
    return Observability(create_app(settings or load_settings()), access_log_enabled=False)
