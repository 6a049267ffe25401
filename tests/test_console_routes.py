"""Every console route of the admin app's route table, as every built-in role and a custom role, in headless
chromium (issue 20): the page, a 403 page or a 404 page — in Chinese, in the console's layout with its menu —
never a raw problem document or a 5xx. Path parameters are filled with real ids of data made here. Every form post
refused for its origin or its missing CSRF token answers the console's 403 page. Screenshots of every page at
1440×900 and 1024×768 go to test-output/screenshots/console/."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from admin.app import create_app
from core.settings import load_settings
from tests.admin_helpers import chromium, csrf_token, make_admin, platform_admin
from tests.harness import ROOT
from tests.test_admin_console_apps import application, submit
from tests.test_admin_orgs import PDF, apply

SHOTS = ROOT / "test-output" / "screenshots" / "console"
SIZES = {"1440": {"width": 1440, "height": 900}, "1024": {"width": 1024, "height": 768}}
CUSTOM_PERMISSIONS = ["logs.read", "stats.read", "catalog.app.list", "catalog.app.apply"]


@dataclass
class Role:
    name: str
    headers: dict[str, str]
    permissions: frozenset[str] = frozenset()
    level: str = ""

    def has(self, permission: str) -> bool:
        return permission in self.permissions or "*" in self.permissions

    @property
    def cookie(self) -> dict[str, str]:
        return {"szt_admin": self.headers["Authorization"].removeprefix("Bearer ")}


@dataclass
class World:
    roles: list[Role] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)


def console_routes() -> list[tuple[str, str, str | None, list[str]]]:
    """(method, path format, the page's permission, path parameter names) of every console route in the admin
    app's route table."""
    app = create_app(load_settings())
    out = []
    for route in app.routes:
        if not route.path.startswith("/admin/console"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                permission = handler.opt.get("permission")
                out.append((method, route.path_format, permission, list(route.path_parameters)))
    assert len(out) > 25
    return out


ROUTES = console_routes()


def fill(path_format: str, params: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path_format)


@pytest.fixture(scope="module")
def world(http: httpx.Client, var_dir: Path, base_url: str) -> World:
    w = World()
    boss = platform_admin(http, var_dir)
    _, _, system_city = make_admin(http, boss, "320500", ["system"], prefix="rs")
    _, _, org_city = make_admin(http, boss, "320500", ["org_admin"], prefix="ro")
    county_id, _, county = make_admin(http, boss, "320505", ["org_admin"], prefix="rc")
    role = http.post(
        "/admin/v1/roles",
        headers=boss,
        json={
            "code": f"clerk{secrets.token_hex(2)}",
            "name": "业务查询员",
            "org_code": "320505",
            "data_scope": "own",
            "permissions": CUSTOM_PERMISSIONS,
        },
    )
    assert role.status_code == 201, role.text
    _, _, custom = make_admin(http, boss, "320505", [role.json()["code"]], prefix="ru")
    for name, headers in [
        ("platform", boss),
        ("system-city", system_city),
        ("org_admin-city", org_city),
        ("org_admin-county", county),
        ("custom-county", custom),
    ]:
        me = http.get("/admin/v1/me", headers=headers)
        assert me.status_code == 200, me.text
        body = me.json()
        w.roles.append(Role(name, headers, frozenset(body["permissions"]), str(body.get("org_level", ""))))
    # Real ids for the path parameters: an organisation application, an app application (by the county), the
    # county administrator, a masking field, a certificate and a seal (made through the console's own forms).
    r = apply(http, "320505", f"320505-r{secrets.token_hex(3)}", [("a.pdf", PDF, "application/pdf")])
    assert r.status_code == 201, r.text
    version = submit(http, county, "/admin/v1/catalog/applications", application(http, county, base_url))
    w.params.update(
        app_id=r.json()["id"],
        version_id=version["id"],
        code=version["app_code"],
        admin_id=county_id,
        role_id=role.json()["id"],
        rest="no-such-page",
    )
    with httpx.Client(base_url=base_url, cookies=w.roles[0].cookie, timeout=15) as c:
        token = csrf_token(c)
        w.params["field"] = re.findall(
            r'action="/admin/console/masking/([\w-]+)"', c.get("/admin/console/masking").text
        )[0]
        org = f"路由测试{secrets.token_hex(2)}"
        cert = {"subject_kind": "org", "algorithm": "SM2", "usage": "sign", "subject_name": org, "subject_org": org}
        assert c.post("/admin/console/eseal/certificates", data={**cert, "csrf": token}).status_code == 303
        certs = c.get("/admin/console/eseal/certificates").text
        w.params["cert_id"] = re.findall(r"/admin/console/eseal/certificates/([0-9a-f-]{36})/action", certs)[0]
        seal = {"kind": "official", "name": org, "org_name": org, "region_code": "320500", "shape": "round"}
        made = c.post("/admin/console/eseal/seals", data={**seal, "csrf": token})
        assert made.status_code == 303, made.text
        w.params["seal_id"] = re.findall(r"/seals/([0-9a-f-]{36})", made.headers["location"])[0]
    return w


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def signed_in(browser: Browser, base_url: str, role: Role, size: dict[str, int]) -> Page:
    ctx = browser.new_context(base_url=base_url, viewport=size, locale="zh-CN")  # type: ignore[arg-type]
    ctx.add_cookies([{"name": "szt_admin", "value": role.cookie["szt_admin"], "url": base_url + "/admin"}])
    return ctx.new_page()


def shot_name(role: Role, path: str, size: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/admin/console").lower()).strip("-") or "dashboard"
    slug = slug.replace("-rest", "-unknown-page") if slug == "rest" else slug
    return SHOTS / f"{role.name}--{slug}--{size}.png"


def check_page(page: Page, role: Role, url: str, permission: str | None, has_params: bool) -> int:
    """Open `url` as `role`; assert what the route table says it should answer. Returns the status."""
    if url.endswith(".csv"):  # a download when permitted: fetched with the page's cookies
        got = page.request.get(url, max_redirects=0)
        status, ctype = got.status, got.headers.get("content-type", "")
        assert status < 500 and status in (200, 403), (role.name, url, status)
        if status == 200:
            assert ctype.startswith("text/csv"), (url, ctype)
            return status
    response = page.goto(url, wait_until="domcontentloaded")
    assert response is not None
    status, ctype = response.status, response.headers.get("content-type", "")
    where = f"{role.name} GET {url}: {status}"
    assert status < 500, where
    if url == "/admin/console" and not page.url.endswith("/admin/console"):
        # a role without the overview lands on its first menu page
        assert not role.has("dashboard.view") and status == 200 and page.locator("nav a.on").count() == 1, where
        return 302
    assert ctype.startswith("text/html"), (where, ctype)
    body = page.content()
    assert "application/problem+json" not in ctype and not page.inner_text("body").lstrip().startswith("{"), where
    assert page.locator("html[lang='zh-CN']").count() == 1 and "管理后台" in page.title(), where
    assert page.locator("nav a").count() >= 1, where  # the console's layout with the role's menu
    if permission == "":  # the catch-all: the console's 404 page
        assert status == 404 and page.locator("#status-page h2").inner_text() == "页面不存在", where
    elif permission and not role.has(permission):
        assert status == 403, where
        assert page.locator("#status-page h2").inner_text() == "无权访问", where
        assert page.locator("#back-home").count() == 1, where
        if role.level in ("county", "station"):
            assert page.locator("#county-help").count() == 1, where  # what a county can do instead
    elif url.startswith("/admin/console/eseal/seals/new") or not has_params:
        assert status == 200 or (url == "/admin/console" and page.url != url), where
    else:  # a record of another organisation: "not found" in this scope
        assert status in (200, 404), where
        if status == 404:
            assert page.locator("#status-page h2").inner_text() == "页面不存在", where
    assert "Traceback" not in body and "Internal server error" not in body, where
    return status


def test_every_console_page_as_every_role(browser: Browser, base_url: str, world: World) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    gets = [(path, perm, params) for method, path, perm, params in ROUTES if method == "GET"]
    seen: dict[tuple[str, str], int] = {}
    for role in world.roles:
        # every page at both sizes for the platform and a county administrator; the other roles at 1440 (time)
        for size_name, size in (
            SIZES.items() if role.name in ("platform", "org_admin-county") else [("1440", SIZES["1440"])]
        ):
            page = signed_in(browser, base_url, role, size)
            try:
                for path, permission, params in gets:
                    url = fill(path, world.params)
                    status = check_page(page, role, url, permission, bool(params))
                    seen[(role.name, path)] = status
                    if not url.endswith(".csv") or status != 200:
                        page.screenshot(path=str(shot_name(role, path, size_name)), full_page=True)
            finally:
                page.context.close()
    # The right 403s: exactly the pages whose permission the role lacks.
    for role in world.roles:
        refused = {p for (r, p), s in seen.items() if r == role.name and s == 403}
        redirected = {p for (r, p), s in seen.items() if r == role.name and s == 302}
        assert redirected <= {"/admin/console"}, redirected  # only the overview sends a role elsewhere
        expected = {p for p, perm, _ in gets if perm and not role.has(perm)} - redirected
        assert refused == expected, (role.name, refused ^ expected)
    platform = world.roles[0]
    assert not [p for (r, p), s in seen.items() if r == platform.name and s == 403]
    custom = next(r for r in world.roles if r.name == "custom-county")
    assert seen[(custom.name, "/admin/console/logs")] == 200 and seen[(custom.name, "/admin/console/orgs")] == 403


def test_every_refused_form_post_is_the_console_403_page(base_url: str, world: World) -> None:
    posts = [(path, params) for method, path, _, params in ROUTES if method == "POST"]
    assert len(posts) >= 10
    for role in world.roles:
        with httpx.Client(base_url=base_url, cookies=role.cookie, timeout=15) as c:
            token = csrf_token(c, "/admin/console/logs" if not role.has("dashboard.view") else "/admin/console")
            for path, _ in posts:
                url = fill(path, world.params)
                for data, headers in (
                    ({"csrf": token}, {"Origin": "https://evil.example"}),  # cross-origin
                    ({}, {}),  # no CSRF token
                    ({"csrf": "forged"}, {}),
                ):
                    r = c.post(url, data=data, headers=headers)
                    where = f"{role.name} POST {url} {headers or data}: {r.status_code}"
                    assert r.status_code == 403, where
                    assert r.headers["content-type"] == "text/html; charset=utf-8", where
                    assert "请求被拒绝" in r.text and "<nav>" in r.text and 'id="status-page"' in r.text, where
    # Nothing was done: the application is still pending, the administrator still active.
    with httpx.Client(base_url=base_url, cookies=world.roles[0].cookie, timeout=15) as c:
        assert "待审核" in c.get(f"/admin/console/org-applications/{world.params['app_id']}").text


def test_unknown_addresses_and_messages(browser: Browser, base_url: str, world: World, var_dir: Path) -> None:
    platform = world.roles[0]
    with httpx.Client(base_url=base_url, cookies=platform.cookie, timeout=15) as c:
        for url in (
            "/admin/console/nope/deeper",
            "/admin/console/app-versions/not-a-uuid",
            f"/admin/console/app-versions/{'0' * 8}-0000-4000-8000-{'0' * 12}",
            f"/admin/console/eseal/seals/{'0' * 8}-0000-4000-8000-{'0' * 12}",
        ):
            r = c.get(url)
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), (url, r.text[:200])
            assert "页面不存在" in r.text and "苏证通 · 管理后台" in r.text and 'id="back-home"' in r.text, url
            if "not-a-uuid" not in url:  # the router refuses that one before any handler: the page has no menu
                assert "<nav>" in r.text, url
        # GET on a form-post address: a console page too, not a problem document
        r = c.get(fill("/admin/console/admins/{admin_id}/disable", world.params))
        assert r.status_code in (404, 405) and r.headers["content-type"].startswith("text/html")
        # Messages come from the catalogue by code; text in the URL is never shown.
        page = c.get("/admin/console/apps?msg=app-delisted&error=伪造的官方通知&notice=伪造")
        assert "应用已下架" in page.text and "伪造" not in page.text
        assert "伪造" not in c.get("/admin/console/apps?msg=伪造的官方通知").text
        refused = c.get("/admin/console/apps?msg=p403-out-of-scope").text
        assert "超出数据权限范围" in refused
        # The accounts page for every status filter (was a 500)
        for status in ("", "pending", "active", "rejected", "disabled", "bogus"):
            r = c.get(f"/admin/console/admins?status={status}")
            assert r.status_code == 200 and "管理员账号" in r.text, (status, r.text[:300])
    # API addresses keep their problem documents
    with httpx.Client(base_url=base_url, timeout=15) as anon:
        r = anon.get("/admin/v1/no-such-thing")
        assert r.status_code == 404 and "json" in r.headers["content-type"]
        assert anon.get("/admin/console/apps").status_code == 302  # no session: the sign-in page


def test_app_list_filters_sort_and_keeps_its_place(base_url: str, world: World, http: httpx.Client) -> None:
    county = next(r for r in world.roles if r.name == "org_admin-county")
    system_city = next(r for r in world.roles if r.name == "system-city")
    platform = world.roles[0]
    tag = secrets.token_hex(2)
    codes = []
    for i in range(3):  # three new apps of 苏州, approved by the city
        body = {**application(http, county.headers, base_url), "name": f"排序{tag}-{i}"}
        v = submit(http, county.headers, "/admin/v1/catalog/applications", body)
        r = http.post(
            f"/admin/v1/catalog/versions/{v['id']}/review",
            json={"decision": "approve", "reason": ""},
            headers={**system_city.headers, "Idempotency-Key": secrets.token_hex(8)},
        )
        assert r.status_code in (200, 201), r.text
        codes.append(v["app_code"])
    with httpx.Client(base_url=base_url, cookies=platform.cookie, timeout=15) as c:
        first = c.get("/admin/console/apps").text
        assert first.index(f"app-{codes[2]}") < first.index(f"app-{codes[0]}")  # newest first, on page 1
        found = c.get(f"/admin/console/apps?q=排序{tag}").text
        assert all(f"app-{code}" in found for code in codes) and found.count('<tr id="app-') == 3
        by_name = c.get(f"/admin/console/apps?q=排序{tag}&sort=name").text
        assert by_name.index(f"app-{codes[0]}") < by_name.index(f"app-{codes[2]}")
        # Delisting from page 2 of a filtered list returns to page 2 with the same filters.
        here = f"q=排序{tag}&sort=name&page=2"
        r = c.post(
            f"/admin/console/apps/{codes[1]}/listing",
            data={"csrf": csrf_token(c), "listed": "0", "reason": "测试下架", "back": here + "&evil=1"},
        )
        assert r.status_code == 303
        location = r.headers["location"]
        assert "page=2" in location and "sort=name" in location and "msg=app-delisted" in location
        assert "evil" not in location
        delisted = c.get(f"/admin/console/apps?q=排序{tag}&status=delisted").text
        assert delisted.count('<tr id="app-') == 1 and f"app-{codes[1]}" in delisted
        assert "申请单位" in delisted and "公安局" in delisted  # the applicant by name, not its path
