"""Catalog shapes: onboarding applications, app versions, the listed-app read model, layout slots, icons."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta

from core import regions

PROVINCE = regions.PROVINCE_CODE
# GB/T 2260 codes of the 13 cities of Jiangsu -> (name, centre lon, centre lat), for GPS → city (core.regions).
CITIES: dict[str, tuple[str, float, float]] = {c.code: (c.name, c.lon, c.lat) for c in regions.CITIES}
# The counties of the region picker.
COUNTIES: dict[str, str] = regions.DISTRICT_NAMES

# The home screen's modules: key -> (title, kind, slots); and the line module of each category.
MODULES: dict[str, tuple[str, str, int]] = {
    "zone.zhian": ("治安", "zone", 8),
    "zone.huzheng": ("户证", "zone", 8),
    "zone.chejiaguan": ("车驾管", "zone", 8),
    "area.natural": ("个人服务", "area", 8),
    "area.legal": ("法人服务", "area", 8),
    "line.neibao": ("内保", "line", 12),
    "line.churujing": ("出入境", "line", 12),
    "line.jiaoguan": ("交管", "line", 12),
    "line.zhian": ("治安", "line", 24),
    "line.jianguan": ("监管", "line", 12),
    "line.qita": ("其它", "line", 12),
    "city.local": ("本地服务", "city", 12),
}
LINE_OF: dict[str, str] = {title: key for key, (title, kind, _) in MODULES.items() if kind == "line"}
Category = Literal["内保", "出入境", "交管", "治安", "监管", "其它"]
CATEGORIES: tuple[str, ...] = get_args(Category)
Kind = Literal["h5", "mini_program", "native", "backend"]
Channel = Literal["ios", "android", "harmony", "wechat", "alipay"]
CHANNELS: tuple[str, ...] = ("ios", "android", "harmony", "wechat", "alipay")
Audience = Literal["natural", "legal"]
Zone = Literal["internet", "government", "police"]
Scope = Literal["openid", "profile", "realname", "idcard", "phone", "age", "gender", "enterprise", "offline_access"]
RegionCode = Annotated[str, Meta(pattern=r"^32[0-9]{4}$", min_length=6, max_length=6, description="GB/T 2260 code")]
Name = Annotated[str, Meta(min_length=2, max_length=64)]
EntryPath = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=512,
        pattern=r"^(https?://[^\s]+|/[^\s]*|[a-z][a-z0-9+.-]*://[^\s]+)$",
        description="H5 URL, site-relative path, mini-program path or native scheme",
    ),
]
RedirectUri = Annotated[str, Meta(min_length=8, max_length=512, pattern=r"^https?://[^\s#]+$")]
Digest = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", min_length=64, max_length=64, description="SHA-256 of the PNG")]
Reason = Annotated[str, Meta(max_length=500)]
AppCode = Annotated[str, Meta(pattern=r"^app-[0-9]{2,6}$", max_length=10)]
Module = Annotated[str, Meta(pattern=r"^[a-z]+(\.[a-z0-9_]+)?$", max_length=40)]

# Icon sizes every client may ask for, in pixels (square).
ICON_SIZES: tuple[int, ...] = (48, 96, 144, 192)


class Application(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An onboarding application (or a change of a live app: a new version)."""

    name: Name
    category: Category
    kind: Kind
    entry_path: EntryPath
    icon_digest: Digest
    channels: Annotated[list[Channel], Meta(min_length=1, max_length=5)]
    regions: Annotated[list[RegionCode], Meta(min_length=1, max_length=13, description="['320000'] or city codes")]
    scopes: Annotated[list[Scope], Meta(max_length=9)] = []
    redirect_uris: Annotated[list[RedirectUri], Meta(max_length=10)] = []
    audience: Audience = "natural"
    zone: Zone = "internet"


class Review(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    decision: Literal["approve", "reject"]
    reason: Reason = ""


class Listing(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    listed: bool
    reason: Reason = ""


class Visibility(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    hidden_cities: Annotated[list[RegionCode], Meta(max_length=13)]


class Slot(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    module: Module
    position: Annotated[int, Meta(ge=0, le=63)]
    app_code: AppCode


class LayoutUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Replace the slots of one module for one region (the province or a city)."""

    region_code: RegionCode
    module: Module
    app_codes: Annotated[list[AppCode], Meta(max_length=64, description="in slot order")]


class IconRef(msgspec.Struct, kw_only=True):
    digest: str
    urls: dict[str, str]  # "48" -> URL


class VersionView(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    app_code: str
    version: int
    status: str
    name: str
    category: str
    kind: str
    audience: str
    zone: str
    entry_path: str
    icon_digest: str
    channels: list[str]
    regions: list[str]
    scopes: list[str]
    redirect_uris: list[str]
    submitted_at: dt.datetime
    reviewed_at: dt.datetime | None
    reason: str


class AppView(msgspec.Struct, kw_only=True):
    code: str
    org_path: str
    name: str
    category: str
    kind: str
    audience: str
    entry_path: str
    icon_digest: str
    channels: list[str]
    regions: list[str]
    hidden_cities: list[str]
    scopes: list[str]
    client_id: str | None
    live_version: int
    listed: bool
    delisted_reason: str
    health_failures: int


class ReviewOutcome(msgspec.Struct, kw_only=True):
    """The decided version; when approved, the app's OIDC client and, the first time only, its secret (shown once)."""

    version: VersionView
    client_id: str | None = None
    client_secret: str | None = None


class VersionPage(msgspec.Struct, kw_only=True):
    items: list[VersionView]
    next_cursor: str | None


class ListedApp(msgspec.Struct, frozen=True, kw_only=True):
    """The read model of the home screen (docs/contracts.md: catalog.service.listed_apps)."""

    code: str
    name: str
    category: str
    kind: str
    audience: str
    entry_path: str
    icon_digest: str
    channels: tuple[str, ...]
    regions: tuple[str, ...]
    hidden_cities: tuple[str, ...]
    version: int


class SearchHit(msgspec.Struct, kw_only=True):
    code: str
    name: str
    category: str
    kind: str
    entry_path: str
    icon: str


class SearchPage(msgspec.Struct, kw_only=True):
    items: list[SearchHit]
    next_cursor: str | None


class Notification(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    app_code: str
    kind: str
    message: str
    created_at: dt.datetime
