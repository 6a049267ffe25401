"""苏证通 App BFF: `create_app` builds the Litestar app mounted at `/bff`."""

from __future__ import annotations

from litestar import Litestar

from bff import (
    affairs_routes,
    catalog_routes,
    home_routes,
    identity_routes,
    legal_routes,
    licence_routes,
    login_routes,
    push_routes,
)
from core.app import build_app
from core.auth import BEARER
from core.resources import Resources
from core.settings import Settings

MOUNT = "bff"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 App BFF",
        description="Endpoints tailored to the iOS, Android and HarmonyOS apps.",
        route_handlers=[
            *identity_routes.ROUTES,
            *login_routes.ROUTES,
            *legal_routes.ROUTES,
            *push_routes.ROUTES,
            *home_routes.ROUTES,
            *catalog_routes.ROUTES,
            *affairs_routes.ROUTES,
            *licence_routes.ROUTES,
        ],
        externals={"ctid": f"{settings.simulators_url}/ctid/healthz", "sms": f"{settings.simulators_url}/sms/healthz"},
        resources=resources,
        security_schemes=BEARER,
    )
