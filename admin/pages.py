"""What every console page shares: the Jinja2 environment and the page frame (menu, labels, security headers), the
signed-in administrator of a page or form post, the page wrapper that turns a missing session into the sign-in page
and a refused permission into a 403 page, the checks of every form post (Origin against the public origin, the
session's CSRF token in the hidden `csrf` field: a 403 page otherwise), the session cookie (`Secure` whenever the
public URL is https or the request came over https) and the redirect back with a notice or an error. The console
modules (admin/console*.py) build their pages from these."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from admin.guards import COOKIE, authenticate, csrf_of
from core import forwarded
from core.clock import SHANGHAI
from core.problems import ProblemError
from core.resources import Resources
from core.settings import Settings
from orgs import service, sessions, tree
from orgs.models import AdminPrincipal

Req = Request[Any, Any, Any]
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
NO_SCHEMA: dict[str, Any] = {"include_in_schema": False}
SIGN_IN = "/admin/login"

env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())
env.filters["cst"] = lambda v: v.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if v else ""

MENU = [
    ("/admin/console", "首页概览", "dashboard.view"),
    ("/admin/console/orgs", "组织机构", "orgs.org.list"),
    ("/admin/console/admins", "账号管理", "orgs.admin.list"),
    ("/admin/console/roles", "角色权限", "orgs.role.list"),
    ("/admin/console/apps", "应用管理", "catalog.app.list"),
    ("/admin/console/my-apps", "我的申请", "catalog.app.apply"),  # consolescope: apply, follow, notifications
    ("/admin/console/logs", "日志管理", "logs.read"),
    ("/admin/console/monitoring", "运行监控", "monitor.read"),
    ("/admin/console/stats", "统计分析", "stats.read"),
    ("/admin/console/masking", "脱敏管理", "masking.read"),
    ("/admin/console/eseal", "电子印章", "eseal.read"),
]
LEVELS = {"province": "省级", "city": "市级", "county": "县（区）级", "station": "派出所"}
KINDS = {"bureau": "公安机关", "police_type": "警种部门", "station": "基层所队"}
STATUSES = {"pending": "待审核", "approved": "已通过", "rejected": "已驳回", "active": "正常", "disabled": "已停用"}
SCOPES = {"own": "本机构", "subtree": "本机构及下级", "all": "全部"}


def html(body: str, status: int = 200) -> Response[str]:
    return Response(
        body,
        status_code=status,
        media_type="text/html",  # Litestar adds "; charset=utf-8"
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'; form-action 'self'",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        },
    )


async def render(
    request: Req, res: Resources, template: str, active: str, status: int = 200, **ctx: Any
) -> Response[str]:
    me: AdminPrincipal | None = ctx.pop("me", None)
    page = env.get_template(
        template
    ).render(
        me=me,
        menu=MENU,
        active=active,
        org_name=await service.org_name(res, me.org_id) if me else "",
        scope_label=SCOPES.get(me.data_scope, "") if me else "",
        police_types=tree.POLICE_TYPES,
        **{  # defaults a page may override (the accounts page shows only some statuses)
            "levels": LEVELS,
            "kinds": KINDS,
            "statuses": STATUSES,
            "scopes": SCOPES,
            "csrf": csrf_of(request),
            "error": request.query_params.get("error", "")[:200],
            "notice": request.query_params.get("notice", "")[:200],
            **ctx,
        },
    )
    return html(page, status)


class SignInRequired(Exception):
    """No administrator session: the page sends the browser to the sign-in page."""


async def current_admin(request: Req, permission: str | None) -> AdminPrincipal:
    """The signed-in administrator; SignInRequired without a session, a 403 problem without `permission`."""
    try:
        p = await authenticate(request)
    except ProblemError as exc:
        raise SignInRequired from exc
    if permission and not p.has(permission):
        raise ProblemError(403, "forbidden", "Forbidden", "无权访问", f"requires permission {permission}")
    return p


class FormRefused(Exception):
    """A console form post from elsewhere (Origin) or without this session's CSRF token: a 403 page."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def is_https(request: Req, settings: Settings) -> bool:
    """Whether cookies get `Secure`: the public URL is https, or the request reached us over https (directly, or as
    a trusted proxy's X-Forwarded-Proto / Forwarded says: core.forwarded)."""
    return forwarded.secure_cookies(request.scope, settings)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(request: Req, settings: Settings) -> set[str]:
    """The public origin (SZT_PUBLIC_URL) and the origin the request itself was addressed to (scheme as a trusted
    proxy reports it, Host)."""
    return {_origin(settings.base_url), f"{request.url.scheme}://{request.url.netloc}".lower()}


def same_origin(request: Req) -> None:
    """Console forms post from our own pages only (SameSite=Strict cookie, an Origin check, the CSRF token)."""
    origin = request.headers.get("origin")
    if origin and origin.lower() not in allowed_origins(request, request.app.state.resources.settings):
        raise FormRefused("跨站请求被拒绝（cross-origin form post）")


