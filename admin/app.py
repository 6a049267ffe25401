"""苏证通 Administration: `create_app` builds the Litestar app mounted at `/admin`."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Router
from litestar.exceptions import MethodNotAllowedException, NotFoundException

from admin import (
    catalog_routes,
    console,
    console_applications,
    console_apps,
    console_eseal,
    console_roles,
    log_routes,
    monitor_routes,
    org_application_routes,
    org_routes,
    rating_routes,
    session_routes,
)
from admin.auth import SCHEMES
from admin.oplog import OpLogMiddleware
from admin.pages import FormRefused, not_found_page, refused_page
from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "admin"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    routes: list[Any] = [
        *session_routes.ROUTES,
        *org_routes.ROUTES,
        *org_application_routes.ROUTES,
        *log_routes.ROUTES,
        *monitor_routes.ROUTES,
        *console.ROUTES,
        *console_apps.ROUTES,
        *console_eseal.ROUTES,
    ]
    routes += rating_routes.ROUTES  # 好差评: rectification loop, statistics (affairs.ratings)
    routes += catalog_routes.ROUTES  # app onboarding, review, listing and home layout (catalog)
    routes += console_roles.ROUTES + console_applications.ROUTES  # role editor; county applications (consolescope)
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Administration",
        description="API for provincial and city administrators.",
        # every admin action is written to the operation log by one middleware
        route_handlers=[
            Router(
                path="/",
                route_handlers=routes,
                middleware=[OpLogMiddleware],
                exception_handlers={FormRefused: refused_page},  # a console form post refused: the 403 page
            )
        ],
        externals={},
        resources=resources,
        security_schemes=SCHEMES,
        # an unknown console address or method: the console's 404 page (problem documents elsewhere)
        exception_handlers={NotFoundException: not_found_page, MethodNotAllowedException: not_found_page},
    )
