"""App onboarding in the web console, in headless chromium (Playwright): an organisation applies (over the API),
苏州's reviewer signs in to the console, reviews the application, approves it (the client secret is shown once
and works at the token endpoint), delists it (gone from 苏州's home) and reads a statistics chart. Another city's
reviewer neither sees nor decides it. Screenshots go to test-output/."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from core.resources import Resources
from core.settings import load_settings
from identity import people
from tests.admin_helpers import chromium, console, csrf_token, make_admin, platform_admin, sign_in
from tests.catalog_helpers import codes_in, home_once
from tests.harness import ROOT
from tests.test_admin_monitoring import id_number
from tests.test_catalog_onboarding import icon_png

OUT = ROOT / "test-output"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def enrol_in_suzhou() -> None:
    """Three people of 苏州 of different ages, straight into identity (in a thread: Playwright's sync API holds
    this thread's event loop)."""

    async def insert() -> None:
        res = await Resources.open(load_settings())
        try:
            async with res.db.acquire() as conn:
                for region, birth, gender in [
                    ("320505", "1952-03-01", "female"),
                    ("320506", "1988-07-07", "male"),
                    ("320508", "2003-10-10", "female"),
                ]:
                    await people.insert(
                        res,
                        conn,
                        id_type="resident",
                        id_number=id_number(region, birth),
                        name="统计",
                        phone=f"137{secrets.randbelow(10**8):08d}",
                        gender=gender,
                        birth_date=birth,
                    )
        finally:
            await res.close()

    worker = threading.Thread(target=lambda: asyncio.run(insert()))
    worker.start()
    worker.join()


def reviewer_of(http: httpx.Client, platform: dict[str, str], org_code: str) -> tuple[str, str, dict[str, str]]:
    """A system administrator of `org_code`: (username, password, API headers)."""
    username, password = f"rv{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    r = http.post(
        "/admin/v1/admins",
        headers=platform,
        json={
            "username": username,
            "password": password,
            "display_name": "审核员",
            "org_code": org_code,
            "roles": ["system"],
            "phone": "13900002222",
        },
    )
    assert r.status_code == 201, r.text
    return username, password, sign_in(http, username, password)


def application(http: httpx.Client, applicant: dict[str, str], base_url: str) -> dict[str, Any]:
    up = http.post("/admin/v1/catalog/icons", content=icon_png(), headers={**applicant, "Content-Type": "image/png"})
    assert up.status_code == 201, up.text
    return {
        "name": "高新区犬只登记",
        "category": "治安",
        "kind": "h5",
        "entry_path": f"{base_url}/bff/healthz",
        "icon_digest": up.json()["digest"],
        "channels": ["ios", "android", "wechat"],
        "regions": ["320500"],
        "scopes": ["openid", "realname"],
        "redirect_uris": ["https://dog.example.invalid/callback"],
    }


