"""苏证通 Push: `create_app` builds the Litestar app mounted at `/push`."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "push"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Push",
        description="One notification service for every channel.",
        route_handlers=[],
        externals={
            "apns": f"{settings.simulators_url}/apns/healthz",
            "hms": f"{settings.simulators_url}/hms/healthz",
            "wechat": f"{settings.simulators_url}/wechat/healthz",
            "alipay": f"{settings.simulators_url}/alipay/healthz",
            "sms": f"{settings.simulators_url}/sms/healthz",
        },
        resources=resources,
    )
