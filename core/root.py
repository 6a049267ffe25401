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
# The landing page is Chinese first, English second (issue 20).
MOUNT_TITLES_ZH: dict[str, str] = {
    "bff": "App 后端（iOS、Android、鸿蒙）",
    "mini": "小程序接口（微信、支付宝）",
    "identity": "统一身份认证（OpenID Connect）",
    "admin": "管理接口与管理后台",
    "eseal": "电子印章接口",
    "affairs": "业务系统事项接口",
    "push": "消息推送接口",
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
        f"<tr><td><code>/{m}</code></td><td>{html.escape(MOUNT_TITLES_ZH.get(m, m))}"
        f'<div class="en">{html.escape(MOUNT_TITLES.get(m, m))}</div></td>'
        f'<td><a href="/{m}/healthz">健康检查</a> · <a href="/{m}/readyz">就绪检查</a> · '
        f'<a href="/{m}/schema/openapi.json">接口文档（OpenAPI）</a></td></tr>'
        for m in mounts
    )
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>苏证通服务端 · Suzhengtong backends</title>
<style>body{{font-family:"Noto Sans CJK SC","WenQuanYi Zen Hei",system-ui,sans-serif;margin:2rem auto;max-width:60rem;
padding:0 1rem;color:#1f2328}} h1{{color:#0b3d91}}
td{{padding:.4rem .8rem;border-bottom:1px solid #ddd;vertical-align:top}}
.en{{color:#57606a;font-size:.85em}} ul{{line-height:2}}</style></head><body>
<h1>苏证通服务端 <span class="en">Suzhengtong backends</span></h1>
<p>服务地址 <code>{base}</code> <span class="en">Server at {base}</span></p>
<ul>
<li><a href="/admin/console">管理后台</a>：管理员登录（用户名 <code>admin</code>）
  <span class="en">Administrators' console</span></li>
<li><a href="/demo">第三方网站扫码登录演示</a>
  <span class="en">A third-party portal logging in with 苏证通 (QR scan)</span></li>
<li><a href="/eseal/verify">签章文件验证</a>：上传已签章的 PDF 或 OFD，逐项检查每个签章
  <span class="en">Verify a signed PDF or OFD</span></li>
<li>外部系统模拟器 <a href="{sim}/">{sim}</a> <span class="en">Simulators of external parties</span></li>
</ul>
<h2>服务模块 <span class="en">Services</span></h2>
<table>{rows}</table>
<p><a href="/healthz">健康检查</a> · <a href="/readyz">就绪检查</a> · <a href="/metrics">运行指标</a>
<span class="en">healthz · readyz · metrics</span></p>
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
