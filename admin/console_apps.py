"""Console pages of app onboarding (应用管理): the review queue of the administrator's data scope, one application's
review page with its differences from the live version, approval (the client secret shown once, on the result
page only), rejection with a reason, and listing / delisting. Everything goes through catalog.service, which
applies the same level and data-scope rules as the API (admin/catalog_routes.py); the operation log middleware
records each form post under its `action`."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from litestar import Response, get, post

from admin import names, pages
from catalog import icons
from catalog import service as catalog
from catalog.models import CITIES, PROVINCE, AppView, Review, VersionView
from core.problems import ProblemError
from core.ratelimit import client_ip
from core.resources import Resources
from orgs.models import AdminPrincipal

ACTIVE = "/admin/console/apps"
KINDS = {"h5": "H5 应用", "mini_program": "小程序", "native": "原生模块", "backend": "后端对接"}
CHANNELS = {"ios": "iOS", "android": "Android", "harmony": "鸿蒙", "wechat": "微信", "alipay": "支付宝"}
SCOPE_NAMES = {
    "openid": "登录标识",
    "profile": "基本资料",
    "realname": "实名信息",
    "idcard": "身份证号",
    "phone": "手机号",
    "age": "年龄",
    "gender": "性别",
    "enterprise": "企业信息",
    "offline_access": "离线访问",
}
# What the review page compares with the live version (label, how to show a value).
DIFF_FIELDS = [
    ("name", "名称"),
    ("icon_digest", "图标"),
    ("category", "分类"),
    ("kind", "类型"),
    ("entry_path", "入口地址"),
    ("channels", "渠道"),
    ("regions", "地区"),
    ("scopes", "身份权限"),
]


def region_name(code: str) -> str:
    return "全省" if code == PROVINCE else CITIES[code][0] if code in CITIES else code


def shown(field: str, value: Any) -> str:
    if field == "kind":
        return KINDS.get(value, value)
    if field == "channels":
        return "、".join(CHANNELS.get(c, c) for c in value)
    if field == "regions":
        return "、".join(region_name(c) for c in value)
    if field == "scopes":
        return "、".join(f"{SCOPE_NAMES.get(s, s)}（{s}）" for s in value) or "无"
    if isinstance(value, list):
        return "、".join(value)
    return str(value)


def icon_url(digest: str, size: int = 96) -> str:
    return icons.url_for("", digest, size) if digest else ""  # same origin: the CSP allows 'self' images only


def app_page_helpers() -> dict[str, Any]:
    """What the app pages' templates call: names of kinds, regions and statuses, icon URLs."""
    return {
        "app_kinds": KINDS,
        "region_name": region_name,
        "shown": shown,
        "icon_url": icon_url,
        "app_statuses": pages.STATUSES,
    }


def diff(v: VersionView, live: AppView | None) -> list[dict[str, Any]]:
    rows = []
    for field, label in DIFF_FIELDS:
        new = getattr(v, field)
        old = getattr(live, field) if live is not None else None
        rows.append(
            {"field": field, "label": label, "new": new, "old": old, "changed": live is not None and new != old}
        )
    return rows


async def apps_in_scope(res: Resources, p: AdminPrincipal) -> list[AppView]:
    """Every live app of the administrator's data scope (a catalogue of a province's apps: hundreds, not millions;
    the console filters, sorts and pages them here)."""
    out: list[AppView] = []
    cursor: str | None = None
    while True:
        batch, cursor = await catalog.apps(res, p, cursor=cursor, limit=200)
        out += batch
        if cursor is None:
            return out


async def app_names(res: Resources, p: AdminPrincipal) -> dict[str, str]:
    return {a.code: a.name for a in await apps_in_scope(res, p)}


PAGE_SIZE = 20
SORTS = {"newest": "最新发布在前", "oldest": "最早发布在前", "name": "按名称", "code": "按编码"}
LIST_STATES = {"listed": "已上架", "delisted": "已下架"}
KEPT = ("q", "status", "kind", "region", "sort", "page")  # the list's own query, kept through a form post


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, min(int(value or default), 10_000))
    except ValueError:
        return default


