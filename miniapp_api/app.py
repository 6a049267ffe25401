"""苏证通 Mini-program API: `create_app` builds the Litestar app mounted at `/mini`."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.auth import BEARER
from core.resources import Resources
from core.settings import Settings
from miniapp_api import affairs_routes, message_routes, session_routes

MOUNT = "mini"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Mini-program API",
        description="Endpoints for the WeChat and Alipay mini programs: sign-in with the platform's login code, a "
        "one-time real-name binding, message consents and the Alipay service entry. Answers carry only what the "
        "pages show and stay under 16 KB.",
        route_handlers=[*session_routes.ROUTES, *message_routes.ROUTES, *affairs_routes.ROUTES],
        externals={
            "wechat": f"{settings.simulators_url}/wechat/healthz",
            "alipay": f"{settings.simulators_url}/alipay/healthz",
            "ctid": f"{settings.simulators_url}/ctid/healthz",
        },
        resources=resources,
        security_schemes=BEARER,
    )
