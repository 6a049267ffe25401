"""The app home screen over HTTP: region, cities' own modules, delisting, client tailoring, ETag, personal parts."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import httpx
import pytest

from bff.home_routes import Reminder, reminders_part
from catalog import service
from catalog.home import merge
from catalog.models import ListedApp
from core.resources import Resources
from orgs.models import AdminPrincipal
from tests.catalog_helpers import IOS, codes_in, home, home_once
from tests.identity_helpers import bearer, enrol, pick_citizen


def Platform() -> AdminPrincipal:
    """The platform administrator."""
    return AdminPrincipal(
        id=uuid.UUID(int=1),
        username="admin",
        org_id=uuid.UUID(int=2),
        org_path="320000",
        org_level="province",
        region_code="320000",
        data_scope="all",
        permissions=frozenset({"*"}),
        roles=("platform",),
    )


def module(body: dict[str, Any], key: str) -> list[str]:
    for part in ("zones", "areas", "modules"):
        for m in body.get(part, []):
            if m["key"] == key:
                return [i["code"] for i in m["items"]]
    return []


def test_suzhou_and_nanjing_differ_by_their_own_modules(http: httpx.Client) -> None:
    sz, nj = home(http, city="320500"), home(http, city="320100")
    assert sz["region"]["city_name"] == "苏州" and nj["region"]["city_name"] == "南京"
    assert [t["key"] for t in sz["top"]] == ["show_code", "scan_code"]
    assert [z["title"] for z in sz["zones"]] == ["治安", "户证", "车驾管"]
    assert {a["key"] for a in sz["areas"]} == {"area.natural", "area.legal"}
    # The cities' own modules (seeded; apps onboarded by a city join at the end) differ …
    assert module(sz, "city.local")[:4] == ["app-08", "app-25", "app-48", "app-26"]
    assert module(nj, "city.local")[:3] == ["app-47", "app-44", "app-05"]
    # … 苏州 puts its 禁区通行证 first in 车驾管 and the province fills the remaining slots in its own order …
    assert module(sz, "zone.chejiaguan") == ["app-08", "app-11", "app-12", "app-10", "app-09", "app-16"]
    assert module(nj, "zone.chejiaguan") == ["app-11", "app-12", "app-10", "app-09", "app-16", "app-08"]
    # … while the provincial modules they do not override are the same.
    assert module(sz, "line.churujing") == module(nj, "line.churujing") != []
    assert module(sz, "area.legal") == module(nj, "area.legal") != []


def test_region_by_gps_county_and_default(http: httpx.Client) -> None:
    assert home(http, lat=31.30, lon=120.62)["region"]["city"] == "320500"  # 苏州 城区
    assert home(http, lat=32.05, lon=118.78)["region"]["city"] == "320100"  # 南京 新街口
    assert home(http, lat=39.9, lon=116.4)["region"]["city"] is None  # 北京: outside Jiangsu, the province's home
    by_county = home(http, county="320505")
    assert by_county["region"]["city"] == "320500" and by_county["region"]["county_name"].startswith("虎丘区")
    plain = home(http)
    assert plain["region"]["source"] == "default" and module(plain, "city.local") == []
    bad = http.get("/bff/v1/home", params={"city": "320599"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "city"
    bad = http.get("/bff/v1/home", params={"county": "320200", "city": "320500"})
    assert bad.status_code == 400


def test_client_tailoring_and_size(http: httpx.Client) -> None:
    full = http.get("/bff/v1/home", params={"city": "320500"}, headers=IOS)
    assert len(gzip.compress(full.content)) <= 20 * 1024
    harmony = home(http, {"X-SZT-Client": "harmony/3.1.0"}, city="320500")
    item = harmony["zones"][0]["items"][0]
    assert harmony["client"]["shape"] == "card" and item["card"]["type"] == "service" and item["card"]["uri"]
    old = home(http, {"X-SZT-Client": "android/2.9.1"}, city="320500")
    assert old["client"]["shape"] == "legacy" and "zones" not in old and "areas" not in old
    assert set(old["modules"][0]["items"][0]) == {"code", "name", "icon", "url", "icon_size"}
    # Same services as the current app on the same platform, older fields (apps may be listed for some channels only).
    assert codes_in(old) == codes_in(home(http, {"X-SZT-Client": "android/3.2.0"}, city="320500"))
    assert http.get("/bff/v1/home", headers={"X-SZT-Client": "symbian/1.0"}).status_code == 400


def test_etag_and_not_modified(http: httpx.Client) -> None:
    r = http.get("/bff/v1/home", params={"city": "320200"}, headers=IOS)
    etag = r.headers["etag"]
    again = http.get("/bff/v1/home", params={"city": "320200"}, headers={**IOS, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = http.get("/bff/v1/home", params={"city": "320300"}, headers={**IOS, "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


async def test_delisted_app_disappears_and_comes_back(http: httpx.Client, res: Resources) -> None:
    before = home(http, city="320500")
    etag = http.get("/bff/v1/home", params={"city": "320500"}, headers=IOS).headers["etag"]
    assert "app-11" in codes_in(before)
    await service.set_listing(res, Platform(), "app-11", False, "维护")
    after = home_once(http, "320500", lambda b: "app-11" not in codes_in(b))
    assert after["layout_version"] > before["layout_version"]
    # The province's next service moves up into the freed slot.
    assert module(after, "zone.chejiaguan")[:2] == ["app-08", "app-12"]
    stale = http.get("/bff/v1/home", params={"city": "320500"}, headers={**IOS, "If-None-Match": etag})
    assert stale.status_code == 200
    await service.set_listing(res, Platform(), "app-11", True, "")
    home_once(http, "320500", lambda b: "app-11" in codes_in(b))


async def test_per_city_visibility(http: httpx.Client, res: Resources) -> None:
    await service.set_visibility(res, Platform(), "app-49", ["320100"])
    try:
        home_once(http, "320100", lambda b: "app-49" not in codes_in(b))
        assert "app-49" in codes_in(home(http, city="320500"))
    finally:
        await service.set_visibility(res, Platform(), "app-49", [])
    home_once(http, "320100", lambda b: "app-49" in codes_in(b))


def test_signed_in_home_has_personal_parts(http: httpx.Client, sim_url: str) -> None:
    anonymous = home(http, city="320500")
    assert anonymous["personal"] == {"signed_in": False, "unread": {"status": "signed_out", "count": None}}
    session: Any = enrol(http, sim_url, pick_citizen(sim_url))["session"]
    mine = home(http, bearer(session), city="320500")
    assert mine["personal"]["signed_in"] is True
    assert mine["personal"]["unread"] == {"status": "ok", "count": 0}
    reminders = mine["personal"]["reminders"]
    assert reminders["status"] in ("ok", "partial", "unavailable")
    assert set(reminders["sources"]) == {"documents", "appointments", "supplements"}
    assert codes_in(mine) == codes_in(anonymous)  # the layout renders whatever the personal parts do
    assert http.get("/bff/v1/home", headers={"Authorization": "Bearer nope"}).status_code == 401


async def test_a_failing_reminder_source_is_marked_and_the_rest_renders(res: Resources) -> None:
    async def fine(_res: Resources, _pid: str) -> list[dict[str, str]]:
        return [{"kind": "appointment", "title": "明天 09:30 出入境预约", "due": "2026-12-02T01:30:00Z"}]

    async def broken(_res: Resources, _pid: str) -> list[Reminder]:
        raise RuntimeError("affairs is down")

    part = await reminders_part(res, str(uuid.uuid4()), {"appointments": fine, "supplements": broken, "x": None})
    assert part.status == "partial"
    assert part.sources == {"appointments": "ok", "supplements": "unavailable", "x": "unavailable"}
    assert [r.title for r in part.items] == ["明天 09:30 出入境预约"]
    none = await reminders_part(res, str(uuid.uuid4()), {"supplements": broken})
    assert none.status == "unavailable" and none.items == []


def _app(code: str, *, regions: tuple[str, ...] = ("320000",), category: str = "交管") -> ListedApp:
    return ListedApp(
        code=code,
        name=code,
        category=category,
        kind="h5",
        audience="natural",
        entry_path="/x",
        icon_digest="",
        channels=("ios",),
        regions=regions,
        hidden_cities=(),
        version=1,
    )


def test_merge_fills_empty_city_slots_with_provincial_services() -> None:
    apps = {c: _app(c) for c in ("app-01", "app-02", "app-03")} | {"app-90": _app("app-90", regions=("320500",))}
    slots = [
        ("320000", "zone.chejiaguan", 0, "app-01"),
        ("320000", "zone.chejiaguan", 1, "app-02"),
        ("320000", "zone.chejiaguan", 2, "app-03"),
        ("320500", "zone.chejiaguan", 1, "app-03"),
    ]
    merged = dict(merge(apps, slots, "320500", "ios"))
    assert [(p.app.code, p.source) for p in merged["zone.chejiaguan"]] == [
        ("app-01", "province"),
        ("app-03", "city"),
        ("app-02", "province"),
    ]
    assert [p.app.code for p in merged["city.local"]] == ["app-90"]  # a city's own app placed nowhere
    assert "city.local" not in dict(merge(apps, slots, "320100", "ios"))  # … and only in its city


@pytest.mark.parametrize(
    ("q", "expect"),
    [("驾驶证", "app-11"), ("jiashizheng", "app-11"), ("jsz", "app-11"), ("hukou", "app-17"), ("CRJ", "app-06")],
)
def test_search_in_chinese_and_pinyin(http: httpx.Client, q: str, expect: str) -> None:
    r = http.get("/bff/v1/catalog/search", params={"q": q, "city": "320500"}, headers=IOS)
    assert r.status_code == 200, r.text
    assert expect in [i["code"] for i in r.json()["items"]]


def test_search_pages_and_icons(http: httpx.Client) -> None:
    first = http.get("/bff/v1/catalog/search", params={"q": "bei an", "limit": 3}).json()  # 备案
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = http.get("/bff/v1/catalog/search", params={"q": "bei an", "limit": 3, "cursor": first["next_cursor"]})
    assert {i["code"] for i in second.json()["items"]}.isdisjoint({i["code"] for i in first["items"]})
    icon = http.get(first["items"][0]["icon"].removeprefix(str(http.base_url).rstrip("/")))
    assert icon.status_code == 200 and icon.content.startswith(b"\x89PNG")
    page = http.get("/bff/v1/catalog/apps", params={"category": "监管"}).json()
    assert [i["code"] for i in page["items"]] == ["app-44", "app-45"]
