"""The administrators' web console: server-rendered pages in Chinese (Jinja2), plain forms, SVG charts. Signs
in with the same sessions as the API (HttpOnly, SameSite=Strict cookie); every page checks its permission."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from admin import charts, console_apps, names
from admin.guards import token_of
from admin.log_routes import INT_COLUMNS, OP_COLUMNS
from admin.pages import (
    MENU,
    NO_SCHEMA,
    STATUSES,
    Form,
    FormRefused,
    SignInRequired,
    back,
    check_csrf,
    console_page,
    current_admin,
    denied,
    form_post,
    is_https,
    poster,
    refused,
    render,
    same_origin,
    session_cookie,
    show,
    to_sign_in,
    tokens_match,
)
from affairs import govservice  # the government-service platform's line on the monitoring page
from core.clock import SHANGHAI
from core.filters import time_range
from core.problems import ProblemError
from core.ratelimit import client_ip, rate_limit
from core.resources import Resources
from eseal import service as eseal_service
from orgs import logs, masks, monitoring, permissions, registration, seed, service, sessions, stats
from orgs.models import AdminPrincipal, NewRole, Review, SignIn

ADMINS = "/admin/console/admins"


LOGIN_COOKIE = "szt_login"  # the sign-in form's CSRF token before there is a session (double submit)


def _login_cookie(request: Request[Any, Any, Any], value: str, max_age: int = 3600) -> Cookie:
    return Cookie(
        key=LOGIN_COOKIE,
        value=value,
        path="/admin/login",
        httponly=True,
        samesite="strict",
        secure=is_https(request, request.app.state.resources.settings),
        max_age=max_age,
    )


async def _login_form(
    request: Request[Any, Any, Any], res: Resources, status: int = 200, error: str | None = None
) -> Response[str]:
    """The sign-in page; its form carries the token of the `szt_login` cookie (set here when missing)."""
    token = request.cookies.get(LOGIN_COOKIE) or ""
    if not 20 <= len(token) <= 64:
        token = secrets.token_urlsafe(32)
    extra = {"error": error} if error is not None else {}
    response = await render(request, res, "login.html", "", status=status, title="登录", csrf=token, **extra)
    response.set_cookie(_login_cookie(request, token))
    return response


# --- sign-in -----------------------------------------------------------------------------------------------------


@get("/", **NO_SCHEMA)
async def root() -> Redirect:
    return Redirect("/admin/console", status_code=302)


@get("/login", **NO_SCHEMA)
async def login_page(request: Request[Any, Any, Any], res: Resources) -> Response[str]:
    return await _login_form(request, res)


@post(
    "/login",
    guards=[rate_limit(120, 60, name="admin-signin")],
    opt={"action": "admin.sign_in"},
    **NO_SCHEMA,
)
async def login_submit(request: Request[Any, Any, Any], res: Resources, data: Form) -> Response[Any]:
    same_origin(request)
    if not tokens_match(data.get("csrf"), request.cookies.get(LOGIN_COOKIE) or ""):
        raise FormRefused("登录表单已失效，请刷新页面后重试（CSRF token missing or wrong）")
    request.scope.setdefault("state", {})["op_username"] = data.get("username", "")[:64]
    try:
        form = msgspec.convert(
            {
                "username": data.get("username", ""),
                "password": data.get("password", ""),
                "totp": data.get("totp") or None,
            },
            SignIn,
        )
        token = await service.sign_in(res, form, client_ip(request))
    except (ProblemError, msgspec.ValidationError) as exc:
        message = exc.title_zh if isinstance(exc, ProblemError) else "请填写用户名和密码"
        status = exc.status if isinstance(exc, ProblemError) else 400
        return await _login_form(request, res, status, message)
    response: Response[Any] = Redirect("/admin/console", status_code=303)
    response.set_cookie(session_cookie(request, token.access_token))
    response.set_cookie(_login_cookie(request, "", max_age=0))  # spent: the next sign-in page gets a new one
    return response


@post("/logout", opt={"action": "admin.sign_out"}, **NO_SCHEMA)
async def logout(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    same_origin(request)
    token = token_of(request)
    try:
        await current_admin(request, None)
    except SignInRequired:
        token = None  # nothing to end
    if token:
        await check_csrf(request)
        await sessions.revoke(res, token)
    response: Response[Any] = Redirect("/admin/login", status_code=303)
    response.set_cookie(session_cookie(request, None))
    return response


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@get("/login/qr", **NO_SCHEMA)
async def login_qr(request: Request[Any, Any, Any], res: Resources) -> Redirect:
    """QR sign-in through our own OIDC provider: the authorization request page shows the QR code that
    苏证通 scans; the provider redirects back with a code (docs/design.md, "Contract points")."""
    bind_to = ""
    if request.query_params.get("bind"):
        bind_to = str((await current_admin(request, None)).id)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
    verifier, challenge = _pkce()
    await res.redis.set(f"adm:oidc:{state}", msgspec.json.encode([verifier, nonce, bind_to]), ex=600)
    query = urlencode(
        {
            "client_id": seed.CONSOLE_CLIENT,
            "response_type": "code",
            "redirect_uri": f"{res.settings.base_url}/admin/oidc/callback",
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return Redirect(f"{res.settings.issuer_url}/authorize?{query}", status_code=302)


@get("/oidc/callback", opt={"action": "admin.sign_in_qr"}, **NO_SCHEMA)
async def oidc_callback(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
    raw = await res.redis.getdel(f"adm:oidc:{state[:100]}") if state else None
    if not code or raw is None:
        return back("/admin/login", error="扫码登录已失效，请重试")
    verifier, _nonce, bind_to = msgspec.json.decode(raw)
    token = await res.http.post(
        f"{res.settings.issuer_url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code[:500],
            "redirect_uri": f"{res.settings.base_url}/admin/oidc/callback",
            "code_verifier": verifier,
        },
        auth=(seed.CONSOLE_CLIENT, seed.console_secret(res.settings)),
    )
    if token.status_code != 200:
        return back("/admin/login", error="扫码登录失败")
    info = await res.http.get(
        f"{res.settings.issuer_url}/userinfo", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    sub = str(info.json().get("sub", "")) if info.status_code == 200 else ""
    if not sub:
        return back("/admin/login", error="扫码登录失败")
    if bind_to:
        p = await current_admin(request, None)
        if str(p.id) != bind_to:
            return back("/admin/login", error="绑定会话不一致")
        await service.bind_sub(res, p, sub)
        return back("/admin/console", notice="已绑定苏证通账号，可扫码登录")
    try:
        session = await service.sign_in_by_sub(res, sub, client_ip(request))
    except ProblemError as exc:
        return refused("/admin/login", exc)
    response: Response[Any] = Redirect("/admin/console", status_code=303)
    response.set_cookie(session_cookie(request, session.access_token))
    return response


# --- pages -------------------------------------------------------------------------------------------------------


async def _users_chart(res: Resources, p: AdminPrincipal) -> tuple[stats.UserStats, str]:
    await stats.sync(res)
    users = await stats.users(res, p)
    return users, charts.bar_chart("用户地区分布", [(b.label, b.count) for b in users.by_region])


@get("/console", opt={"permission": "dashboard.view"}, **NO_SCHEMA)
async def dashboard(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    try:
        p = await current_admin(request, None)
    except SignInRequired:
        return to_sign_in()
    if not p.has("dashboard.view"):  # a role without the overview (a custom one): its first menu entry instead
        first = next((href for href, _, perm in MENU if p.has(perm)), None)
        if first is None:
            return await denied(request, res, ProblemError(403, "forbidden", "Forbidden", "无权访问"))
        return Redirect(first, status_code=302)
    cards = await service.dashboard_counts(res, p)
    overview = await monitoring.overview(res)
    cards["requests"] = overview.requests_last_hour
    _, users_chart = await _users_chart(res, p)
    traffic = charts.line_chart("近6小时请求量（每分钟）", [("请求数", await monitoring.traffic(res, hours=6))])
    if p.data_scope != "all":  # consolescope: a level short of the platform counts its own apps' calls
        cards["requests"] = await stats.calls_last_hour(res, p)
        per_minute = await stats.calls_per_minute(res, p, 6)
        traffic = charts.line_chart("近6小时本辖区应用调用（每分钟）", [("调用次数", per_minute)])
    return await render(
        request,
        res,
        "dashboard.html",
        "/admin/console",
        me=p,
        title="首页概览",
        cards=cards,
        users_chart=users_chart,
        traffic_chart=traffic,
        inbox=await monitoring.inbox(res, p),
    )


@get("/console/orgs", opt={"permission": "orgs.org.list"}, **NO_SCHEMA)
@console_page
async def orgs_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "orgs.org.list")
    parent = request.query_params.get("parent") or None
    cursor = request.query_params.get("cursor") or None
    page = await service.list_orgs(res, p, parent[:40] if parent else None, cursor, 50)
    apps = await registration.list_applications(res, p, None, None, 50)
    orgs = names.OrgNames(res)
    return await render(
        request,
        res,
        "orgs.html",
        "/admin/console/orgs",
        me=p,
        title="组织机构",
        orgs=page.items,
        next_cursor=page.next_cursor,
        parent=parent,
        org_chain={o.path: await orgs.chain(o.path) for o in page.items},
        region_name=console_apps.region_name,
        org_name_of={a.parent_code: await orgs.name(a.parent_code) for a in apps.items},
        apps=sorted(apps.items, key=lambda a: (a.status != "pending", a.created_at), reverse=False),
    )


@get("/console/org-applications/{app_id:uuid}", opt={"permission": "orgs.org.list"}, **NO_SCHEMA)
async def org_application_page(request: Request[Any, Any, Any], res: Resources, app_id: uuid.UUID) -> Response[Any]:
    async def inner(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
        p = await current_admin(request, "orgs.org.list")
        a = await registration.get(res, p, app_id)
        return await render(
            request, res, "org_application.html", "/admin/console/orgs", me=p, title="机构注册审核", a=a
        )

    return await show(request, res, inner)


@post("/console/org-applications/{app_id:uuid}/review", opt={"action": "orgs.org.review"}, **NO_SCHEMA)
async def org_application_review(
    request: Request[Any, Any, Any], res: Resources, app_id: uuid.UUID, data: Form
) -> Response[Any]:
    target = f"/admin/console/org-applications/{app_id}"
    p = await poster(request, "orgs.org.review", target)
    if isinstance(p, Response):
        return p
    try:
        version = int(data.get("version", "0") or 0) or None
        review = Review(decision=data.get("decision", ""), reason=data.get("reason", "")[:500], version=version)  # type: ignore[arg-type]
        if review.decision not in ("approve", "reject"):
            raise ValueError
        await registration.review(res, p, app_id, review)
    except ProblemError as exc:
        return refused(target, exc)
    except ValueError:
        return back(target, error="请选择通过或驳回")
    return back(target, notice="已通过" if review.decision == "approve" else "已驳回")


@get("/console/{rest:path}", opt={"permission": ""}, **NO_SCHEMA)
async def unknown_page(request: Request[Any, Any, Any], res: Resources, rest: str) -> Response[Any]:
    """Any other console address: the console's 404 page (with the menu when signed in)."""
    try:
        await current_admin(request, None)
    except SignInRequired:
        return to_sign_in()
    return await denied(request, res, ProblemError(404, "not-found", "Not found", "页面不存在"))


