"""What lives at the server's root: landing page, `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException

from core.health import healthz, readyz
from core.observe import metrics_allowed, metrics_payload
from core.problems import EXCEPTION_HANDLERS
from core.settings import Settings

MOUNT_TITLES: dict[str, str] = {
    "bff": "App BFF (iOS, Android, HarmonyOS)",
    "mini": "Mini-program API (WeChat, Alipay)",
    "identity": "Identity and OpenID Connect provider",
    "admin": "Administrators' API and console",
    "eseal": "Electronic seals API",
    "affairs": "Affairs API for business systems",
    "push": "Push and messages API",
}


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text, behind `Authorization: Bearer <metrics token>` unless SZT_METRICS_OPEN (core.observe)."""
    if not metrics_allowed(request.app.state.settings, request.headers.get("authorization")):
        raise NotAuthorizedException("metrics need the bearer token of SZT_METRICS_TOKEN (or var/metrics-token)")
    body, content_type = metrics_payload()
    return Response(body, media_type=content_type)


def _landing(settings: Settings, mounts: list[str]) -> str:
    base = html.escape(settings.base_url)
    sim = html.escape(settings.simulators_url)
    rows = "".join(
        f"<tr><td><code>/{m}</code></td><td>{html.escape(MOUNT_TITLES.get(m, m))}</td>"
        f'<td><a href="/{m}/healthz">healthz</a> · <a href="/{m}/readyz">readyz</a> · '
        f'<a href="/{m}/schema/openapi.json">OpenAPI</a></td></tr>'
        for m in mounts
    )
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>苏证通 backends</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2rem;max-width:60rem}}
td{{padding:.3rem .8rem;border-bottom:1px solid #ddd}}</style></head><body>
<h1>苏证通 Suzhengtong backends</h1><p>Server at <code>{base}</code>.</p>
<table>{rows}</table>
<p><a href="/demo">/demo</a> — a third-party portal logging in with 苏证通 (QR scan)</p>
<p><a href="/admin/console">/admin/console</a> — administrators' console (user <code>admin</code>)</p>
<p><a href="/eseal/verify">/eseal/verify</a> — verify a signed PDF (eight checks per signature)</p>
<p><a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · <a href="/metrics">/metrics</a></p>
<p>Simulators of external parties: <a href="{sim}/">{sim}</a></p>
</body></html>"""


def create_root_app(settings: Settings, mounts: list[str], extra_routes: Sequence[Any] = ()) -> Litestar:
    page = _landing(settings, mounts)

    @get("/", include_in_schema=False, sync_to_thread=False, media_type=MediaType.HTML)
    def landing() -> str:
        return page

    return Litestar(
        route_handlers=[landing, healthz, readyz, metrics, *extra_routes],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        state=State({"resources": None, "externals": {}, "settings": settings}),
        debug=False,
        logging_config=None,  # core.observe configures JSON logs for the process
    )
