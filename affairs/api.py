"""苏证通 Affairs: `create_app` builds the Litestar app mounted at `/affairs`."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "affairs"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Affairs",
        description="The unified handling engine's API for business systems.",
        route_handlers=[],
        externals={
            "biz": f"{settings.simulators_url}/biz/healthz",
            "mps": f"{settings.simulators_url}/mps/healthz",
        },
        resources=resources,
    )