def tokens_match(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


async def check_csrf(request: Req) -> None:
    """The form's hidden `csrf` field is the signed-in session's token (synchronizer token pattern)."""
    form = await request.form()
    if not tokens_match(form.get("csrf"), csrf_of(request)):
        raise FormRefused("表单已失效，请刷新页面后重试（CSRF token missing or wrong）")


def refused_page(request: Req, exc: FormRefused) -> Response[str]:
    """The 403 page of a refused form post (an exception handler of the admin app)."""
    page = env.get_template("forbidden.html").render(
        me=None, menu=MENU, active="", title="请求被拒绝", detail=exc.detail, error="", notice=""
    )
    return html(page, 403)


def session_cookie(request: Req, token: str | None) -> Cookie:
    """The console's session cookie (`szt_admin`): HttpOnly, SameSite=Strict, `Secure` when is_https; kept by the
    browser up to the absolute cap (the server ends it earlier when idle); `None` clears it."""
    settings = request.app.state.resources.settings
    return Cookie(
        key=COOKIE,
        value=token or "",
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=is_https(request, settings),
        max_age=sessions.max_seconds(settings) if token else 0,
    )


def back(path: str, **params: str) -> Redirect:
    """303 to `path`, with `notice=` or `error=` for the page to show."""
    return Redirect(path + ("?" + urlencode(params) if params else ""), status_code=303)


def to_sign_in() -> Redirect:
    return Redirect(SIGN_IN, status_code=302)


def refused(target: str, exc: ProblemError) -> Redirect:
    """Back to `target` with a refused action's reason."""
    return back(target, error=f"{exc.title_zh}：{exc.detail}")


async def admitted(request: Req) -> Response[Any] | None:
    """The checks every console form post passes first: same origin, a session (else: the sign-in page, returned),
    then the session's CSRF token (FormRefused, the 403 page, when it is missing or wrong)."""
    same_origin(request)
    try:
        await current_admin(request, None)
    except SignInRequired:
        return to_sign_in()
    await check_csrf(request)
    return None


async def poster(request: Req, permission: str, target: str) -> AdminPrincipal | Response[Any]:
    """The form post's administrator holding `permission` (after the same-origin check), or where to send the
    browser instead: the sign-in page, or `target` saying the permission is missing (rather than a bare 403). A
    post without the session's CSRF token raises FormRefused (the 403 page)."""
    if (elsewhere := await admitted(request)) is not None:
        return elsewhere
    try:
        return await current_admin(request, permission)
    except ProblemError as exc:
        return back(target, error=exc.title_zh)


async def form_post(
    request: Req,
    permission: str,
    target: str,
    act: Callable[[AdminPrincipal], Awaitable[object]],
    notice: str,
    *,
    bad_input: str | None = None,
) -> Response[Any]:
    """A console form post that does one thing: the same-origin check, the administrator holding `permission`, then
    `act`; back to `target` with `notice`, with `bad_input` when a value does not parse (ValueError), or with the
    reason a refusal gives (ProblemError, a missing permission included). Without a session: the sign-in page;
    without the session's CSRF token: FormRefused (the 403 page)."""
    if (elsewhere := await admitted(request)) is not None:
        return elsewhere
    try:
        await act(await current_admin(request, permission))
    except ValueError:
        if bad_input is None:
            raise
        return back(target, error=bad_input)
    except ProblemError as exc:
        return refused(target, exc)
    return back(target, notice=notice)


def path_uuid(request: Req, name: str) -> uuid.UUID:
    """A UUID path parameter; a 404 problem when it is not one."""
    try:
        return uuid.UUID(str(request.path_params[name]))
    except ValueError as exc:
        raise ProblemError(404, "not-found", "Not found", "资源不存在") from exc


PageFn = Callable[[Req, Resources], Awaitable[Response[Any]]]


def console_page(fn: PageFn) -> Any:
    """Console pages: redirect to the sign-in page without a session; a 403 page without the permission."""

    async def wrapper(request: Req, res: Resources) -> Response[Any]:
        try:
            return await fn(request, res)
        except SignInRequired:
            return to_sign_in()
        except ProblemError as exc:
            if exc.status in (403, 404):
                me = await authenticate(request)
                return await render(
                    request,
                    res,
                    "forbidden.html",
                    "",
                    status=exc.status,
                    me=me,
                    title=exc.title_zh,
                    detail=exc.title_zh,
                )
            raise

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


async def show(request: Req, res: Resources, fn: PageFn) -> Response[Any]:
    """A page whose handler takes path parameters: `fn` rendered as `console_page` renders it."""
    response: Response[Any] = await console_page(fn)(request, res)
    return response