@get("/console/apps", opt={"permission": "catalog.app.list"}, **pages.NO_SCHEMA)
@pages.console_page
async def apps_page(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.current_admin(request, "catalog.app.list")
    qp = request.query_params
    pending = await catalog.versions(res, p, status="pending", cursor=(qp.get("vcursor") or "")[:60] or None, limit=50)
    q = (qp.get("q") or "").strip()[:40]
    status = qp.get("status") if qp.get("status") in LIST_STATES else ""
    kind = qp.get("kind") if qp.get("kind") in KINDS else ""
    region = (qp.get("region") or "")[:6]
    region = region if region == PROVINCE or region in CITIES else ""
    sort = qp.get("sort") if qp.get("sort") in SORTS else "newest"
    every = await apps_in_scope(res, p)
    found = [
        a
        for a in every
        if (not q or q.lower() in a.name.lower() or q.lower() in a.code.lower())
        and (not status or a.listed == (status == "listed"))
        and (not kind or a.kind == kind)
        and (not region or region in a.regions)
    ]
    # App codes come from a sequence: the highest code is the newest app.
    if sort == "name":
        found.sort(key=lambda a: (a.name, a.code))
    else:
        found.sort(key=lambda a: a.code, reverse=sort == "newest")
    pages_total = max(1, -(-len(found) // PAGE_SIZE))
    page = min(_int(qp.get("page"), 1), pages_total)
    shown_apps = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    filters = {"q": q, "status": status, "kind": kind, "region": region, "sort": sort}
    orgs = names.OrgNames(res)
    applicants = await orgs.names([a.org_path for a in shown_apps])
    return await pages.render(
        request,
        res,
        "apps.html",
        ACTIVE,
        me=p,
        title="应用管理",
        pending=pending.items,
        next_vcursor=pending.next_cursor,
        apps=shown_apps,
        total=len(found),
        page=page,
        pages_total=pages_total,
        filters=filters,
        base_query=urlencode({k: v for k, v in filters.items() if v}),
        here=urlencode({**{k: v for k, v in filters.items() if v}, "page": str(page)}),
        sorts=SORTS,
        list_states=LIST_STATES,
        regions={PROVINCE: "全省", **{c: n for c, (n, *_rest) in CITIES.items()}},
        applicants=applicants,
        **app_page_helpers(),
    )


@get("/console/app-versions/{version_id:uuid}", opt={"permission": "catalog.app.list"}, **pages.NO_SCHEMA)
async def app_version_page(request: pages.Req, res: Resources, version_id: uuid.UUID) -> Response[Any]:
    async def inner(request: pages.Req, res: Resources) -> Response[Any]:
        p = await pages.current_admin(request, "catalog.app.list")
        v = await catalog.get_version(res, p, pages.path_uuid(request, "version_id"))
        app = await catalog.get_app(res, p, v.app_code)
        live = app if app.live_version > 0 and app.live_version != v.version else None
        return await pages.render(
            request,
            res,
            "app_review.html",
            ACTIVE,
            me=p,
            title="应用接入审核",
            v=v,
            app=app,
            live=live,
            rows=diff(v, live),
            **app_page_helpers(),
        )

    return await pages.show(request, res, inner)


@post("/console/app-versions/{version_id:uuid}/review", opt={"action": "catalog.app.review"}, **pages.NO_SCHEMA)
async def app_version_review(
    request: pages.Req, res: Resources, version_id: uuid.UUID, data: pages.Form
) -> Response[Any]:
    target = f"/admin/console/app-versions/{version_id}"
    p = await pages.poster(request, "catalog.app.review", target)
    if isinstance(p, Response):
        return p
    decision = data.get("decision", "")
    if decision not in ("approve", "reject"):
        return pages.back(target, error="请选择通过或驳回")
    reason = data.get("reason", "").strip()[:500]
    if decision == "reject" and not reason:
        return pages.back(target, error="驳回时必须填写理由")
    try:
        outcome = await catalog.review(
            res,
            p,
            version_id,
            Review(decision="approve" if decision == "approve" else "reject", reason=reason),
            ip=client_ip(request),
        )
    except ProblemError as exc:
        return pages.refused(target, exc)
    request.scope.setdefault("state", {})["op_target"] = outcome.version.app_code
    if decision == "reject":
        return pages.back(target, notice="已驳回，申请单位可修改后重新提交")
    # The secret is in this one response only (no page shows it again): rendered here, never put in a redirect URL.
    return await pages.render(
        request,
        res,
        "app_approved.html",
        ACTIVE,
        me=p,
        title="审核通过",
        v=outcome.version,
        client_id=outcome.client_id,
        client_secret=outcome.client_secret,
        **app_page_helpers(),
    )


@post("/console/apps/{code:str}/listing", opt={"action": "catalog.app.listing"}, **pages.NO_SCHEMA)
async def app_listing(request: pages.Req, res: Resources, code: str, data: pages.Form) -> Response[Any]:
    keep = pages.kept_query(data.get("back", ""), KEPT)  # back to the same filters and page
    p = await pages.poster(request, "catalog.app.delist", ACTIVE)
    if isinstance(p, Response):
        return p
    listed = data.get("listed") == "1"
    reason = data.get("reason", "").strip()[:500]
    if not listed and not reason:
        return pages.back(ACTIVE, error="下架时请填写原因", keep=keep)
    try:
        await catalog.set_listing(res, p, code[:10], listed, reason, ip=client_ip(request))
    except ProblemError as exc:
        return pages.refused(ACTIVE, exc, keep=keep)
    return pages.back(ACTIVE, notice="应用已上架" if listed else "应用已下架", keep=keep)


ROUTES: list[Any] = [apps_page, app_version_page, app_version_review, app_listing]
