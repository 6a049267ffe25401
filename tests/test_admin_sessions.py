"""Administrator sign-in: the seeded platform administrator, bearer tokens, lockout, TOTP, sign-out."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from orgs import totp
from tests.admin_helpers import admin_password, make_admin, platform_admin, sign_in


def test_seeded_tree_and_platform_admin(http: httpx.Client, var_dir: Path) -> None:
    h = platform_admin(http, var_dir)
    me = http.get("/admin/v1/me", headers=h).json()
    assert me["username"] == "admin" and me["data_scope"] == "all" and "platform" in me["roles"]
    assert "catalog.app.review" in me["permissions"] and "orgs.org.review" in me["permissions"]
    codes: set[str] = set()
    cursor = None
    while True:
        page = http.get("/admin/v1/orgs", headers=h, params={"limit": 100, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        codes |= {o["code"] for o in page.json()["items"]}
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    cities = {
        "320100",
        "320200",
        "320300",
        "320400",
        "320500",
        "320600",
        "320700",
        "320800",
        "320900",
        "321000",
        "321100",
        "321200",
        "321300",
    }
    assert {"320000", "320000-za", "320000-jg", "320000-crj", "320500-wa", "320505", "320505-s01"} <= codes
    assert cities <= codes


def test_no_session_is_401_and_sign_out_revokes(http: httpx.Client, var_dir: Path) -> None:
    r = http.get("/admin/v1/me")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert http.get("/admin/v1/me", headers={"Authorization": "Bearer adm_forged"}).status_code == 401
    h = platform_admin(http, var_dir)
    assert http.get("/admin/v1/me", headers=h).status_code == 200
    assert http.delete("/admin/v1/sessions/current", headers=h).status_code == 204
    assert http.get("/admin/v1/me", headers=h).status_code == 401


def test_wrong_password_locks_after_five(http: httpx.Client, var_dir: Path) -> None:
    boss = platform_admin(http, var_dir)
    _, username, _ = make_admin(http, boss, "320100", ["org_admin"], prefix="lock")
    for _ in range(5):
        r = http.post("/admin/v1/sessions", json={"username": username, "password": "wrong-password-1"})
        assert r.status_code == 401 and r.json()["type"].endswith("bad-credentials")
    r = http.post("/admin/v1/sessions", json={"username": username, "password": "wrong-password-1"})
    assert r.status_code == 423 and r.json()["type"].endswith("account-locked")
    # an unknown username answers exactly like a wrong password
    r = http.post("/admin/v1/sessions", json={"username": "nobody-" + secrets.token_hex(3), "password": "x"})
    assert r.status_code == 401 and r.json()["type"].endswith("bad-credentials")
    assert admin_password(var_dir)  # the platform admin is unaffected
    platform_admin(http, var_dir)


def test_totp_enrolment_and_sign_in(http: httpx.Client, var_dir: Path) -> None:
    boss = platform_admin(http, var_dir)
    password = secrets.token_urlsafe(12)
    username = "totp" + secrets.token_hex(3)
    r = http.post(
        "/admin/v1/admins",
        headers=boss,
        json={
            "username": username,
            "password": password,
            "display_name": "动态码",
            "org_code": "320500",
            "roles": ["org_admin"],
        },
    )
    assert r.status_code == 201, r.text
    h = sign_in(http, username, password)
    start = http.post("/admin/v1/me/totp", headers=h).json()
    assert start["otpauth_uri"].startswith("otpauth://totp/")
    assert (
        http.post(
            "/admin/v1/me/totp/confirm",
            headers=h,
            json={"code": "000000" if totp.code_at(start["secret"]) != "000000" else "111111"},
        ).status_code
        == 400
    )
    assert (
        http.post("/admin/v1/me/totp/confirm", headers=h, json={"code": totp.code_at(start["secret"])}).status_code
        == 204
    )
    r = http.post("/admin/v1/sessions", json={"username": username, "password": password})
    assert r.status_code == 401 and r.json()["type"].endswith("totp-required")
    code = totp.code_at(start["secret"])
    sign_in(http, username, password, totp=code)
    r = http.post("/admin/v1/sessions", json={"username": username, "password": password, "totp": code})
    assert r.status_code == 401 and r.json()["type"].endswith("totp-invalid")  # one code, one sign-in


def test_rfc6238_vector() -> None:
    # RFC 6238 appendix B, SHA-1, secret "12345678901234567890": T=59 -> 94287082 (8 digits) -> last 6 "287082"
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp.code_at(secret, at=59) == "287082"
    assert totp.code_at(secret, at=1111111109) == "081804"
