"""All simulators of external parties on one server (port 8100), each under its own mount."""

from __future__ import annotations

import html

from litestar import Litestar, MediaType, get

from core.app import build_app
from core.health import healthz
from core.observe import ASGIApp, Observability
from core.problems import EXCEPTION_HANDLERS
from core.server import Dispatcher, load_factory
from core.settings import Settings, load_settings

# mount -> (factory, what it plays)
SIMULATORS: dict[str, tuple[str, str]] = {
    "ctid": (
        "simulators.ctid:create_app",
        "CTID real-person identity check (population register, face compare)",
    ),
    "wechat": ("simulators.wechat:create_app", "WeChat: jscode2session, phone number, subscribe messages"),
    "alipay": ("simulators.alipay:create_app", "Alipay open platform: OAuth token, template messages"),
    "hms": ("simulators.hms:create_app", "Huawei HarmonyOS Push Kit v3"),
    "apns": ("simulators.apns:create_app", "Apple Push Notification service (HTTP/2)"),
    "sms": ("simulators.sms:create_app", "SMS gateway"),
    "mps": ("simulators.mps:create_app", "Ministry of Public Security platform"),
    "biz": ("simulators.biz:create_app", "Police business systems"),
    "pay": ("simulators.pay:create_app", "Payment channels: WeChat Pay API v3 (JSAPI) and Alipay open API"),
    "elicence": ("simulators.elicence:create_app", "Jiangsu e-licence library: ID card, driving licence, permit"),
    "tsa": ("simulators.tsa:create_app", "RFC 3161 time-stamping authority"),
    "govplatform": ("simulators.govplatform:create_app", "Government-service platform: 办件 exchange, 办事指南"),
    "sealplatform": ("simulators.sealplatform:create_app", "National / provincial e-seal platform: 赋码, 备案, 互认"),
    "haocp": ("simulators.haocp:create_app", "Provincial 好差评 system: evaluations, rectification steps, queries"),
}


def simple_sim(mount: str, title: str, settings: Settings, handlers: list[object] | None = None) -> Litestar:
    return build_app(
        mount,
        settings=settings,
        behind_edge=False,
        title=f"Simulator: {title}",
        description=f"Stands in for {title} in development and tests. Control endpoints live under /_sim/.",
        route_handlers=handlers or [],
        stateless=True,
    )


def _root(settings: Settings) -> Litestar:
    rows = "".join(
        f'<li><a href="/{m}/schema/openapi.json"><code>/{m}</code></a> — {html.escape(desc)}</li>'
        for m, (_, desc) in SIMULATORS.items()
    )
    page = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>苏证通 simulators</title></head>'
        f"<body><h1>Simulated external parties</h1><ul>{rows}</ul>"
        f"<p>Signing server simulator: <code>{html.escape(settings.signing_server_url)}</code></p></body></html>"
    )

    @get("/", include_in_schema=False, sync_to_thread=False, media_type=MediaType.HTML)
    def landing() -> str:
        return page

    return Litestar(
        route_handlers=[landing, healthz],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        logging_config=None,
    )


def create_simulators(settings: Settings | None = None) -> ASGIApp:
    settings = settings or load_settings()
    apps = {mount: load_factory(spec)(settings) for mount, (spec, _) in SIMULATORS.items()}
    return Observability(Dispatcher(settings, apps, _root(settings), open_resources=False), access_log_enabled=False)
