"""The combined server: every front door and domain API on one port, each under its own first path segment."""

from __future__ import annotations

import gc
import importlib
import logging
from typing import Any

from litestar import Litestar

from core.edge import Edge
from core.lifespan import LifespanDriver
from core.observe import ASGIApp, Observability, Receive, Scope, Send, setup_logging
from core.resources import Resources
from core.settings import Settings, load_settings

log = logging.getLogger("szt.server")

# mount -> "module:factory". Each factory is `create_app(settings, resources=None) -> Litestar`.
APPS: dict[str, str] = {
    "bff": "bff.app:create_app",
    "mini": "miniapp_api.app:create_app",
    "identity": "identity.api:create_app",
    "admin": "admin.app:create_app",
    "eseal": "eseal.api:create_app",
    "affairs": "affairs.api:create_app",
    "push": "push.api:create_app",
}


def load_factory(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def build_apps(settings: Settings, names: list[str] | None = None) -> dict[str, Litestar]:
    chosen = names or list(APPS)
    unknown = [n for n in chosen if n not in APPS]
    if unknown:
        raise SystemExit(f"unknown app(s): {', '.join(unknown)}; known: {', '.join(APPS)}")
    return {name: load_factory(APPS[name])(settings) for name in chosen}


class Dispatcher:
    """Routes by the first path segment; shares one set of resources among all apps; runs their lifespans."""

    def __init__(
        self, settings: Settings, apps: dict[str, Litestar], root: Litestar, *, open_resources: bool = True
    ) -> None:
        self.settings = settings
        self.open_resources = open_resources
        # An app may name an ASGI layer to put in front of itself (identity: its OAuth hot paths).
        self.apps: dict[str, ASGIApp] = {
            name: app.state.get("asgi_front", lambda a: a)(app) for name, app in apps.items()
        }
        self.litestar_apps = [*apps.values(), root]
        self.root = root
        self.resources: Resources | None = None
        self._drivers: list[LifespanDriver] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        end = path.find("/", 1)
        app = self.apps.get(path[1:end] if end > 0 else path[1:], self.root)
        await app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        if self.open_resources:
            self.resources = await Resources.open(self.settings)
        for app in self.litestar_apps:
            app.state.resources = self.resources
            driver = LifespanDriver(app)
            await driver.startup()
            self._drivers.append(driver)
        # Everything loaded so far (modules, apps, routes: some 400,000 objects) lives as long as the process; moved out
        # of the collector's reach, a full collection no longer walks it (~100 ms per worker each time, a stall of
        # every request in flight).
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        for driver in reversed(self._drivers):
            await driver.shutdown()
        if self.resources is not None:
            await self.resources.close()


def create_server(settings: Settings | None = None, names: list[str] | None = None) -> ASGIApp:
    from core.root import create_root_app

    settings = settings or load_settings()
    apps = build_apps(settings, names)
    # The demo portal lives at the root; it is identity's showcase, loaded by name like the apps.
    demo = load_factory("identity.oidc.demo:ROUTES") if "identity" in apps else []
    root = create_root_app(settings, sorted(apps), demo)
    return Observability(
        Edge(Dispatcher(settings, apps, root), settings), access_log_enabled=settings.log_level.upper() == "DEBUG"
    )


def server_from_env() -> ASGIApp:
    """Import target for granian workers: the apps to serve come from SZT_SERVE_APPS."""
    settings = load_settings()
    setup_logging(settings.log_level)
    return create_server(settings, settings.serve_app_names or None)