@get("/console/admins", opt={"permission": "orgs.admin.list"}, **NO_SCHEMA)
@console_page
async def admins_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "orgs.admin.list")
    status = request.query_params.get("status") or None
    if status not in (None, "pending", "active", "rejected", "disabled"):
        status = None
    page = await service.list_admins(res, p, status, request.query_params.get("cursor") or None, 50)
    return await render(
        request,
        res,
        "admins.html",
        "/admin/console/admins",
        me=p,
        title="账号管理",
        admins=page.items,
        org_names=await names.OrgNames(res).names([a.org_path for a in page.items]),
        next_cursor=page.next_cursor,
        status_filter=status,
        statuses={k: STATUSES[k] for k in ("pending", "active", "rejected", "disabled")},
    )


@post("/console/admins/{admin_id:uuid}/review", opt={"action": "orgs.admin.review"}, **NO_SCHEMA)
async def admin_review(
    request: Request[Any, Any, Any], res: Resources, admin_id: uuid.UUID, data: Form
) -> Response[Any]:
    async def act(p: AdminPrincipal) -> None:
        decision = data.get("decision", "")
        if decision not in ("approve", "reject"):
            raise ValueError(decision)
        await service.review_admin(res, p, admin_id, Review(decision=decision, reason=data.get("reason", "")[:500]))  # type: ignore[arg-type]

    return await form_post(request, "orgs.admin.review", ADMINS, act, "已处理", bad_input="请选择通过或驳回")


