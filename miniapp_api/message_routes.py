"""What the mini programs need for messages and entry: subscribe consents (WeChat), form ids (Alipay), the Alipay
service entry (服务入口) and the small icons it shows, by URL with their sizes."""

from __future__ import annotations

import csv
import functools
import io
from pathlib import Path
from typing import Annotated, Any

from litestar import Response, get, post
from litestar.params import JSONBody, Parameter

from catalog import icons
from catalog import service as catalog_service
from core.idempotency import IdempotencyKey, idempotent
from core.problems import invalid, not_found
from core.resources import Resources
from identity.facade import Principal
from miniapp_api.models import (
    Consent,
    Consents,
    EntryItem,
    FormIdRequest,
    FormIdStored,
    Image,
    ServiceEntry,
    SubscribeResults,
    SubscribeTemplate,
    TemplatePage,
)
from miniapp_api.session_routes import AUTH
from platforms.alipay import ALIPAY_APP_ID
from push import mini as push_mini

ICON_SIZE = 96
ENTRY_PAGE_MAX = 20
APPS_TSV = Path(__file__).resolve().parent.parent / "catalog" / "data" / "apps49.tsv"


@functools.cache
def _apps() -> dict[str, tuple[str, str]]:
    with APPS_TSV.open(encoding="utf-8") as fh:
        return {f"{int(r['no']):02d}": (r["name"], r["category"]) for r in csv.DictReader(fh, delimiter="\t")}


def _short(name: str) -> str:
    return name.split("（")[0].split("(")[0][:12]


@get(
    "/v1/wechat/subscribe-templates",
    summary="Templates to pass to wx.requestSubscribeMessage (at most 3 per call)",
    tags=["wechat"],
    sync_to_thread=False,
)
def subscribe_templates() -> TemplatePage:
    items = [SubscribeTemplate(tid, kind, title) for tid, kind, title in push_mini.wechat_templates()]
    return TemplatePage(items=items)


@post(
    "/v1/wechat/subscriptions",
    summary="Record the user's wx.requestSubscribeMessage choices: each accept allows one message of that template",
    description="Send an `Idempotency-Key`: a retried report must not count an accept twice.",
    tags=["wechat"],
    status_code=200,
    middleware=[idempotent()],
    **AUTH,
)
async def subscriptions(
    res: Resources, me: Principal, data: JSONBody[SubscribeResults], idempotency_key: IdempotencyKey = None
) -> Consents:
    left = await push_mini.record_wechat_consents(res, me.person_id, data.results)
    return Consents(items=[Consent(tid, n) for tid, n in left])


@post(
    "/v1/alipay/form-ids",
    summary="Keep a submitted form's formId: it allows one template message within 7 days",
    tags=["alipay"],
    status_code=200,
    **AUTH,
)
async def form_ids(res: Resources, me: Principal, data: JSONBody[FormIdRequest]) -> FormIdStored:
    return FormIdStored(available=await push_mini.record_form_id(res, me.person_id, data.form_id))


def _icon_url(base: str, code: str) -> Image:
    return Image(url=f"{base}/mini/v1/icons/app-{code}.png", width=ICON_SIZE, height=ICON_SIZE)


@get(
    "/v1/alipay/service-entry",
    summary="Service-entry (服务入口) metadata of the Alipay mini program: the listed services, a page at a time",
    description="From the catalog (listed for the Alipay channel and the region, province-wide when none): a delisted "
    "service disappears here as on the home screen.",
    tags=["alipay"],
)
async def service_entry(
    res: Resources,
    region: Annotated[str | None, Parameter(pattern=r"^32[0-9]{4}$", description="city or county code")] = None,
    cursor: Annotated[str | None, Parameter(max_length=4, pattern=r"^[0-9]{1,4}$")] = None,
    limit: Annotated[int, Parameter(ge=1, le=ENTRY_PAGE_MAX)] = 8,
) -> ServiceEntry:
    apps = await catalog_service.listed_apps(res, region_code=region, channel="alipay")
    start = int(cursor) if cursor else 0
    if start > len(apps):
        raise invalid("cursor", "not a cursor this list handed out")
    base = res.settings.base_url
    page = apps[start : start + limit]
    items = [
        EntryItem(
            title=_short(a.name),
            page=f"pages/affairs/apply?app={a.code}",
            icon=Image(url=icons.url_for(base, a.icon_digest, ICON_SIZE), width=ICON_SIZE, height=ICON_SIZE)
            if a.icon_digest
            else _icon_url(base, a.code[4:]),
        )
        for a in page
    ]
    return ServiceEntry(
        app_id=ALIPAY_APP_ID,
        name="苏证通",
        slogan="江苏公安 掌上办事",
        logo=Image(url=f"{base}/mini/v1/icons/logo.png", width=ICON_SIZE, height=ICON_SIZE),
        items=items,
        next_cursor=str(start + limit) if start + limit < len(apps) else None,
    )


@functools.cache
def _render_icon(label: str) -> bytes:
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    img = PILImage.new("RGB", (ICON_SIZE, ICON_SIZE), (22, 119, 255))
    draw = ImageDraw.Draw(img)
    try:
        font: Any = ImageFont.truetype("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 44)
    except OSError:
        font = ImageFont.load_default()
    draw.text((ICON_SIZE / 2, ICON_SIZE / 2), label, fill=(255, 255, 255), font=font, anchor="mm")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


@get(
    "/v1/icons/{name:str}",
    summary="A service icon (PNG, 96×96)",
    tags=["alipay"],
    media_type="image/png",
    sync_to_thread=False,
)
def icon(name: Annotated[str, Parameter(max_length=16, pattern=r"^(logo|app-[0-9]{2})\.png$")]) -> Response[bytes]:
    if name == "logo.png":
        label = "苏"
    else:
        found = _apps().get(name[4:6])
        if found is None:
            raise not_found("icon")
        label = found[0][:1] if found[1] == "其它" else found[1][:1]
    return Response(_render_icon(label), media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})


ROUTES = [subscribe_templates, subscriptions, form_ids, service_entry, icon]
