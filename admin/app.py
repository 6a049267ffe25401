"""苏证通 Administration: `create_app` builds the Litestar app mounted at `/admin`."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "admin"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Administration",
        description="API for provincial and city administrators.",
        route_handlers=[],
        externals={},
        resources=resources,
    )