@post("/console/admins/{admin_id:uuid}/disable", opt={"action": "orgs.admin.disable"}, **NO_SCHEMA)
async def admin_disable(request: Request[Any, Any, Any], res: Resources, admin_id: uuid.UUID) -> Response[Any]:
    async def act(p: AdminPrincipal) -> None:
        await service.disable_admin(res, p, admin_id)

    return await form_post(request, "orgs.admin.disable", ADMINS, act, "已停用")


@get("/console/roles", opt={"permission": "orgs.role.list"}, **NO_SCHEMA)
@console_page
async def roles_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "orgs.role.list")
    page = await service.list_roles(res, p, None, 100)
    return await render(
        request,
        res,
        "roles.html",
        "/admin/console/roles",
        me=p,
        title="角色权限",
        roles=page.items,
        catalogue=permissions.CATALOGUE,
    )


_OP_FIELDS = [("username", "操作人"), ("action", "操作"), ("ip", "IP"), ("target", "对象"), ("reason", "失败原因")]
_INT_FIELDS = [("app_code", "应用"), ("interface", "接口"), ("ip", "IP"), ("region_code", "地区"), ("detail", "说明")]


@get("/console/logs", opt={"permission": "logs.read"}, **NO_SCHEMA)
@console_page
async def logs_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "logs.read")
    qp = request.query_params
    kind = "integration" if qp.get("kind") == "integration" else "operations"
    fields = _INT_FIELDS if kind == "integration" else _OP_FIELDS
    q = {k: qp.get(k, "")[:200] for k, _ in [*fields, ("result", ""), ("since", ""), ("until", "")] if qp.get(k)}
    result = q.get("result") if q.get("result") in ("ok", "fail") else None
    time_error = ""
    try:
        since, until = time_range(q.get("since"), q.get("until"))
    except ProblemError as exc:
        since = until = None
        time_error = f"{exc.title_zh}：{exc.detail}"
    common = {"result": result, "since": since, "until": until}
    m = await masks.masker(res, p)
    cursor = qp.get("cursor") or None
    page: Any
    if kind == "integration":
        iq = logs.IntegrationQuery(**{k: q.get(k) or None for k, _ in fields}, **common)  # type: ignore[arg-type]
        page = await logs.search_integration(res, p, m, iq, cursor, 50)
        columns = INT_COLUMNS
    else:
        oq = logs.OpQuery(**{k: q.get(k) or None for k, _ in fields}, **common)  # type: ignore[arg-type]
        page = await logs.search_ops(res, p, m, oq, cursor, 50)
        columns = OP_COLUMNS
    api_q = {k: v for k, v in q.items() if k not in ("since", "until")}
    for k in ("since", "until"):
        if common[k] is not None:
            api_q[k] = common[k].isoformat()  # type: ignore[union-attr]
    rows = [msgspec.structs.asdict(e) for e in page.items]
    orgs = names.OrgNames(res)
    org_names = await orgs.names([str(r.get("org_path") or "") for r in rows])
    app_names = await console_apps.app_names(res, p) if kind == "integration" else {}
    return await render(
        request,
        res,
        "logs.html",
        "/admin/console/logs",
        me=p,
        title="日志管理",
        kind=kind,
        fields=fields,
        q=q,
        columns=columns,
        rows=rows,
        cell=_log_cell(org_names, app_names),
        next_cursor=page.next_cursor,
        page_url="/admin/console/logs?" + urlencode({"kind": kind, **q}),
        export_url=f"/admin/v1/logs/{kind}/export?" + urlencode(api_q or {"result": ""}).replace("result=&", ""),
        **({"error": time_error} if time_error else {}),  # type: ignore[arg-type]  # str into **ctx
    )


