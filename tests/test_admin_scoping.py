"""Issue 20 part B over the admin API: the role editor never grants more than the editor holds; four-eyes on every
review (the platform included); organisation-application contacts follow the masking catalogue; the app-integration
log rows and counts of an app carry its organisation, so its city sees them and another city does not."""

from __future__ import annotations

import asyncio
import io
import secrets
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from core.resources import Resources
from orgs import jobs, repo, service, stats
from orgs.models import AdminPrincipal
from tests.admin_helpers import make_admin, platform_admin, sign_in

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def icon_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 200), (20, 90, 160)).save(out, "PNG")
    return out.getvalue()


def application(http: httpx.Client, who: dict[str, str], base_url: str, regions: list[str]) -> dict[str, Any]:
    up = http.post("/admin/v1/catalog/icons", content=icon_png(), headers={**who, "Content-Type": "image/png"})
    assert up.status_code == 201, up.text
    return {
        "name": f"测试应用{secrets.token_hex(2)}",
        "category": "治安",
        "kind": "backend",
        "entry_path": f"{base_url}/bff/healthz",
        "icon_digest": up.json()["digest"],
        "channels": ["ios"],
        "regions": regions,
        "scopes": [],
    }


def apply_app(http: httpx.Client, who: dict[str, str], base_url: str, regions: list[str]) -> dict[str, Any]:
    r = http.post("/admin/v1/catalog/applications", json=application(http, who, base_url, regions), headers=who)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def review(http: httpx.Client, who: dict[str, str], version_id: str) -> httpx.Response:
    return http.post(f"/admin/v1/catalog/versions/{version_id}/review", json={"decision": "approve"}, headers=who)


def test_role_editor_never_grants_more_than_the_editor_holds(http: httpx.Client, var_dir: Path) -> None:
    platform = platform_admin(http, var_dir)
    _, city_user, city = make_admin(http, platform, "320500", ["org_admin"], prefix="re")
    code = f"r{secrets.token_hex(3)}"
    base = {"code": code, "name": "统计查看员", "org_code": "320500", "data_scope": "own"}

    # org_admin lacks monitor.read: refused, naming the permission; nothing is created
    over = http.post("/admin/v1/roles", json={**base, "permissions": ["stats.read", "monitor.read"]}, headers=city)
    assert over.status_code == 403, over.text
    assert over.json()["type"].endswith("grant-exceeds-own") and "monitor.read" in over.json()["detail"]
    assert over.json()["errors"][0]["field"] == "permissions"
    wider = http.post("/admin/v1/roles", json={**base, "data_scope": "all", "permissions": []}, headers=city)
    assert wider.status_code == 403, wider.text
    assert code not in [r["code"] for r in http.get("/admin/v1/roles", headers=city).json()["items"]]

    made = http.post("/admin/v1/roles", json={**base, "permissions": ["dashboard.view"]}, headers=city)
    assert made.status_code == 201, made.text
    role = made.json()

    # edit: adding a permission the editor lacks is refused, one it holds is saved
    url = f"/admin/v1/roles/{role['id']}"
    edit = {"name": "统计查看员", "data_scope": "own", "permissions": ["dashboard.view", "logs.export"]}
    refused = http.put(url, json=edit, headers=city)
    assert refused.status_code == 403 and "logs.export" in refused.json()["detail"], refused.text
    assert http.get(url, headers=city).json()["permissions"] == ["dashboard.view"]
    edit["permissions"] = ["dashboard.view", "stats.read"]
    saved = http.put(url, json=edit, headers=city)
    assert saved.status_code == 200 and saved.json()["permissions"] == ["dashboard.view", "stats.read"], saved.text
    bad = http.put(url, json={**edit, "permissions": ["no.such"]}, headers=city)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "permissions"

    # built-in roles are fixed
    builtin = next(r for r in http.get("/admin/v1/roles", headers=platform).json()["items"] if r["code"] == "system")
    fixed = http.put(f"/admin/v1/roles/{builtin['id']}", json=edit, headers=platform)
    assert fixed.status_code == 403, fixed.text

    # assigned to a county administrator, the role is what they can do: stats yes, logs no
    password = secrets.token_urlsafe(12)
    username = f"rc{secrets.token_hex(3)}"
    created = http.post(
        "/admin/v1/admins",
        headers=city,
        json={"username": username, "password": password, "display_name": "县级统计员", "org_code": "320505"},
    )
    assert created.status_code == 201, created.text
    assigned = http.put(f"/admin/v1/admins/{created.json()['id']}/roles", json={"roles": [code]}, headers=city)
    assert assigned.status_code == 200 and assigned.json()["roles"] == [code], assigned.text
    county = sign_in(http, username, password)
    assert http.get("/admin/v1/stats/apps", headers=county).status_code == 200
    assert http.get("/admin/v1/logs/operations", headers=county).status_code == 403

    # the edit and the assignment are in the hash-chained operation log
    ops = http.get("/admin/v1/logs/operations", params={"username": city_user}, headers=platform).json()
    actions = {e["action"] for e in ops["items"]}
    assert {"orgs.role.edit", "orgs.admin.assign"} <= actions, actions


