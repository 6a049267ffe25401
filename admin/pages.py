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
from core.problems import ProblemError, handle_http
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

# --- messages: a page shows only text of this catalogue, keyed by the `msg` code of its URL (never URL text) -------
NOTICES: dict[str, str] = {
    "org-approved": "已通过",
    "org-rejected": "已驳回",
    "admin-done": "已处理",
    "admin-disabled": "已停用",
    "alert-added": "规则已添加",
    "masking-saved": "已保存",
    "qr-bound": "已绑定苏证通账号，可扫码登录",
    "app-rejected": "已驳回，申请单位可修改后重新提交",
    "app-listed": "应用已上架",
    "app-delisted": "应用已下架",
    "seal-applied": "印章申请已提交，等待审核",
    "seal-approved": "已审核通过",
    "seal-rejected": "已驳回",
    "seal-made": "已制作（印模、SES_Seal 已生成）",
    "seal-registered": "已备案",
    "seal-published": "已发布",
    "seal-suspended": "已暂停",
    "seal-resumed": "已恢复",
    "seal-revoked": "已撤销",
    "seal-destroyed": "已销毁",
    "seal-ungranted": "已取消授权",
    "seal-granted": "已授权",
    "seal-bound": "已绑定证书",
    "cert-applied": "证书申请已提交，请审核签发",
    "cert-issued": "已审核并签发",
    "cert-rejected": "已驳回",
    "cert-suspended": "已冻结",
    "cert-resumed": "已解冻",
    "cert-revoked": "已吊销",
    "cert-renewed": "已续期",
    "role-created": "角色已创建",
    "role-saved": "角色已保存，持有该角色的管理员需重新登录",
    "roles-assigned": "角色已分配",
    "app-applied": "应用申请已提交，等待上级审核",
}
ERRORS: dict[str, str] = {
    "qr-expired": "扫码登录已失效，请重试",
    "qr-failed": "扫码登录失败",
    "qr-mismatch": "绑定会话不一致",
    "pick-decision": "请选择通过或驳回",
    "reason-required": "驳回时必须填写理由",
    "delist-reason": "下架时请填写原因",
    "alert-invalid": "规则参数无效",
    "level-invalid": "级别无效",
    "image-too-large": "印模图片不能超过 2 MB",
    "pick-seal-kind": "请选择印章类型",
    "pick-shape": "请选择印模样式",
    "image-required": "请上传印模图片（JPG、PNG、GIF 或 BMP）",
    "cert-id-invalid": "证书编号无效",
    "unknown-action": "未知操作",
    "pick-cert-kind": "请选择主体类型、算法和用途",
    "pick-revoke-reason": "请选择吊销原因",
    "forbidden": "无权进行此操作",
    "form-invalid": "请检查填写内容",
}
# A refused action comes back as `p<status>-<problem slug>`: the slug's text here, else the status's generic text.
PROBLEMS: dict[str, str] = {
    "out-of-scope": "超出数据权限范围",
    "forbidden": "无权进行此操作",
    "not-found": "资源不存在或不在您的数据范围内",
    "conflict": "数据已被他人修改，请刷新后重试",
    "validation": "请求参数无效，请检查填写内容",
    "invalid-time": "时间格式无效",
    "bad-credentials": "用户名或密码错误",
    "account-inactive": "账号未启用",
    "account-locked": "连续登录失败，账号已锁定",
    "totp-required": "需要动态验证码",
    "totp-invalid": "动态验证码错误",
    "not-bound": "该苏证通账号未绑定管理员",
    "rate-limited": "请求过于频繁，请稍后再试",
    "seal-state": "印章当前状态不允许此操作",
    "certificate-state": "证书当前状态不允许此操作",
    "seal-expired": "印章已过期",
    "seal-not-usable": "印章不可用",
    "payload-too-large": "请求体过大",
    "own-submission": "不能审核本人提交的申请",
    "own-organisation": "不能审核本机构提交的申请",
    "grant-exceeds-own": "不能授予超出本人权限的权限",
}
# A refused form's offending field (`p400-field-<name>`), named as the form labels it.
FIELDS: dict[str, str] = {
    "reason": "理由",
    "name": "名称",
    "code": "编码",
    "org_code": "所属机构",
    "data_scope": "数据范围",
    "permissions": "权限",
    "roles": "角色",
    "redirect_uris": "回调地址",
    "entry_url": "入口地址",
    "regions": "上架区域",
    "channels": "渠道",
}
GENERIC: dict[int, str] = {
    400: "请求无效",
    401: "需要登录",
    403: "无权进行此操作",
    404: "资源不存在",
    409: "当前状态不允许此操作",
    413: "请求体过大",
    422: "请求无法处理",
    423: "已锁定",
    429: "请求过于频繁，请稍后再试",
}
_CODE_OF = {("notice", t): c for c, t in NOTICES.items()} | {("error", t): c for c, t in ERRORS.items()}