def _log_cell(org_names: dict[str, str], app_names: dict[str, str]) -> Any:
    """(text, code for the tooltip or "") of one log cell: names where a person reads."""

    def cell(key: str, value: Any) -> tuple[str, str]:
        raw = "" if value is None else str(value)
        if key == "action":
            return names.action_name(raw), raw
        if key == "org_path":
            return org_names.get(raw, raw), raw
        if key == "app_code":
            return app_names.get(raw, raw), raw
        if key == "region_code":
            return console_apps.region_name(raw) if raw else "", raw
        if key in ("direction", "result"):
            return names.word(raw), raw
        return raw, ""

    return cell


@get("/console/reports", opt={"permission": "logs.report"}, **NO_SCHEMA)
@console_page
async def reports_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "logs.report")
    period = request.query_params.get("period", "month")
    if period not in ("week", "month", "quarter", "year"):
        period = "month"
    report = await logs.report(res, p, period, 12)  # type: ignore[arg-type]
    names = {"week": "周报", "month": "月报", "quarter": "季报", "year": "年报"}
    chart = charts.bar_chart(
        f"{names[period]}：接入调用次数",
        [(r.period_start.astimezone(SHANGHAI).strftime("%Y-%m-%d"), r.integration_calls) for r in report.rows],
    )
    return await render(
        request,
        res,
        "reports.html",
        "/admin/console/logs",
        me=p,
        title="日志报表",
        report=report,
        chart=chart,
        periods=names,
    )


