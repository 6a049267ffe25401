"""苏证通 Identity: `create_app` builds the Litestar app mounted at `/identity`."""

from __future__ import annotations

from litestar import Litestar

from core.app import build_app
from core.resources import Resources
from core.settings import Settings

MOUNT = "identity"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Identity",
        description="Real-name identity, 网号/网证, identity codes and the OpenID Connect provider.",
        route_handlers=[],
        externals={
            "ctid": f"{settings.simulators_url}/ctid/healthz",
            "sms": f"{settings.simulators_url}/sms/healthz",
        },
        resources=resources,
    )