def message(code: str) -> tuple[str, str]:
    """("notice" | "error" | "", text) of a `msg` code; unknown codes show nothing."""
    if code in NOTICES:
        return "notice", NOTICES[code]
    if code in ERRORS:
        return "error", ERRORS[code]
    if len(code) > 5 and code[0] == "p" and code[1:4].isdigit() and code[4] == "-":
        status, slug = int(code[1:4]), code[5:]
        if slug.startswith("field-") and slug[6:] in FIELDS:
            return "error", f"请检查“{FIELDS[slug[6:]]}”"
        text = PROBLEMS.get(slug) or GENERIC.get(status)
        if text:
            return "error", text
    return "", ""


def code_of(kind: str, text: str) -> str:
    """The catalogue code of a fixed notice or error text (a KeyError for text outside the catalogue)."""
    return _CODE_OF[(kind, text)]


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
    page = env.get_template(template).render(
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
            **_shown_message(request),
            "menu_counts": await _menu_counts(res, me) if me else {},
            **ctx,
        },
    )
    return html(page, status)


def _shown_message(request: Req) -> dict[str, str]:
    kind, text = message(request.query_params.get("msg", "")[:80])
    return {"error": text if kind == "error" else "", "notice": text if kind == "notice" else ""}


async def _menu_counts(res: Resources, me: AdminPrincipal) -> dict[str, int]:
    """Review queues' sizes shown on the menu (what waits for this administrator's decision, in its scope)."""
    counts: dict[str, int] = {}
    try:
        if me.has("orgs.org.review"):
            counts["/admin/console/orgs"] = (await service.dashboard_counts(res, me))["pending_orgs"]
        if me.has("orgs.admin.review"):
            counts["/admin/console/admins"] = len((await service.list_admins(res, me, "pending", None, 100)).items)
        if me.has("catalog.app.review"):
            from catalog import service as catalog  # catalog's review queue (a domain, not a front door)

            queue = await catalog.versions(res, me, status="pending", cursor=None, limit=100)
            counts["/admin/console/apps"] = len(queue.items)
    except ProblemError:
        pass
    return {k: v for k, v in counts.items() if v}


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
    """The 403 page of a refused form post (an exception handler of the admin app: no session is looked up here;
    `admitted` renders the same page with the menu for a signed-in administrator)."""
    page = env.get_template("forbidden.html").render(
        me=None, menu=MENU, active="", title="请求被拒绝", detail=exc.detail, error="", notice="", refused=True
    )
    return html(page, 403)


def not_found_page(request: Req, exc: Exception) -> Response[Any]:
    """An unknown console address or method (an exception handler of the admin app): the console's 404 page; other
    admin addresses keep their problem documents."""
    if not request.url.path.startswith("/admin/console"):
        return handle_http(request, exc)  # type: ignore[arg-type]  # NotFound and MethodNotAllowed are HTTPExceptions
    status = int(getattr(exc, "status_code", 404))
    page = env.get_template("forbidden.html").render(
        me=None, menu=MENU, active="", title="页面不存在", detail="", error="", notice="", missing=True
    )
    return html(page, 404 if status != 405 else 405)


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


