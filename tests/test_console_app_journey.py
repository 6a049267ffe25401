"""In headless chromium, the console as administrators use it (issue 20, part B): a county administrator applies for
an app with the console form, its city approves it in the review queue (the client secret shown once), the app is
listed; the app's client makes real OIDC token calls; the county sees the review outcome in its notifications, the
city sees the app's calls in its integration log and statistics. Then the city creates a custom role in the role
editor, assigns it to a county administrator, and that role is what they can do."""

from __future__ import annotations

import asyncio
import io
import secrets
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from playwright.sync_api import Browser

from core.resources import Resources
from orgs import jobs
from tests.admin_helpers import chromium, console, platform_admin
from tests.harness import ROOT


def _account(http: httpx.Client, by: dict[str, str], org: str, roles: list[str], prefix: str) -> tuple[str, str, str]:
    """(id, username, password) of a new active administrator."""
    username, password = f"{prefix}{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    r = http.post(
        "/admin/v1/admins",
        headers=by,
        json={"username": username, "password": password, "display_name": "测试", "org_code": org, "roles": roles},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], username, password


def _browse(base_url: str, steps: Any) -> Any:
    """Run `steps(browser)` in chromium (in the calling thread: the sync API keeps its own loop)."""
    with chromium() as browser:
        return steps(browser)


def _icon(path: Path) -> Path:
    Image.new("RGB", (192, 192), (10, 120, 60)).save(buf := io.BytesIO(), "PNG")
    path.write_bytes(buf.getvalue())
    return path


async def test_county_applies_city_approves_and_sees_the_calls(
    http: httpx.Client, res: Resources, var_dir: Path, base_url: str, tmp_path: Path
) -> None:
    platform = platform_admin(http, var_dir)
    _, county_user, county_pw = _account(http, platform, "320505", ["org_admin"], "jc")  # 苏州高新区分局
    _, city_user, city_pw = _account(http, platform, "320500", ["system"], "js")  # 苏州市公安局
    name = f"高新区测试应用{secrets.token_hex(2)}"
    icon = _icon(tmp_path / "icon.png")
    shots = ROOT / "test-output"
    shots.mkdir(exist_ok=True)

    def apply_and_approve(browser: Browser) -> tuple[str, str]:
        county = console(browser, base_url, county_user, county_pw)
        county.click("a[href='/admin/console/my-apps']")  # the menu entry
        form = "#apply-form"
        county.fill(f"{form} input[name=name]", name)
        county.select_option(f"{form} select[name=kind]", "backend")
        county.fill(f"{form} input[name=entry_path]", f"{base_url}/bff/healthz")
        county.set_input_files(f"{form} input[name=icon]", str(icon))
        with county.expect_navigation():
            county.click("#apply-submit")
        assert "msg=app-applied" in county.url, (county.url, county.inner_text("body")[:800])
        row = county.locator("#my-versions tr", has_text=name)
        assert "待审核" in row.inner_text()
        county.screenshot(path=str(shots / "journey-my-apps.png"), full_page=True)

        city = console(browser, base_url, city_user, city_pw)
        city.goto("/admin/console/apps")
        city.locator("tr", has_text=name).locator("a[href^='/admin/console/app-versions/']").click()
        city.click("button[name=decision][value=approve]")
        city.wait_for_selector("#client-secret")
        client_id, secret = city.inner_text("#client-id"), city.inner_text("#client-secret")
        city.goto("/admin/console/apps")
        assert client_id in city.content()  # listed among the city's live apps

        county.reload()
        assert "已通过" in county.locator("#my-versions tr", has_text=name).inner_text()
        notes = county.inner_text("#notifications")
        assert name in notes and "审核通过" in notes
        return client_id, secret

    client_id, secret = await asyncio.to_thread(_browse, base_url, apply_and_approve)

    # the app's client calls the OIDC token endpoint for real
    for _ in range(3):
        token = http.post("/identity/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
        assert token.status_code == 200, token.text
    for _ in range(100):  # queued by the server within orgs.logs.FLUSH_SECONDS; the worker job moves them
        await jobs.integration_drain(res)
        got = http.get("/admin/v1/logs/integration", params={"app_code": client_id}, headers=platform).json()
        if len(got["items"]) >= 3:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the token calls did not reach the integration log")

    def city_sees_the_calls(browser: Browser) -> None:
        city = console(browser, base_url, city_user, city_pw)
        city.goto(f"/admin/console/logs?kind=integration&app_code={client_id}")
        rows = city.locator("tr", has_text="/identity/token")
        assert rows.count() == 3, city.content()[:2000]
        city.screenshot(path=str(shots / "journey-city-integration-log.png"), full_page=True)
        city.goto("/admin/console/stats")
        usage = city.locator("tr", has_text=client_id)
        assert usage.count() == 1 and "3" in usage.first.locator("td").all_inner_texts(), usage.first.inner_text()
        city.screenshot(path=str(shots / "journey-city-stats.png"), full_page=True)

    await asyncio.to_thread(_browse, base_url, city_sees_the_calls)


def test_a_custom_role_from_the_role_editor_is_assigned_and_effective(
    http: httpx.Client, var_dir: Path, base_url: str
) -> None:
    platform = platform_admin(http, var_dir)
    _, city_user, city_pw = _account(http, platform, "320500", ["org_admin"], "rs")
    clerk_id, clerk_user, clerk_pw = _account(http, platform, "320505", [], "rk")
    code = f"viewer{secrets.token_hex(2)}"

    def steps(browser: Browser) -> None:
        city = console(browser, base_url, city_user, city_pw)
        city.goto("/admin/console/roles")
        city.click("#role-new")
        form = "#role-form"
        city.fill(f"{form} input[name=code]", code)
        city.fill(f"{form} input[name=name]", "统计查看员")
        # what the editor lacks is greyed out (monitoring is not an org_admin's)
        assert city.locator(f"{form} input[value='monitor.read']").is_disabled()
        city.check(f"{form} input[value='dashboard.view']")
        city.check(f"{form} input[value='stats.read']")
        with city.expect_navigation():
            city.click("#role-save")
        assert "msg=role-created" in city.url, (city.url, city.inner_text("body")[:800])
        assert code in city.content()

        # a forged grant of a permission the editor lacks is refused by the server, naming it
        city.click(f"tr:has-text('{code}') a[href^='/admin/console/roles/']")
        city.evaluate("document.querySelector(\"input[value='monitor.read']\").disabled = false")
        city.check("input[value='monitor.read']")
        city.click("#role-save")
        city.wait_for_load_state()
        assert "monitor.read" in city.content() and "不能授予" in city.content()

        city.goto(f"/admin/console/admins/{clerk_id}/roles")
        city.check(f"input[name=roles][value='{code}']")
        city.click("#roles-save")
        city.wait_for_url("**/roles?msg=roles-assigned*")
        assert code in city.content()

        clerk = console(browser, base_url, clerk_user, clerk_pw)
        nav = clerk.inner_text("nav")
        assert "统计分析" in nav and "日志管理" not in nav
        assert clerk.goto("/admin/console/stats").status == 200  # type: ignore[union-attr]
        assert clerk.goto("/admin/console/logs").status == 403  # type: ignore[union-attr]

    _browse(base_url, steps)
