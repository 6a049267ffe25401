"""Console pages of an organisation's own app applications (我的申请): the form a county bureau or station (any
administrator holding `catalog.app.apply`) fills in to apply for an app — icon, entry, channels, the identity
scopes it asks for — the status of its applications and the review outcomes sent to its organisation. The
application goes through catalog.service.apply like the API's (regions: a city's organisations apply for their
own city; the level above reviews, never the applicant's own organisation: orgs.scope.four_eyes)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.datastructures import UploadFile

from admin import pages
from admin.console_apps import CHANNELS, SCOPE_NAMES, app_page_helpers
from catalog import icons
from catalog import service as catalog
from catalog.models import CATEGORIES, PROVINCE, Application
from core.problems import ProblemError
from core.ratelimit import client_ip
from core.resources import Resources

ACTIVE = "/admin/console/my-apps"


def _regions(p: Any, chosen: list[str]) -> list[str]:
    """A city's (or lower) organisation applies for its own city; the province picks (default: province-wide)."""
    if p.data_scope != "all" and p.org_level != "province":
        return [p.region_code[:4] + "00"]
    return chosen or [PROVINCE]


@get("/console/my-apps", opt={"permission": "catalog.app.apply"}, **pages.NO_SCHEMA)
@pages.console_page
async def my_apps_page(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.current_admin(request, "catalog.app.apply")
    mine = await catalog.versions(
        res, p, status=None, cursor=(request.query_params.get("cursor") or "")[:60] or None, limit=50
    )
    return await pages.render(
        request,
        res,
        "my_apps.html",
        ACTIVE,
        me=p,
        title="我的申请",
        versions=mine.items,
        next_cursor=mine.next_cursor,
        notifications=await catalog.org_notifications(res, p, 50),
        categories=CATEGORIES,
        channels=CHANNELS,
        scope_names=SCOPE_NAMES,
        own_region=_regions(p, [])[0],
        **app_page_helpers(),
    )


@post(
    "/console/my-apps",
    opt={"action": "catalog.app.apply"},
    request_max_body_size=icons.MAX_BYTES + 64 * 1024,
    **pages.NO_SCHEMA,
)
async def my_apps_apply(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.poster(request, "catalog.app.apply", ACTIVE)
    if isinstance(p, Response):
        return p
    form = await request.form()
    icon = form.get("icon")
    try:
        if not isinstance(icon, UploadFile):
            raise ProblemError(400, "invalid", "Invalid request", "请求参数无效", "choose a PNG icon", field="icon")
        ref = catalog.store_icon(res, await icon.read(icons.MAX_BYTES + 1))
        redirects = [u.strip() for u in str(form.get("redirect_uris") or "").splitlines() if u.strip()]
        app = msgspec.convert(
            {
                "name": str(form.get("name") or "").strip(),
                "category": str(form.get("category") or ""),
                "kind": str(form.get("kind") or ""),
                "entry_path": str(form.get("entry_path") or "").strip(),
                "icon_digest": ref.digest,
                "channels": [str(c) for c in form.getall("channels", [])],
                "regions": _regions(p, [str(r) for r in form.getall("regions", [])]),
                "scopes": [str(s) for s in form.getall("scopes", [])],
                "redirect_uris": redirects,
            },
            Application,
        )
        version = await catalog.apply(res, p, app, ip=client_ip(request))
    except msgspec.ValidationError:
        return pages.back(ACTIVE, error="请检查填写内容")
    except ProblemError as exc:
        return pages.refused(ACTIVE, exc)
    request.scope.setdefault("state", {})["op_target"] = version.app_code
    return pages.back(ACTIVE, notice="应用申请已提交，等待上级审核")


ROUTES: list[Any] = [my_apps_page, my_apps_apply]
