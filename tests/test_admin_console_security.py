"""Console and admin filters hardening (issue 21): the session cookie's `Secure` flag and the Origin check against
the public origin, a CSRF token in every console form, sliding administrator sessions with an absolute cap, LIKE
wildcards that match themselves, times parsed strictly, one charset on exports.

A second server on loopback (admin only) plays "published at an https public URL behind a TLS-terminating proxy"
with short session times; the test stack's own server plays the plain-http development setup."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.resources import Resources
from orgs import logs
from tests.admin_helpers import admin_password, chromium, console, csrf_token, platform_admin
from tests.harness import ROOT, Stack, free_port, wait_http

PUBLIC = "https://console.szt.test"
IDLE, CAP = 3, 9


@pytest.fixture(scope="module")
def published(stack: Stack, var_dir: Path) -> Iterator[str]:
    port = free_port()
    log = var_dir / "server-published.log"
    env = {
        **stack.env,
        "SZT_PORT": str(port),
        "SZT_PUBLIC_URL": PUBLIC,
        "SZT_ADMIN_SESSION_IDLE_S": str(IDLE),
        "SZT_ADMIN_SESSION_MAX_S": str(CAP),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "szt.cli", "serve", "admin", "--no-migrate", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def login_form(c: httpx.Client) -> tuple[str, str]:
    """GET the sign-in page: the token of its form and of its `szt_login` cookie (a Secure cookie, which httpx
    keeps to itself over http, so the tests send it by hand)."""
    r = c.get("/admin/login")
    assert r.status_code == 200
    m = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert m is not None, r.text[:300]
    return m.group(1), set_cookie(r, "szt_login").split(";")[0]


def console_login(c: httpx.Client, password: str, **headers: str) -> httpx.Response:
    token, cookie = login_form(c)
    data = {"username": "admin", "password": password, "csrf": token}
    return c.post("/admin/login", data=data, headers={"Cookie": cookie, **headers})


def set_cookie(r: httpx.Response, name: str) -> str:
    found = [v for v in r.headers.get_list("set-cookie") if v.startswith(name + "=")]
    assert found, r.headers
    return found[0]


# --- Secure cookie and the Origin check ---------------------------------------------------------------------------


def test_https_public_url_gives_secure_cookies_and_its_origin_passes(published: str, var_dir: Path) -> None:
    # Today: the Origin check compares with the address the proxy used (http://127.0.0.1:…) and refuses the
    # console's own form; the cookie has no Secure flag.
    with httpx.Client(base_url=published, timeout=15) as c:
        assert "secure" in set_cookie(c.get("/admin/login"), "szt_login").lower()
        r = console_login(c, admin_password(var_dir), Origin=PUBLIC)
        assert r.status_code == 303, r.text[:300]
        cookie = set_cookie(r, "szt_admin").lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert f"max-age={CAP}" in cookie  # kept up to the absolute cap; the server ends it earlier when idle
    with httpx.Client(base_url=published, timeout=15) as c:
        assert console_login(c, admin_password(var_dir), Origin="https://evil.example").status_code == 403


def test_plain_http_development_keeps_working_and_refuses_other_origins(base_url: str, var_dir: Path) -> None:
    with httpx.Client(base_url=base_url, timeout=15) as c:
        r = console_login(c, admin_password(var_dir), Origin=base_url)
        assert r.status_code == 303
        assert "secure" not in set_cookie(r, "szt_admin").lower()  # public URL http, the request http
    with httpx.Client(base_url=base_url, timeout=15) as c:
        refused = console_login(c, admin_password(var_dir), Origin="http://evil.example")
        assert refused.status_code == 403 and refused.headers["content-type"] == "text/html; charset=utf-8"
        assert "请求被拒绝" in refused.text and "szt_admin" not in refused.headers.get("set-cookie", "")


# --- CSRF tokens ----------------------------------------------------------------------------------------------------


def test_every_console_form_carries_the_session_token_and_posts_without_it_are_refused(
    base_url: str, var_dir: Path
) -> None:
    with httpx.Client(base_url=base_url, timeout=15) as c:
        # The sign-in form itself: refused without the token of its cookie (login CSRF), as with a wrong one.
        _, cookie = login_form(c)
        no_token = c.post(
            "/admin/login", data={"username": "admin", "password": admin_password(var_dir)}, headers={"Cookie": cookie}
        )
        assert no_token.status_code == 403 and "szt_admin" not in no_token.headers.get("set-cookie", "")
        assert console_login(c, admin_password(var_dir)).status_code == 303
        token = csrf_token(c)
        for page in ("/admin/console", "/admin/console/admins", "/admin/console/monitoring", "/admin/console/masking"):
            html = c.get(page).text
            assert page != "/admin/console/monitoring" or "一体化政务服务平台（办件推送）" in html  # its line
            forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>(.{0,120})", html)
            assert forms, page
            assert all(f'<input type="hidden" name="csrf" value="{token}">' in f for f in forms), (page, forms)
        alert = {"name": "csrf", "metric": "error_rate", "route": "*", "op": ">", "threshold": "x", "window_s": "60"}
        # Today: any page of any site the administrator visits could post this (SameSite aside) and it is done.
        for bad in ({}, {"csrf": "forged"}, {"csrf": token[:-1]}):
            r = c.post("/admin/console/monitoring/alerts", data={**alert, **bad})
            assert r.status_code == 403 and "请求被拒绝" in r.text, r.text[:200]
            assert r.headers["content-type"] == "text/html; charset=utf-8"
        ok = c.post("/admin/console/monitoring/alerts", data={**alert, "csrf": token})
        assert ok.status_code == 303 and "msg=alert-invalid" in ok.headers["location"]  # past the token
        # Another session's token does not do.
        with httpx.Client(base_url=base_url, timeout=15) as other:
            console_login(other, admin_password(var_dir))
            theirs = csrf_token(other)
        assert theirs != token
        assert c.post("/admin/console/monitoring/alerts", data={**alert, "csrf": theirs}).status_code == 403
        # Sign-out is a form post too.
        assert c.post("/admin/logout", data={}).status_code == 403
        assert c.get("/admin/console").status_code == 200
        out = c.post("/admin/logout", data={"csrf": token})
        assert out.status_code == 303 and c.get("/admin/console").status_code == 302


def test_a_browser_posts_a_console_form_with_its_token(base_url: str, var_dir: Path) -> None:
    with chromium() as browser:
        page = console(browser, base_url, "admin", admin_password(var_dir))
        page.goto("/admin/console/monitoring")
        name = f"csrf-{secrets.token_hex(3)}"
        form = "form[action='/admin/console/monitoring/alerts']"
        page.fill(f"{form} input[name=name]", name)
        page.fill(f"{form} input[name=threshold]", "0.5")
        page.click(f"{form} button")
        page.wait_for_url("**/admin/console/monitoring?msg=alert-added")
        assert name in page.content()
        # The same form with its hidden token altered (as a forged page would post it): the 403 page.
        page.fill(f"{form} input[name=name]", name + "-forged")
        page.fill(f"{form} input[name=threshold]", "0.5")
        page.evaluate(f"document.querySelector(\"{form} input[name=csrf]\").value = 'forged'")
        with page.expect_navigation():
            page.click(f"{form} button")
        assert "请求被拒绝" in page.content()
        page.goto("/admin/console/monitoring")
        assert name + "-forged" not in page.content()


# --- sliding sessions with an absolute cap --------------------------------------------------------------------------


def test_sessions_slide_until_the_absolute_cap(published: str, var_dir: Path) -> None:
    # Today: 30 minutes from the last request in Redis but the cookie dies 30 minutes after sign-in, and no cap.
    with httpx.Client(base_url=published, timeout=15) as c:
        r = c.post("/admin/v1/sessions", json={"username": "admin", "password": admin_password(var_dir)})
        assert r.status_code == 201 and r.json()["expires_in"] == IDLE
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        started = time.monotonic()
        while time.monotonic() - started < IDLE + 2:  # active beyond the idle time: still signed in
            assert c.get("/admin/v1/me", headers=auth).status_code == 200
            time.sleep(1)
        while time.monotonic() - started < CAP - 0.5:
            assert c.get("/admin/v1/me", headers=auth).status_code == 200
            time.sleep(1)
        time.sleep(max(0.0, CAP + 0.5 - (time.monotonic() - started)))
        assert c.get("/admin/v1/me", headers=auth).status_code == 401  # the cap, however active

        r = c.post("/admin/v1/sessions", json={"username": "admin", "password": admin_password(var_dir)})
        idle = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert c.get("/admin/v1/me", headers=idle).status_code == 200
        time.sleep(IDLE + 1)
        assert c.get("/admin/v1/me", headers=idle).status_code == 401  # idle too long


# --- LIKE patterns, times, charset --------------------------------------------------------------------------------


async def test_like_wildcards_in_search_filters_match_themselves(
    http: httpx.Client, var_dir: Path, res: Resources
) -> None:
    mark = secrets.token_hex(4)
    for detail in (f"{mark}_x", f"{mark}ax", f"{mark}%y", f"{mark}zzy", f"{mark}\\q"):
        await logs.record_integration(
            res, app_code="like-test", interface="/t", direction="inbound", status=200, latency_ms=1.0, detail=detail
        )
    auth = platform_admin(http, var_dir)

    def found(value: str) -> set[str]:
        r = http.get("/admin/v1/logs/integration", params={"detail": value, "limit": 50}, headers=auth)
        assert r.status_code == 200, r.text
        return {item["detail"] for item in r.json()["items"]}

    # Today: `_` matches any character and `%` any run, so these find two and two.
    assert found(f"{mark}_x") == {f"{mark}_x"}
    assert found(f"{mark}%y") == {f"{mark}%y"}
    assert found(f"{mark}\\q") == {f"{mark}\\q"}
    assert found(mark) == {f"{mark}_x", f"{mark}ax", f"{mark}%y", f"{mark}zzy", f"{mark}\\q"}
    r = http.get("/admin/v1/logs/operations", params={"reason": "%_%"}, headers=auth)
    assert r.status_code == 200 and all("%_%" in (i["reason"] or "") for i in r.json()["items"])


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/admin/v1/logs/operations", "until", "0.5"),
        ("/admin/v1/logs/operations", "since", "1700000000"),
        ("/admin/v1/logs/integration", "since", "2026-13-01"),
        ("/admin/v1/logs/integration", "until", "2026-W10-1"),
        ("/admin/v1/logs/operations/export", "until", "yesterday"),
        ("/admin/v1/stats/apps", "since", "0.5"),
        ("/admin/v1/stats/access", "until", "1e9"),
        ("/admin/v1/monitoring/series", "since", "2026-03-01T25:00"),
    ],
)
def test_times_are_iso_8601_only(http: httpx.Client, var_dir: Path, path: str, field: str, value: str) -> None:
    auth = platform_admin(http, var_dir)
    r = http.get(path, params={field: value, "route": "/healthz"}, headers=auth)  # route: the series needs one
    assert r.status_code == 400, (path, field, value, r.status_code, r.text[:200])
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in body["errors"]] == [field], body


def test_iso_dates_and_date_times_are_accepted(http: httpx.Client, var_dir: Path) -> None:
    auth = platform_admin(http, var_dir)
    for value in ("2026-03-01", "2026-03-01T08:00:00+08:00", "2026-03-01T00:00:00Z", "2026-03-01 08:00", ""):
        for path in ("/admin/v1/logs/operations", "/admin/v1/stats/apps"):
            r = http.get(path, params={"since": value, "until": value}, headers=auth)
            assert r.status_code == 200, (path, value, r.text[:200])


def test_the_console_log_page_says_a_time_is_wrong(base_url: str, var_dir: Path) -> None:
    with httpx.Client(base_url=base_url, timeout=15) as c:
        console_login(c, admin_password(var_dir))
        r = c.get("/admin/console/logs", params={"until": "0.5"})
        assert r.status_code == 200 and "时间格式无效" in r.text
        assert c.get("/admin/console/eseal/logs.csv", params={"since": "0.5"}).status_code == 400


def test_exports_and_pages_have_one_charset(http: httpx.Client, base_url: str, var_dir: Path) -> None:
    auth = platform_admin(http, var_dir)
    r = http.get("/admin/v1/logs/operations/export", params={"format": "csv"}, headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"  # today: charset twice
    with httpx.Client(base_url=base_url, timeout=15) as c:
        assert c.get("/admin/login").headers["content-type"] == "text/html; charset=utf-8"
        console_login(c, admin_password(var_dir))
        assert c.get("/admin/console/eseal/logs.csv").headers["content-type"] == "text/csv; charset=utf-8"


def test_the_filter_helpers() -> None:
    from datetime import UTC, datetime

    from core.clock import SHANGHAI
    from core.filters import contains, parse_time, prefix
    from core.problems import ProblemError

    assert contains("50%_a\\b") == "%50\\%\\_a\\\\b%" and prefix("32_") == "32\\_%"
    assert parse_time("2026-03-01", "since") == datetime(2026, 3, 1, tzinfo=SHANGHAI)
    assert parse_time("2026-03-01", "until", end_of_day=True) == datetime(2026, 3, 2, tzinfo=SHANGHAI)
    assert parse_time("2026-03-01T08:00:00.1234567z", "t") == datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert parse_time("2026-03-01 08:00", "t") == datetime(2026, 3, 1, 8, tzinfo=SHANGHAI)
    assert parse_time("2026-03-01T08:00:00-05:00", "t") == datetime(2026, 3, 1, 13, tzinfo=UTC)
    assert parse_time("", "t") is None and parse_time(None, "t") is None
    for bad in (
        "0.5",
        " 2026-03-01",
        "١٩٧٠-01-01",
        "1700000000",
        "20260301",
        "2026-03-01T08",
        "2026-02-30",
        "2026-03-01T08:00+0800",
        "now",
    ):
        with pytest.raises(ProblemError) as info:
            parse_time(bad, "until")
        assert info.value.status == 400 and info.value.errors[0].field == "until"
