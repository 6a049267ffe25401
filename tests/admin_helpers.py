"""Administrator sign-in for tests: the seeded platform administrator and accounts created through the API."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def admin_password(var_dir: Path) -> str:
    return os.environ.get("SZT_ADMIN_PASSWORD") or (var_dir / "admin-password").read_text().strip()


def sign_in(http: httpx.Client, username: str, password: str, **extra: Any) -> dict[str, str]:
    r = http.post("/admin/v1/sessions", json={"username": username, "password": password, **extra})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def platform_admin(http: httpx.Client, var_dir: Path) -> dict[str, str]:
    return sign_in(http, "admin", admin_password(var_dir))


def make_admin(
    http: httpx.Client, by: dict[str, str], org_code: str, roles: list[str], prefix: str = "t"
) -> tuple[str, str, dict[str, str]]:
    """An active administrator of `org_code` created by `by`; returns (id, username, auth headers)."""
    username = f"{prefix}{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    r = http.post(
        "/admin/v1/admins",
        headers=by,
        json={
            "username": username,
            "password": password,
            "display_name": "测试管理员",
            "org_code": org_code,
            "roles": roles,
            "phone": "13900001111",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], username, sign_in(http, username, password)


def csrf_token(console: httpx.Client, page: str = "/admin/console") -> str:
    """The CSRF token the console puts in its forms for `console`'s session (its `szt_admin` cookie)."""
    r = console.get(page)
    m = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert m is not None, r.text[:300]
    return m.group(1)


def console(browser: Browser, base_url: str, username: str, password: str) -> Page:
    """A chromium page signed in to the console as `username`."""
    page = browser.new_context(base_url=base_url, viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    page.goto("/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/console")
    return page


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """The system's headless chromium under Playwright (the sync API: run it in the test's own thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