def test_platform_and_own_organisation_never_approve_their_own_app(
    http: httpx.Client, var_dir: Path, base_url: str
) -> None:
    platform = platform_admin(http, var_dir)
    mine = apply_app(http, platform, base_url, ["320000"])
    refused = review(http, platform, mine["id"])
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("own-submission")
    # another administrator of the root organisation (no level above it) may decide: four eyes
    _, _, other = make_admin(http, platform, "320000", ["system"], prefix="pv")
    assert review(http, other, mine["id"]).status_code == 200

    # a city's own application: neither its applicant nor another administrator of the city reviews it
    _, _, applicant = make_admin(http, platform, "320500", ["system"], prefix="sa")
    _, _, colleague = make_admin(http, platform, "320500", ["system"], prefix="sb")
    city_app = apply_app(http, applicant, base_url, ["320500"])
    assert review(http, applicant, city_app["id"]).json()["type"].endswith("own-submission")
    same_org = review(http, colleague, city_app["id"])
    assert same_org.status_code == 403 and same_org.json()["type"].endswith("own-organisation"), same_org.text
    assert review(http, platform, city_app["id"]).status_code == 200  # the level above


def _org_application(http: httpx.Client, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = http.post(
        "/admin/v1/org-applications",
        data={
            "code": f"320505-s{secrets.token_hex(3)}",
            "name": "测试派出所",
            "parent_code": "320505",
            "kind": "station",
            "contact_name": "李四海",
            "contact_phone": "13912345678",
        },
        files=[("documents", ("licence.pdf", PDF, "application/pdf"))],
        headers=headers or {},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_org_application_four_eyes(http: httpx.Client, var_dir: Path) -> None:
    platform = platform_admin(http, var_dir)
    _, _, county = make_admin(http, platform, "320505", ["org_admin"], prefix="ca")
    _, _, county2 = make_admin(http, platform, "320505", ["org_admin"], prefix="cb")
    _, _, city = make_admin(http, platform, "320500", ["org_admin"], prefix="cc")
    app = _org_application(http, county)
    url = f"/admin/v1/org-applications/{app['id']}/review"
    own = http.post(url, json={"decision": "approve"}, headers=county)
    assert own.status_code == 403 and own.json()["type"].endswith("own-submission"), own.text
    same = http.post(url, json={"decision": "approve"}, headers=county2)
    assert same.status_code == 403 and same.json()["type"].endswith("own-organisation"), same.text
    ok = http.post(url, json={"decision": "approve"}, headers=city)
    assert ok.status_code == 200 and ok.json()["status"] == "approved", ok.text


def test_contacts_follow_the_masking_catalogue(http: httpx.Client, var_dir: Path) -> None:
    public = _org_application(http)
    assert public["contact_phone"] == "139****5678" and public["contact_name"] != "李四海"  # the applicant's echo
    platform = platform_admin(http, var_dir)
    _, _, low = make_admin(http, platform, "320500", ["org_admin"], prefix="ml")  # mask level 1 < 2
    _, reviewer_name, high = make_admin(http, platform, "320500", ["system"], prefix="mh")  # mask level 2
    url = f"/admin/v1/org-applications/{public['id']}"
    masked = http.get(url, headers=low).json()
    assert masked["contact_phone"] == "139****5678" and masked["contact_name"] != "李四海"
    for who in (high, platform):
        shown = http.get(url, headers=who).json()
        assert (shown["contact_name"], shown["contact_phone"]) == ("李四海", "13912345678")
    listed = http.get("/admin/v1/org-applications", params={"status": "pending"}, headers=high).json()["items"]
    assert next(a for a in listed if a["id"] == public["id"])["contact_phone"] == "13912345678"
    # raising the field's level above the reviewer's masks it again
    try:
        assert (
            http.put("/admin/v1/masking/fields/contact_phone", json={"level": 3}, headers=platform).status_code == 200
        )
        assert http.get(url, headers=high).json()["contact_phone"] == "139****5678"
    finally:
        http.put("/admin/v1/masking/fields/contact_phone", json={"level": 2}, headers=platform)
    ops = http.get("/admin/v1/logs/operations", params={"username": reviewer_name}, headers=platform).json()
    assert ops["items"], "the reviewer's reads are logged"


async def _drained_rows(http: httpx.Client, res: Resources, who: dict[str, str], app_code: str, n: int) -> list[Any]:
    rows: list[Any] = []
    for _ in range(100):  # the server pushes its batch within orgs.logs.FLUSH_SECONDS; the worker job moves it
        await jobs.integration_drain(res)
        r = http.get("/admin/v1/logs/integration", params={"app_code": app_code}, headers=who)
        assert r.status_code == 200, r.text
        rows = r.json()["items"]
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.05)
    return rows


async def test_integration_rows_and_counts_carry_the_apps_organisation(
    http: httpx.Client, res: Resources, var_dir: Path, base_url: str
) -> None:
    platform = platform_admin(http, var_dir)
    _, _, county = make_admin(http, platform, "320505", ["org_admin"], prefix="ia")
    _, suzhou_user, suzhou = make_admin(http, platform, "320500", ["system"], prefix="ib")
    _, nanjing_user, nanjing = make_admin(http, platform, "320100", ["system"], prefix="ic")
    suzhou_p, nanjing_p = await principal(res, suzhou_user), await principal(res, nanjing_user)
    await jobs.integration_drain(res)  # earlier tests' queued calls are counted before, not after
    nanjing_before = await stats.calls_last_hour(res, nanjing_p)
    suzhou_before = await stats.calls_last_hour(res, suzhou_p)
    version = apply_app(http, county, base_url, ["320500"])
    outcome = review(http, suzhou, version["id"])
    assert outcome.status_code == 200, outcome.text
    client = (outcome.json()["client_id"], outcome.json()["client_secret"])
    for _ in range(3):
        token = http.post("/identity/token", data={"grant_type": "client_credentials"}, auth=client)
        assert token.status_code == 200, token.text

    rows = await _drained_rows(http, res, suzhou, client[0], 3)
    assert len(rows) == 3
    assert {(r["org_path"], r["region_code"]) for r in rows} == {("320000.320500.320505", "320505")}
    assert await _drained_rows(http, res, county, client[0], 3) == rows  # the applying county sees them too
    assert http.get("/admin/v1/logs/integration", params={"app_code": client[0]}, headers=nanjing).json()["items"] == []

    usage = http.get("/admin/v1/stats/apps", headers=suzhou).json()["items"]
    assert next(u for u in usage if u["app_code"] == client[0])["calls"] == 3
    other = http.get("/admin/v1/stats/apps", headers=nanjing).json()["items"]
    assert client[0] not in [u["app_code"] for u in other]
    access = http.get("/admin/v1/stats/access", params={"group": "service"}, headers=suzhou).json()["rows"]
    assert sum(r["calls"] for r in access if r["key"] == client[0]) == 3

    # the dashboard's request count of a city is its own apps' calls, not the server's
    assert await stats.calls_last_hour(res, suzhou_p) == suzhou_before + 3
    assert await stats.calls_last_hour(res, nanjing_p) == nanjing_before
    assert sum(n for _, n in await stats.calls_per_minute(res, suzhou_p, 1)) >= 3


async def principal(res: Resources, username: str) -> AdminPrincipal:
    row = await repo.admin_by_username(res.db, username)
    assert row is not None
    return await service.principal_for(res, row)
