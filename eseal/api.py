"""苏证通 Electronic seals: `create_app` builds the Litestar app mounted at `/eseal`."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "eseal"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Electronic seals",
        description="Certificates, seals, PDF signing and verification for business systems.",
        route_handlers=[],
        externals={"signer": f"{settings.signing_server_url}/healthz"},
        resources=resources,
    )
