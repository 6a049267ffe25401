"""The web console in headless chromium (Playwright): sign in, the dashboard, review an organisation application,
read a statistics chart, search and export logs, the monitoring chart. Screenshots go to test-output/."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from core.resources import Resources
from core.settings import load_settings
from identity import people
from orgs import logs, monitoring
from tests.admin_helpers import admin_password, chromium, platform_admin
from tests.harness import ROOT
from tests.test_admin_monitoring import id_number
from tests.test_admin_orgs import PDF, apply, png

OUT = ROOT / "test-output"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def some_people(stack: object, http: httpx.Client) -> None:
    """Four people enrolled straight into identity, integration-log calls and two monitoring samples with traffic
    between (in a thread: Playwright's sync API holds this thread's event loop)."""

    async def insert() -> None:
        res = await Resources.open(load_settings())
        try:
            async with res.db.acquire() as conn:
                for region, birth, gender in [
                    ("320505", "1950-05-01", "female"),
                    ("320102", "1990-01-02", "male"),
                    ("320205", "2001-09-09", "male"),
                    ("321302", "1975-12-12", "female"),
                ]:
                    await people.insert(
                        res,
                        conn,
                        id_type="resident",
                        id_number=id_number(region, birth),
                        name="图表",
                        phone=f"136{secrets.randbelow(10**8):08d}",
                        gender=gender,
                        birth_date=birth,
                    )
            for i in range(6):
                await logs.record_integration(
                    res,
                    app_code=f"app-0{i % 3 + 1}",
                    interface="/identity/token",
                    direction="inbound",
                    status=200,
                    latency_ms=12.0 + i,
                    org_path="320000",
                    region_code="320500",
                )
            await monitoring.sample(res)
            for _ in range(5):
                http.get("/admin/healthz")
            await monitoring.sample(res)
        finally:
            await res.close()

    worker = threading.Thread(target=lambda: asyncio.run(insert()))
    worker.start()
    worker.join()


@pytest.fixture
def page(browser: Browser, base_url: str, var_dir: Path, some_people: None) -> Iterator[Page]:
    ctx = browser.new_context(base_url=base_url, viewport={"width": 1440, "height": 900}, locale="zh-CN")
    p = ctx.new_page()
    p.goto("/admin/console")
    assert "/admin/login" in p.url  # no session: the sign-in page
    p.fill("input[name=username]", "admin")
    p.fill("input[name=password]", admin_password(var_dir))
    p.click("button[type=submit]")
    p.wait_for_url("**/admin/console")
    yield p
    ctx.close()


def test_sign_in_dashboard_and_wrong_password(browser: Browser, page: Page, base_url: str) -> None:
    OUT.mkdir(exist_ok=True)
    assert page.locator("h2").first.inner_text() == "首页概览"
    assert int(page.locator("#orgs-count").inner_text()) >= 14 + 13 * 7
    assert page.locator("svg[aria-label='用户地区分布']").count() == 1
    assert page.locator("nav a", has_text="脱敏管理").count() == 1
    page.screenshot(path=str(OUT / "admin-dashboard.png"), full_page=True)
    # the cookie is HttpOnly and SameSite=Strict
    cookie = next(c for c in page.context.cookies() if c["name"] == "szt_admin")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    other = browser.new_context(base_url=base_url).new_page()
    other.goto("/admin/login")
    other.fill("input[name=username]", "admin")
    other.fill("input[name=password]", "wrong-" + secrets.token_hex(4))
    other.click("button[type=submit]")
    assert "用户名或密码错误" in other.locator(".error").inner_text()
    other.context.close()


def test_review_an_organisation_application(page: Page, http: httpx.Client) -> None:
    code = f"320505-b{secrets.token_hex(3)}"
    r = apply(http, "320505", code, [("营业执照.pdf", PDF, "application/pdf"), ("现场照片.png", png(), "image/png")])
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    page.goto("/admin/console/orgs")
    page.click(f"a[href='/admin/console/org-applications/{app_id}']")
    assert page.locator("#status").inner_text() == "待审核"
    assert page.locator("td", has_text="营业执照.pdf").count() == 1
    page.screenshot(path=str(OUT / "admin-review.png"), full_page=True)
    page.click("button[value=reject]")  # a rejection without a reason is refused and says why
    assert "理由" in page.locator(".error").inner_text() or "reason" in page.locator(".error").inner_text()
    page.fill("textarea[name=reason]", "材料齐全，同意设立")
    page.click("button[value=approve]")
    assert page.locator("#status").inner_text() == "已通过"
    page.goto("/admin/console/orgs?parent=320505")
    assert page.locator(f"a[href='?parent={code}']").count() == 1  # the new organisation in the tree


def test_read_the_statistics_chart(page: Page, http: httpx.Client, var_dir: Path) -> None:
    page.goto("/admin/console/stats")
    total = int(page.locator("#users-total").inner_text())
    chart = page.locator("#chart-region svg")
    labels = chart.locator("text.label").all_text_contents()
    values = [float(v) for v in chart.locator("text.value").all_text_contents()]
    assert total >= 4 and len(labels) == len(values) >= 4 and sum(values) == total
    assert {"苏州", "南京", "无锡", "宿迁"} <= set(labels)
    api = http.get("/admin/v1/stats/users", headers=platform_admin(http, var_dir)).json()
    assert dict(zip(labels, values, strict=True)) == {b["label"]: b["count"] for b in api["by_region"]}
    assert page.locator("#chart-age svg text.label").all_text_contents()[-1] == "未知"
    page.screenshot(path=str(OUT / "admin-stats.png"), full_page=True)


def test_logs_search_export_and_monitoring(page: Page) -> None:
    page.goto("/admin/console/logs")
    page.fill("#search input[name=username]", "admin")
    page.click("#search button[type=submit]")
    rows = page.locator("table tr")
    assert rows.count() > 1 and "admin" in rows.nth(1).inner_text()
    with page.expect_download() as dl:
        page.click("text=导出 Excel")
    path = dl.value.path()
    assert path is not None and Path(path).read_bytes()[:2] == b"PK"
    page.goto("/admin/console/monitoring")
    assert page.locator("#latency-chart svg").count() == 1
    page.goto("/admin/console/masking")
    assert page.locator("td", has_text="身份证号").count() == 1
    page.goto("/admin/console/roles")
    assert page.locator("td", has_text="平台管理员").count() == 1
