"""苏证通 Administration: `create_app` builds the Litestar app mounted at `/admin`."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from admin import org_application_routes, org_routes, session_routes
from admin.auth import SCHEMES
from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "admin"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    routes: list[Any] = [*session_routes.ROUTES, *org_routes.ROUTES, *org_application_routes.ROUTES]
    # App onboarding routes (admin/catalog_routes.py, engineer catalog/home) register here once on main.
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Administration",
        description="API for provincial and city administrators.",
        route_handlers=routes,
        externals={},
        resources=resources,
        security_schemes=SCHEMES,
    )