def back(path: str, *, notice: str = "", error: str = "", keep: str = "", **params: str) -> Redirect:
    """303 to `path` (plus `keep`, a page's own query string: filters and page, see `kept_query`), with the
    catalogue code of `notice` or `error` (fixed texts of NOTICES / ERRORS) as `msg=` for the page to show."""
    if notice:
        params["msg"] = code_of("notice", notice)
    elif error:
        params["msg"] = code_of("error", error)
    query = "&".join(q for q in (keep, urlencode(params)) if q)
    return Redirect(path + ("?" + query if query else ""), status_code=303)


def kept_query(value: str, allowed: tuple[str, ...]) -> str:
    """A page's query string carried through a form post (a hidden `back` field) so the browser returns to the
    same filters and page: only `allowed` keys, short values."""
    from urllib.parse import parse_qsl

    pairs = [(k, v[:100]) for k, v in parse_qsl(value[:1000]) if k in allowed and v]
    return urlencode(pairs)


def to_sign_in() -> Redirect:
    return Redirect(SIGN_IN, status_code=302)


def refused(target: str, exc: ProblemError, keep: str = "") -> Redirect:
    """Back to `target` with a refused action's reason (its problem's catalogue code)."""
    slug = f"field-{exc.errors[0].field}" if exc.slug == "validation" and exc.errors else exc.slug
    return back(target, keep=keep, msg=f"p{exc.status}-{slug}"[:60])


async def admitted(request: Req) -> Response[Any] | None:
    """The checks every console form post passes first: same origin, a session (else: the sign-in page, returned),
    then the session's CSRF token (FormRefused, the 403 page, when it is missing or wrong)."""
    try:
        same_origin(request)
    except FormRefused as exc:
        return await _refused_with_menu(request, exc)
    try:
        await current_admin(request, None)
    except SignInRequired:
        return to_sign_in()
    try:
        await check_csrf(request)
    except FormRefused as exc:
        return await _refused_with_menu(request, exc)
    return None


async def _refused_with_menu(request: Req, exc: FormRefused) -> Response[Any]:
    try:
        me: AdminPrincipal | None = await authenticate(request)
    except ProblemError:
        me = None
    res: Resources = request.app.state.resources
    return await render(
        request, res, "forbidden.html", "", status=403, me=me, title="请求被拒绝", detail=exc.detail, refused=True
    )


async def poster(request: Req, permission: str, target: str) -> AdminPrincipal | Response[Any]:
    """The form post's administrator holding `permission` (after the same-origin check), or where to send the
    browser instead: the sign-in page, or `target` saying the permission is missing (rather than a bare 403). A
    post without the session's CSRF token raises FormRefused (the 403 page)."""
    if (elsewhere := await admitted(request)) is not None:
        return elsewhere
    try:
        return await current_admin(request, permission)
    except ProblemError:
        return back(target, error="无权进行此操作")


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


def permission_name(code: str) -> str:
    from orgs.permissions import CATALOGUE

    return CATALOGUE[code][0] if code in CATALOGUE else code


async def denied(request: Req, res: Resources, exc: ProblemError) -> Response[Any]:
    """The console's 403 or 404 page: what is missing (the permission by name), what this administrator can open
    instead (its menu), whom to ask, and the way back."""
    try:
        me: AdminPrincipal | None = await authenticate(request)
    except ProblemError:
        me = None
    needed = str(request.route_handler.opt.get("permission", "")) if exc.status == 403 else ""
    return await render(
        request,
        res,
        "forbidden.html",
        "",
        status=exc.status,
        me=me,
        title="无权访问" if exc.status == 403 else "页面不存在",
        detail="",
        missing=exc.status == 404,
        needed=permission_name(needed) if needed else "",
        level=me.org_level if me is not None else "",
    )


def console_page(fn: PageFn) -> Any:
    """Console pages: redirect to the sign-in page without a session; a 403 page without the permission."""

    async def wrapper(request: Req, res: Resources) -> Response[Any]:
        try:
            return await fn(request, res)
        except SignInRequired:
            return to_sign_in()
        except ProblemError as exc:
            if exc.status in (403, 404):
                return await denied(request, res, exc)
            raise

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


async def show(request: Req, res: Resources, fn: PageFn) -> Response[Any]:
    """A page whose handler takes path parameters: `fn` rendered as `console_page` renders it."""
    response: Response[Any] = await console_page(fn)(request, res)
    return response