def submit(http: httpx.Client, applicant: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(path, json=body, headers={**applicant, "Idempotency-Key": secrets.token_hex(8)})
    assert r.status_code == 201, r.text
    version: dict[str, Any] = r.json()
    return version


def test_review_approve_delist_and_chart(browser: Browser, http: httpx.Client, var_dir: Path, base_url: str) -> None:
    OUT.mkdir(exist_ok=True)
    platform = platform_admin(http, var_dir)
    _, _, applicant = make_admin(http, platform, "320505", ["org_admin"], prefix="gx")
    user, password, reviewer = reviewer_of(http, platform, "320500")
    _, _, nanjing = make_admin(http, platform, "320100", ["system"], prefix="nj")
    body = application(http, applicant, base_url)
    version = submit(http, applicant, "/admin/v1/catalog/applications", body)
    code, review_page = version["app_code"], f"/admin/console/app-versions/{version['id']}"

    # Another city's reviewer: not in its queue, the page is "not found", and its form post decides nothing.
    nj_cookie = {"szt_admin": nanjing["Authorization"].removeprefix("Bearer ")}
    with httpx.Client(base_url=base_url, cookies=nj_cookie, timeout=15) as nj:
        assert version["id"] not in nj.get("/admin/console/apps").text
        assert nj.get(review_page).status_code == 404
        refused = nj.post(review_page + "/review", data={"decision": "approve", "csrf": csrf_token(nj)})
        assert refused.status_code == 303 and "msg=" in refused.headers["location"]
    # The applicant sees its application but has no review button, and its own decision is refused.
    gx_cookie = {"szt_admin": applicant["Authorization"].removeprefix("Bearer ")}
    with httpx.Client(base_url=base_url, cookies=gx_cookie, timeout=15) as gx:
        own = gx.get(review_page)
        assert own.status_code == 200 and "待审核" in own.text and 'value="approve"' not in own.text
        refused = gx.post(review_page + "/review", data={"decision": "approve", "csrf": csrf_token(gx)})
        assert refused.status_code == 303 and "msg=" in refused.headers["location"]
    assert http.get(f"/admin/v1/catalog/apps/{code}", headers=applicant).json()["live_version"] == 0

    page = console(browser, base_url, user, password)
    page.screenshot(path=str(OUT / "admin-city-dashboard.png"), full_page=True)
    page.click("nav a:has-text('应用管理')")
    page.click(f"#pending a[href='{review_page}']")
    assert page.locator("#status").inner_text() == "待审核"
    assert page.locator("#regions").inner_text() == "苏州"
    assert "实名信息（realname）" in page.locator("#scopes").inner_text()
    assert page.locator("#no-live").count() == 1  # a new app: nothing to compare with
    assert page.locator("#icon").evaluate("i => i.complete && i.naturalWidth") == 96
    page.screenshot(path=str(OUT / "admin-app-review.png"), full_page=True)

    page.click("button[value=reject]")  # a rejection without a reason is refused and says why
    assert "理由" in page.locator(".error").inner_text()
    page.click("button[value=approve]")
    assert page.locator("#client-id").inner_text() == code
    secret = page.locator("#client-secret").inner_text()
    page.screenshot(path=str(OUT / "admin-app-approved.png"), full_page=True)
    token = http.post("/identity/token", data={"grant_type": "client_credentials"}, auth=(code, secret))
    assert token.status_code == 200, token.text
    page.goto(review_page)  # decided: no form, and the secret is never shown again
    assert page.locator("#status").inner_text() == "已通过"
    assert page.locator("button[value=approve]").count() == 0 and secret not in page.content()
    home_once(http, "320500", lambda b: code in codes_in(b))

    # Delist from the apps page: a reason is required; then gone from 苏州's home.
    page.goto("/admin/console/apps")
    row = page.locator(f"#app-{code}")
    assert "已上架" in row.locator(".state").inner_text()
    row.locator("input[name=reason]").fill("整改中")
    row.locator("button", has_text="下架").click()
    assert "应用已下架" in page.locator(".notice").inner_text()
    assert "已下架" in page.locator(f"#app-{code} .state").inner_text()
    page.screenshot(path=str(OUT / "admin-apps.png"), full_page=True)
    home_once(http, "320500", lambda b: code not in codes_in(b))

    # A changed version: the review page marks what differs from the live version; approval keeps the client.
    v2 = submit(http, applicant, f"/admin/v1/catalog/apps/{code}/versions", {**body, "scopes": ["openid", "phone"]})
    page.goto(f"/admin/console/app-versions/{v2['id']}")
    assert page.locator("#diff tr.changed td:first-child").all_text_contents() == ["身份权限"]
    page.screenshot(path=str(OUT / "admin-app-review-diff.png"), full_page=True)
    page.click("button[value=approve]")
    assert page.locator("#client-id").inner_text() == code and page.locator("#client-secret").count() == 0

    # Relisted from the apps page: back on 苏州's home.
    page.goto("/admin/console/apps")
    page.locator(f"#app-{code} button", has_text="上架").click()
    assert "已上架" in page.locator(f"#app-{code} .state").inner_text()
    home_once(http, "320500", lambda b: code in codes_in(b))

    # Each console decision is in the operation log under the reviewer's name.
    ops = http.get("/admin/v1/logs/operations", params={"username": user}, headers=platform).json()["items"]
    done = {(o["action"], o["result"]) for o in ops}
    assert {("catalog.app.review", "ok"), ("catalog.app.listing", "ok")} <= done, done

    # Read a chart: the age bands of 苏州's users agree with the statistics API for this reviewer's scope.
    enrol_in_suzhou()
    page.click("nav a:has-text('统计分析')")
    chart = page.locator("#chart-age svg")
    labels = chart.locator("text.label").all_text_contents()
    values = [float(v) for v in chart.locator("text.value").all_text_contents()]
    api = http.get("/admin/v1/stats/users", headers=reviewer).json()
    assert dict(zip(labels, values, strict=True)) == {b["label"]: b["count"] for b in api["by_age_band"]}
    assert sum(values) == int(page.locator("#users-total").inner_text()) >= 3
    assert [b["label"] for b in api["by_region"]] == ["苏州"]  # a city administrator sees its own city only
    page.screenshot(path=str(OUT / "admin-city-stats.png"), full_page=True)
    page.locator("#chart-age").screenshot(path=str(OUT / "admin-city-stats-chart.png"))
    page.context.close()
