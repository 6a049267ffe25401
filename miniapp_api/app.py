"""苏证通 Mini-program API: `create_app` builds the Litestar app mounted at `/mini`."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "mini"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Mini-program API",
        description="Endpoints for the WeChat and Alipay mini programs.",
        route_handlers=[],
        externals={
            "wechat": f"{settings.simulators_url}/wechat/healthz",
            "alipay": f"{settings.simulators_url}/alipay/healthz",
        },
        resources=resources,
    )
