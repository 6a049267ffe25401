"""The app's service catalog: browse and search (Chinese, full pinyin, initials), and the apps' icons."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import HeaderParameter, Parameter

from bff.home_routes import parse_client
from catalog import icons, service
from catalog.models import CATEGORIES, CITIES, ICON_SIZES, PROVINCE, SearchHit, SearchPage
from core.problems import invalid, not_found
from core.resources import Resources

PAGE_MAX = service.SEARCH_PAGE_MAX
CityParam = Annotated[str | None, Parameter(pattern=r"^32[0-9]{4}$", max_length=6, description="city code")]
CursorParam = Annotated[str | None, Parameter(pattern=r"^app-[0-9]{2,6}$", max_length=10)]
LimitParam = Annotated[int, Parameter(ge=1, le=PAGE_MAX)]
ClientParam = Annotated[
    str | None,
    HeaderParameter(
        name="X-SZT-Client",
        required=False,
        max_length=32,
        pattern=r"^(ios|android|harmony)/\d{1,3}\.\d{1,3}(\.\d{1,4})?$",
    ),
]


def _city(city: str | None) -> str | None:
    if city is None or city == PROVINCE:
        return None
    if city not in CITIES:
        raise invalid("city", "one of the 13 city codes of Jiangsu, or 320000")
    return city


@get("/v1/catalog/search", summary="Search services by Chinese name, full pinyin or initials", tags=["catalog"])
async def search(
    res: Resources,
    q: Annotated[str, Parameter(min_length=1, max_length=40, description="e.g. 驾驶证, jiashizheng, jsz")],
    client: ClientParam = None,
    city: CityParam = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> SearchPage:
    platform, _, _ = parse_client(client)
    return await service.search(res, q, city=_city(city), channel=platform, cursor=cursor, limit=limit)


@get("/v1/catalog/apps", summary="The services listed for my region and client, by code", tags=["catalog"])
async def catalog(
    res: Resources,
    client: ClientParam = None,
    city: CityParam = None,
    category: Annotated[str | None, Parameter(max_length=8, description="business line, e.g. 交管")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> SearchPage:
    platform, _, _ = parse_client(client)
    if category is not None and category not in CATEGORIES:
        raise invalid("category", f"one of {' '.join(CATEGORIES)}")
    apps = await service.listed_apps(res, region_code=_city(city), channel=platform)
    chosen = [a for a in apps if (category is None or a.category == category) and (cursor is None or a.code > cursor)]
    page = chosen[:limit]
    items = [
        SearchHit(
            code=a.code,
            name=a.name,
            category=a.category,
            kind=a.kind,
            entry_path=a.entry_path,
            icon=icons.url_for(res.settings.base_url, a.icon_digest, 96) if a.icon_digest else "",
        )
        for a in page
    ]
    return SearchPage(items=items, next_cursor=page[-1].code if len(chosen) > limit else None)


@get(
    "/v1/catalog/icons/{digest:str}/{name:str}",
    summary="An app icon at a standard size (48.png, 96.png, 144.png, 192.png)",
    tags=["catalog"],
    media_type="image/png",
    response_description="PNG image",
)
async def icon(request: Request[Any, Any, Any], res: Resources, digest: str, name: str) -> Response[bytes]:
    size = name.removesuffix(".png")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise not_found("icon")
    if not size.isdigit() or int(size) not in ICON_SIZES or not name.endswith(".png"):
        raise not_found("icon")
    path = icons.path_for(res.settings.var_path, digest, int(size))
    if not path.is_file():
        raise not_found("icon")
    # Content-addressed: a changed icon has another digest, so the URL can be cached forever.
    cache = {"Cache-Control": "public, max-age=31536000, immutable"}
    return Response(path.read_bytes(), media_type="image/png", headers=cache)  # a few KB: no streaming needed


ROUTES = [search, catalog, icon]
