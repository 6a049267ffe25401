"""Sign-in by scanning with 苏证通: the console's authorization request through our own OIDC provider
(`admin-console` client), first binding the 苏证通 account to an administrator, then signing in with it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.admin_helpers import make_admin, platform_admin
from tests.identity_helpers import bearer, enrol, pick_citizen


def scan_and_approve(http: httpx.Client, console: httpx.Client, start: str, app_auth: dict[str, str]) -> httpx.Response:
    r = console.get(start)
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    assert "/identity/authorize?" in authorize and "client_id=admin-console" in authorize
    rid = http.get(authorize, headers={"Accept": "application/json"}).json()["request_id"]
    approved = http.post(f"/bff/v1/auth-requests/{rid}/approve", headers=app_auth, json={})
    assert approved.status_code == 200, approved.text
    return console.get(approved.json()["redirect_to"])  # the waiting browser follows redirect_to


def test_bind_then_sign_in_by_qr(http: httpx.Client, var_dir: Path, base_url: str, sim_url: str) -> None:
    citizen = pick_citizen(sim_url)
    session = enrol(http, sim_url, citizen)["session"]
    assert isinstance(session, dict)
    app_auth = bearer(session)
    boss = platform_admin(http, var_dir)
    admin_id, username, h = make_admin(http, boss, "320500", ["org_admin"], prefix="qr")
    with httpx.Client(base_url=base_url, timeout=15) as unbound:  # nobody bound yet: refused
        done = scan_and_approve(http, unbound, "/admin/login/qr", app_auth)
        assert done.status_code == 303 and "/admin/login?msg=" in done.headers["location"]
    token = h["Authorization"].removeprefix("Bearer ")
    with httpx.Client(base_url=base_url, timeout=15, cookies={"szt_admin": token}) as console:
        done = scan_and_approve(http, console, "/admin/login/qr?bind=1", app_auth)
        assert done.status_code == 303 and "msg=qr-bound" in done.headers["location"], done.headers.get("location")
    assert http.get(f"/admin/v1/admins/{admin_id}", headers=boss).json()["qr_bound"] is True
    with httpx.Client(base_url=base_url, timeout=15) as browser:
        done = scan_and_approve(http, browser, "/admin/login/qr", app_auth)
        assert done.status_code == 303 and done.headers["location"] == "/admin/console"
        me = browser.get("/admin/v1/me")
        assert me.status_code == 200 and me.json()["username"] == username
    # a callback with a state we never issued goes nowhere
    with httpx.Client(base_url=base_url, timeout=15) as forged:
        r = forged.get("/admin/oidc/callback", params={"code": "x", "state": "forged"})
        assert r.status_code == 303 and "msg=" in r.headers["location"] and "szt_admin" not in r.cookies
