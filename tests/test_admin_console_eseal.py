"""Electronic seals in the web console, in headless chromium (Playwright): the platform administrator applies for an
SM2 cloud certificate and issues it, applies for an official seal bound to it, approves, makes, registers and
publishes it (the impression is drawn), suspends it, revokes the certificate (it appears on the published CRL),
searches the seal logs and exports them. An organisation administrator without the eseal permissions sees no menu,
gets the 403 page and changes nothing. Screenshots go to test-output/."""

from __future__ import annotations

import csv
import io
import secrets
from pathlib import Path

import httpx
from asn1crypto import crl as acrl
from playwright.sync_api import Browser, Page

from tests.admin_helpers import admin_password, console, csrf_token, make_admin, platform_admin
from tests.harness import ROOT
from tests.test_admin_console_apps import browser  # noqa: F401  (the chromium fixture)

OUT = ROOT / "test-output"


def state_of(page: Page) -> str:
    return page.locator("#seal .state").inner_text().strip()


def press(page: Page, button: str, notice: str) -> None:
    page.click(f"button#{button}")
    assert notice in page.locator(".notice").inner_text(), page.locator("main").inner_text()[:500]


def test_certificate_and_seal_lifecycle_in_the_console(
    browser: Browser,  # noqa: F811  (the fixture imported above)
    http: httpx.Client,
    var_dir: Path,
    base_url: str,
) -> None:
    OUT.mkdir(exist_ok=True)
    org = f"无锡市公安局{secrets.token_hex(2)}"
    page = console(browser, base_url, "admin", admin_password(var_dir))
    # four-eyes: another provincial administrator reviews what the platform administrator applied for
    reviewer_name, reviewer_password = f"esr{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    made = http.post(
        "/admin/v1/admins",
        headers=platform_admin(http, var_dir),
        json={
            "username": reviewer_name,
            "password": reviewer_password,
            "display_name": "印章审核员",
            "org_code": "320000",
            "roles": ["system"],
        },
    )
    assert made.status_code == 201, made.text
    reviewer = console(browser, base_url, reviewer_name, reviewer_password)
    page.click("nav a:has-text('电子印章')")
    assert page.locator("h2").first.inner_text() == "电子印章"

    # A cloud SM2 signing certificate: applied for, then reviewed and issued from the list.
    page.goto("/admin/console/eseal/certificates")
    form = page.locator("#cert-apply")
    form.locator("input[name=subject_name]").fill(org)
    form.locator("input[name=subject_org]").fill(org)
    form.locator("button[type=submit]").click()
    assert "证书申请已提交" in page.locator(".notice").inner_text()
    row = page.locator("#certs tr", has_text=org)
    assert row.locator(".state").inner_text().strip() == "已申请"
    row.locator("button", has_text="审核签发").click()  # the applicant's own review is refused
    assert "不能审核本人提交的申请" in page.locator(".error").inner_text()
    reviewer.goto("/admin/console/eseal/certificates")
    reviewer.locator("#certs tr", has_text=org).locator("button", has_text="审核签发").click()
    page.goto("/admin/console/eseal/certificates")
    row = page.locator("#certs tr", has_text=org)
    assert row.locator(".state").inner_text().strip() == "有效"
    serial = row.locator("td").nth(5).inner_text().strip()
    assert serial.isdigit()

    # An official seal bound to it: apply → approve → make (impression drawn) → register → publish.
    page.goto("/admin/console/eseal/seals/new")
    page.select_option("select[name=kind]", "official")
    page.fill("input[name=name]", org)
    page.fill("input[name=org_name]", org)
    page.fill("input[name=region_code]", "320200")
    page.locator("label", has_text=serial).locator("input").check()
    page.click("#apply button[type=submit]")
    assert "印章申请已提交" in page.locator(".notice").inner_text()
    assert state_of(page) == "已申请"
    assert page.locator("#impression").count() == 0
    seal_url = page.url.split("?")[0]
    reviewer.goto(seal_url)
    press(reviewer, "approve", "已审核通过")
    page.goto(seal_url)
    assert state_of(page) == "已审核"
    press(page, "make", "已制作")
    assert state_of(page) == "已制作"
    width = page.locator("#impression").evaluate("i => i.complete && i.naturalWidth")
    assert width and width > 100  # a real PNG decoded by the browser
    code = page.locator("#seal dd").first.inner_text().strip()
    assert code.startswith("3202001") and len(code) == 15  # region, kind digit, number, check character
    press(page, "register", "已备案")
    press(page, "publish", "已发布")
    assert state_of(page) == "已发布"
    assert serial in page.locator("#seal").inner_text()
    page.screenshot(path=str(OUT / "admin-eseal-seal.png"), full_page=True)

    # Authorised to an app; listed and found by its code; suspended.
    page.fill("#grant input[name=grantee]", "app-console-test")
    page.select_option("#grant select[name=kind]", "app")
    page.click("#grant button[type=submit]")
    assert "已授权" in page.locator(".notice").inner_text()
    page.goto(f"/admin/console/eseal?code={code}")
    assert page.locator("#seals tr").count() == 2  # header + the one seal
    assert "已发布" in page.locator("#seals tr", has_text=code).inner_text()
    charts = page.locator("svg").all_text_contents()
    for title in ("印章类型", "印章状态", "证书形态", "证书状态"):  # the statistics: kinds, forms and states
        assert any(title in c for c in charts), title
    page.screenshot(path=str(OUT / "admin-eseal-overview.png"), full_page=True)
    page.goto(seal_url)
    press(page, "suspend", "已暂停")
    assert state_of(page) == "已暂停"

    # Revoking the certificate puts its serial on the published CRL.
    page.goto("/admin/console/eseal/certificates")
    row = page.locator("#certs tr", has_text=org)
    row.locator("form.revoke select[name=reason]").select_option("key_compromise")
    row.locator("form.revoke button").click()
    row = page.locator("#certs tr", has_text=org)
    assert "已吊销" in row.locator(".state").inner_text() and "密钥泄露" in row.locator(".state").inner_text()
    listed = acrl.CertificateList.load(http.get("/eseal/v1/crl/sm2-issuing.crl").content)
    revoked = {int(r["user_certificate"].native) for r in listed["tbs_cert_list"]["revoked_certificates"]}
    assert int(serial) in revoked

    # The seal logs: searched by the seal's code, exported as CSV, the hash chain checked.
    page.goto(f"/admin/console/eseal/logs?seal_code={code}")
    actions = page.locator("#logs tr td:nth-child(4)").all_text_contents()
    assert {"make", "register", "publish", "suspend"} <= set(actions)
    assert set(page.locator("#logs tr td:nth-child(3)").all_text_contents()) == {"印章"}  # kinds shown in Chinese
    page.goto("/admin/console/eseal/logs?verify=1")
    assert "哈希链完整" in page.locator("#chain").inner_text()
    page.screenshot(path=str(OUT / "admin-eseal-logs.png"), full_page=True)
    platform = platform_admin(http, var_dir)
    cookie = {"szt_admin": platform["Authorization"].removeprefix("Bearer ")}
    with httpx.Client(base_url=base_url, cookies=cookie, timeout=15) as c:
        exported = c.get("/admin/console/eseal/logs.csv", params={"seal_code": code})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert {r["action"] for r in rows} >= {"make", "publish"} and all(r["seal_code"] == code for r in rows)
    # Each console action is in the operation log.
    ops = http.get("/admin/v1/logs/operations", params={"action": "eseal.seal.change"}, headers=platform).json()
    assert any(code in str(item) or "publish" in str(item) for item in ops["items"]), ops

    # An organisation administrator: no menu, a 403 page, and a posted action changes nothing.
    _, _, city = make_admin(http, platform, "320505", ["org_admin"], prefix="es")
    city_cookie = {"szt_admin": city["Authorization"].removeprefix("Bearer ")}
    with httpx.Client(base_url=base_url, cookies=city_cookie, timeout=15) as c:
        assert "电子印章" not in c.get("/admin/console").text
        assert c.get("/admin/console/eseal").status_code == 403
        refused = c.post(seal_url + "/action", data={"action": "resume", "csrf": csrf_token(c)})
        assert refused.status_code == 303 and "msg=" in refused.headers["location"]
        assert c.get("/admin/console/eseal/logs.csv").status_code == 403
    page.goto(seal_url)
    assert state_of(page) == "已暂停"