@get("/console/monitoring", opt={"permission": "monitor.read"}, **NO_SCHEMA)
@console_page
async def monitoring_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "monitor.read")
    routes = await monitoring.routes(res, 3600)
    busiest = sorted(routes.items, key=lambda r: (-r.count, r.route))  # the busiest route first: the default chart
    route = request.query_params.get("route") or (busiest[0].route if busiest else "")
    pages_total = max(1, -(-len(busiest) // 20))
    try:
        rpage = max(1, min(int(request.query_params.get("rpage") or 1), pages_total))
    except ValueError:
        rpage = 1
    series = await monitoring.series(res, route[:200], None, None) if route else monitoring.Series(route="", points=[])
    latency = charts.line_chart(
        f"接口延迟：{route}",
        [
            ("P50", [(pt.at, pt.p50_ms) for pt in series.points]),
            ("P95", [(pt.at, pt.p95_ms) for pt in series.points]),
            ("P99", [(pt.at, pt.p99_ms) for pt in series.points]),
        ],
        unit="ms",
    )
    rate = charts.line_chart("请求速率（次/秒）", [("速率", [(pt.at, pt.rate_per_s) for pt in series.points])])
    return await render(
        request,
        res,
        "monitoring.html",
        "/admin/console/monitoring",
        me=p,
        title="运行监控",
        ov=await monitoring.overview(res),
        routes=routes,
        busiest=busiest,
        route_rows=busiest[(rpage - 1) * 20 : rpage * 20],
        rpage=rpage,
        rpages=pages_total,
        route=route,
        latency_chart=latency,
        rate_chart=rate,
        alerts=await monitoring.list_rules(res, p),
        govfeed=await govservice.feed_health(res),
        sealplatform=await eseal_service.sealplatform.health(res),
    )


@post("/console/monitoring/alerts", opt={"action": "monitor.alert.create"}, **NO_SCHEMA)
async def monitoring_alert(request: Request[Any, Any, Any], res: Resources, data: Form) -> Response[Any]:
    async def act(p: AdminPrincipal) -> None:
        rule = msgspec.convert(
            {
                "name": data.get("name", ""),
                "metric": data.get("metric", ""),
                "route": data.get("route", "*") or "*",
                "op": data.get("op", ">"),
                "threshold": float(data.get("threshold", "")),
                "window_s": int(data.get("window_s", "300")),
            },
            monitoring.NewAlertRule,
        )
        await monitoring.create_rule(res, p, rule)

    target = "/admin/console/monitoring"
    return await form_post(request, "monitor.alert.edit", target, act, "规则已添加", bad_input="规则参数无效")


@get("/console/stats", opt={"permission": "stats.read"}, **NO_SCHEMA)
@console_page
async def stats_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "stats.read")
    users, region_chart = await _users_chart(res, p)
    access = await stats.access(res, p, "day", "total", None, None)
    apps = await stats.app_usage(res, p, None, None)
    return await render(
        request,
        res,
        "stats.html",
        "/admin/console/stats",
        me=p,
        title="统计分析",
        users=users,
        region_chart=region_chart,
        age_chart=charts.bar_chart("用户年龄段分布", [(b.label, b.count) for b in users.by_age_band]),
        sex_chart=charts.bar_chart("用户性别分布", [(b.label, b.count) for b in users.by_sex]),
        access_chart=charts.line_chart(
            "近30天接入调用（每日）", [("调用次数", [(r.period_start, r.calls) for r in access.rows])]
        ),
        apps=apps,
        calls=sum(r.calls for r in access.rows),
    )


@get("/console/masking", opt={"permission": "masking.read"}, **NO_SCHEMA)
@console_page
async def masking_page(request: Request[Any, Any, Any], res: Resources) -> Response[Any]:
    p = await current_admin(request, "masking.read")
    roles = await service.list_roles(res, p, None, 100)
    return await render(
        request,
        res,
        "masking.html",
        "/admin/console/masking",
        me=p,
        title="脱敏管理",
        fields=list((await masks.catalogue(res)).values()),
        roles=roles.items,
    )


@post("/console/masking/{field:str}", opt={"action": "masking.edit"}, **NO_SCHEMA)
async def masking_update(request: Request[Any, Any, Any], res: Resources, field: str, data: Form) -> Response[Any]:
    async def act(p: AdminPrincipal) -> None:
        await masks.update(res, p, field[:40], masks.MaskFieldUpdate(level=int(data.get("level", "0"))))

    return await form_post(request, "masking.edit", "/admin/console/masking", act, "已保存", bad_input="级别无效")


ROUTES: list[Any] = [
    root,
    login_page,
    login_submit,
    logout,
    login_qr,
    oidc_callback,
    dashboard,
    orgs_page,
    org_application_page,
    org_application_review,
    unknown_page,
    admins_page,
    admin_review,
    admin_disable,
    roles_page,
    logs_page,
    reports_page,
    monitoring_page,
    monitoring_alert,
    stats_page,
    masking_page,
    masking_update,
]
_ = NewRole
