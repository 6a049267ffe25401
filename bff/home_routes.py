"""`GET /bff/v1/home`: the app's home screen in one call, tailored to the client and the user's region.

The layout part (show/scan code, zones, areas, modules) depends only on the layout version, the city, the channel
and the client's shape, so it is encoded once per combination and spliced into every answer as bytes. The
personal parts (reminders, unread count) are small and asked of their domains on each call; each one that fails
or is absent is marked `unavailable` and the page still renders. ETag/304 over the whole answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, Parameter
from litestar.response.base import ASGIResponse

from catalog import home, icons
from catalog.models import CITIES, COUNTIES, PROVINCE
from core.problems import invalid
from core.resources import Resources
from identity.facade import Principal, authenticate

PART_TIMEOUT = 0.5  # seconds a personal part may take before it is marked unavailable
FULL_SHAPE_FROM = (3, 0, 0)  # app versions before this understand only the legacy shape
CLIENT_HEADER = re.compile(r"^(ios|android|harmony)/(\d{1,3})\.(\d{1,3})(?:\.(\d{1,4}))?$")
FAR_KM = 150.0  # a position farther than this from every city centre is outside Jiangsu: the province's home

Shape = Literal["full", "legacy", "card"]


class Card(msgspec.Struct, omit_defaults=True):
    """HarmonyOS service-card shape (服务卡片) of an item."""

    type: str
    dimension: str
    title: str
    icon: str
    uri: str


class Item(msgspec.Struct, omit_defaults=True):
    code: str
    name: str
    icon: str
    url: str
    icon_size: int
    kind: str | None = None
    audience: str | None = None
    source: str | None = None  # "province" | "city": whose layout put it here
    card: Card | None = None


class Module(msgspec.Struct, omit_defaults=True):
    key: str
    title: str
    items: list[Item]
    scope: str | None = None  # "province" | "city" | "mixed"


class Shortcut(msgspec.Struct):
    key: str
    title: str
    action: str


class Region(msgspec.Struct):
    province: str
    city: str | None
    city_name: str | None
    county: str | None
    county_name: str | None
    source: str  # "choice" | "gps" | "default"


class ClientInfo(msgspec.Struct):
    platform: str
    version: str
    shape: str


class Reminder(msgspec.Struct, omit_defaults=True):
    kind: str
    title: str
    due: str | None = None
    link: str | None = None


class RemindersPart(msgspec.Struct):
    status: str  # "ok" | "partial" | "unavailable" | "signed_out"
    sources: dict[str, str]
    items: list[Reminder]


class UnreadPart(msgspec.Struct):
    status: str  # "ok" | "unavailable" | "signed_out"
    count: int | None


class Personal(msgspec.Struct, omit_defaults=True):
    signed_in: bool
    unread: UnreadPart
    reminders: RemindersPart | None = None


class HomeScreen(msgspec.Struct, omit_defaults=True):
    """The documented shape of the answer (legacy clients get no zones, areas or reminders)."""

    layout_version: int
    region: Region
    client: ClientInfo
    top: list[Shortcut]
    modules: list[Module]
    personal: Personal
    zones: list[Module] = []
    areas: list[Module] = []


TOP = [Shortcut("show_code", "亮码", "szt://identity-code"), Shortcut("scan_code", "扫一扫", "szt://scan")]

# ------------------------------------------------------------------------------------------------ client, region


_CLIENTS: dict[str, tuple[str, str, Shape]] = {}


def parse_client(header: str | None) -> tuple[str, str, Shape]:
    if not header:
        return "android", "", "full"
    hit = _CLIENTS.get(header)
    if hit is not None:
        return hit
    parsed = _parse_client(header)
    if len(_CLIENTS) > 4096:
        _CLIENTS.clear()
    _CLIENTS[header] = parsed
    return parsed


def _parse_client(header: str) -> tuple[str, str, Shape]:
    m = CLIENT_HEADER.match(header.strip())
    if m is None:
        raise invalid("X-SZT-Client", "platform/version, e.g. ios/3.2.0 (platform ios, android or harmony)")
    platform = m.group(1)
    version = (int(m.group(2)), int(m.group(3)), int(m.group(4) or 0))
    if version < FULL_SHAPE_FROM:
        shape: Shape = "legacy"
    else:
        shape = "card" if platform == "harmony" else "full"
    return platform, ".".join(map(str, version)), shape


def nearest_city(lat: float, lon: float) -> str | None:
    best, best_km = None, FAR_KM
    for code, (_, clon, clat) in CITIES.items():
        p1, p2 = math.radians(lat), math.radians(clat)
        dp, dl = p2 - p1, math.radians(clon - lon)
        a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        km = 2 * 6371.0 * math.asin(math.sqrt(a))
        if km < best_km:
            best, best_km = code, km
    return best


def resolve_region(city: str | None, county: str | None, lat: float | None, lon: float | None) -> Region:
    if county:
        parent = county[:4] + "00"
        if parent not in CITIES or county == parent:
            raise invalid("county", "a county code under one of Jiangsu's cities")
        if city and city != parent:
            raise invalid("county", f"{county} is not in {city}")
        return Region(PROVINCE, parent, CITIES[parent][0], county, COUNTIES.get(county), "choice")
    if city and city != PROVINCE:
        if city not in CITIES:
            raise invalid("city", "one of the 13 city codes of Jiangsu, or 320000")
        return Region(PROVINCE, city, CITIES[city][0], None, None, "choice")
    if city == PROVINCE:
        return Region(PROVINCE, None, None, None, None, "choice")
    if lat is not None and lon is not None:
        found = nearest_city(lat, lon)
        return Region(PROVINCE, found, CITIES[found][0] if found else None, None, None, "gps")
    if (lat is None) != (lon is None):
        raise invalid("lat" if lat is None else "lon", "give both lat and lon")
    return Region(PROVINCE, None, None, None, None, "default")


# ------------------------------------------------------------------------------------------------ the layout part


def _item(res: Resources, placed: home.Placed, shape: Shape) -> Item:
    app = placed.app
    icon = icons.url_for(res.settings.base_url, app.icon_digest, 96) if app.icon_digest else ""
    url = app.entry_path if not app.entry_path.startswith("/") else res.settings.base_url + app.entry_path
    if shape == "legacy":
        return Item(code=app.code, name=app.name, icon=icon, url=url, icon_size=96)
    card = None
    if shape == "card":
        card = Card(type="service", dimension="2*2", title=app.name[:12], icon=icon, uri=url)
    return Item(
        code=app.code,
        name=app.name,
        icon=icon,
        url=url,
        icon_size=96,
        kind=app.kind,
        audience=app.audience,
        source=placed.source,
        card=card,
    )


def _module(res: Resources, key: str, placed: tuple[home.Placed, ...], shape: Shape) -> Module:
    sources = {p.source for p in placed}
    scope = None if shape == "legacy" else (sources.pop() if len(sources) == 1 else "mixed")
    return Module(key=key, title=home.MODULES[key][0], items=[_item(res, p, shape) for p in placed], scope=scope)


class _LayoutPart(msgspec.Struct, omit_defaults=True):
    top: list[Shortcut]
    modules: list[Module]
    zones: list[Module] = []
    areas: list[Module] = []


_ENCODED: OrderedDict[tuple[int, str | None, str, Shape], bytes] = OrderedDict()
_ENCODED_MAX = 512


def layout_bytes(res: Resources, layout: home.Layout, shape: Shape) -> bytes:
    """The layout part as JSON object members (no braces), encoded once per layout version, city, channel, shape."""
    key = (layout.version, layout.city, layout.channel, shape)
    hit = _ENCODED.get(key)
    if hit is not None:
        return hit
    zones: list[Module] = []
    areas: list[Module] = []
    modules: list[Module] = []
    for module_key, placed in layout.modules:
        kind = home.MODULES[module_key][1]
        target = zones if kind == "zone" else areas if kind == "area" else modules
        if shape == "legacy":
            target = modules  # old clients know only the module list
        target.append(_module(res, module_key, placed, shape))
    encoded = msgspec.json.encode(_LayoutPart(top=TOP, modules=modules, zones=zones, areas=areas))[1:-1]
    _ENCODED[key] = encoded
    while len(_ENCODED) > _ENCODED_MAX:
        _ENCODED.popitem(last=False)
    return encoded


# ------------------------------------------------------------------------------------------------ personal parts

Provider = Callable[[Resources, str], Awaitable[list[Any]]]
# name -> (module, function): small functions of other domains answering `(res, person_id) -> [reminder-like]`.
REMINDER_SOURCES: dict[str, tuple[str, str]] = {
    "documents": ("identity.facade", "expiring_documents"),  # documents expiring within 90 days
    "appointments": ("affairs.service", "appointments_tomorrow"),
    "supplements": ("affairs.service", "cases_needing_supplement"),
}
_resolved: dict[str, Provider | None] = {}


def provider(name: str) -> Provider | None:
    if name not in _resolved:
        module_name, fn_name = REMINDER_SOURCES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        _resolved[name] = getattr(module, fn_name, None) if module else None
    return _resolved[name]


async def reminders_part(res: Resources, person_id: str, providers: dict[str, Provider | None]) -> RemindersPart:
    """Ask every source at once; one that is absent, fails or is slow is `unavailable`, the others still count."""

    async def ask(fn: Provider | None) -> list[Reminder] | None:
        if fn is None:
            return None
        try:
            got = await asyncio.wait_for(fn(res, person_id), PART_TIMEOUT)
            return msgspec.convert(got, list[Reminder], from_attributes=True, strict=False)[:20]
        except Exception:
            return None

    names = list(providers)
    answers = await asyncio.gather(*(ask(providers[n]) for n in names))
    sources = {n: ("ok" if a is not None else "unavailable") for n, a in zip(names, answers, strict=True)}
    items = [r for a in answers if a for r in a]
    ok = sum(1 for s in sources.values() if s == "ok")
    status = "ok" if ok == len(names) else "unavailable" if ok == 0 else "partial"
    return RemindersPart(status=status, sources=sources, items=items)


async def unread_part(res: Resources, person_id: str) -> UnreadPart:
    try:
        from push import service as push_service

        count = await asyncio.wait_for(push_service.unread(res, person_id), PART_TIMEOUT)
        return UnreadPart(status="ok", count=count)
    except Exception:
        return UnreadPart(status="unavailable", count=None)


SIGNED_OUT = Personal(signed_in=False, unread=UnreadPart(status="signed_out", count=None))


async def personal(res: Resources, me: Principal | None, shape: Shape) -> Personal:
    if me is None:
        return SIGNED_OUT
    if shape == "legacy":
        return Personal(signed_in=True, unread=await unread_part(res, me.person_id))
    providers = {name: provider(name) for name in REMINDER_SOURCES}
    unread, reminders = await asyncio.gather(
        unread_part(res, me.person_id), reminders_part(res, me.person_id, providers)
    )
    return Personal(signed_in=True, unread=unread, reminders=reminders)


# ------------------------------------------------------------------------------------------------ the endpoint

_ENC = msgspec.json.Encoder()
_SIGNED_OUT_BYTES = _ENC.encode(SIGNED_OUT)
_CLIENT_PARAM = HeaderParameter(
    name="X-SZT-Client",
    required=False,
    max_length=32,
    pattern=r"^(ios|android|harmony)/\d{1,3}\.\d{1,3}(\.\d{1,4})?$",
    description="platform/app version, e.g. ios/3.2.0, harmony/3.1.0",
)


@get(
    "/v1/home",
    summary="The home screen: show/scan code, zones, areas, modules for the region, reminders, unread count",
    description=(
        "Region: `county` or `city` (the user's choice), else `lat`/`lon` (nearest city centre), else the "
        "province. Sign-in optional (Bearer): personal parts are added. ETag / If-None-Match → 304."
    ),
    tags=["home"],
    responses={
        200: ResponseSpec(HomeScreen, description="the home screen"),
        304: ResponseSpec(None, description="not modified (If-None-Match matched the ETag)"),
    },
    security=[{}, {"bearer": []}],
)
async def home_screen(
    request: Request[Any, Any, Any],
    client: Annotated[str | None, _CLIENT_PARAM] = None,
    city: Annotated[str | None, Parameter(pattern=r"^32[0-9]{4}$", max_length=6)] = None,
    county: Annotated[str | None, Parameter(pattern=r"^32[0-9]{4}$", max_length=6)] = None,
    lat: Annotated[float | None, Parameter(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Parameter(ge=-180, le=180)] = None,
) -> ASGIResponse:
    # The hot path of the app: resources from the app state rather than a resolved dependency, and a finished
    # ASGI response (Litestar's Response would re-encode the headers on every call).
    res: Resources = request.app.state.resources
    platform, version, shape = parse_client(client)
    region = resolve_region(city, county, lat, lon)
    auth = request.headers.get("authorization")
    me = await authenticate(res, auth) if auth else None
    layout = await home.layout(res, region.city, platform)
    if me is None:
        body, etag = anonymous_body(res, layout, region, platform, version, shape)
    else:
        body = assemble(res, layout, region, platform, version, shape, _ENC.encode(await personal(res, me, shape)))
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = {"etag": etag, **_FIXED_HEADERS}
    inm = request.headers.get("if-none-match")
    if inm and etag in (t.strip().removeprefix("W/") for t in inm.split(",")):
        return ASGIResponse(body=b"", status_code=304, headers=headers)
    return ASGIResponse(body=body, status_code=200, media_type="application/json", headers=headers)


_FIXED_HEADERS = {"cache-control": "private, no-cache", "vary": "Authorization, X-SZT-Client"}


def assemble(
    res: Resources, layout: home.Layout, region: Region, platform: str, version: str, shape: Shape, mine: bytes
) -> bytes:
    head = b'{"layout_version":%d,"region":%b,"client":%b,' % (
        layout.version,
        _ENC.encode(region),
        _ENC.encode(ClientInfo(platform, version, shape)),
    )
    return b"".join((head, layout_bytes(res, layout, shape), b',"personal":', mine, b"}"))


_ANONYMOUS: OrderedDict[tuple[Any, ...], tuple[bytes, str]] = OrderedDict()
_ANONYMOUS_MAX = 1024


def anonymous_body(
    res: Resources, layout: home.Layout, region: Region, platform: str, version: str, shape: Shape
) -> tuple[bytes, str]:
    """A signed-out home is the same bytes for everyone with the same layout, region and client: kept whole."""
    key = (layout.version, region.city, region.county, region.source, platform, version, shape)
    hit = _ANONYMOUS.get(key)
    if hit is not None:
        return hit
    body = assemble(res, layout, region, platform, version, shape, _SIGNED_OUT_BYTES)
    made = (body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')
    _ANONYMOUS[key] = made
    while len(_ANONYMOUS) > _ANONYMOUS_MAX:
        _ANONYMOUS.popitem(last=False)
    return made


ROUTES = [home_screen]
