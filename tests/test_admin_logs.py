"""Operation log written for every admin action, the integration log, search by fields with keyset pages,
CSV/XLSX exports (masked), reports, masking management and the daily gzip backup."""

from __future__ import annotations

import csv
import gzip
import io
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from openpyxl import load_workbook

from core.resources import Resources
from orgs import backup, logs
from tests.admin_helpers import make_admin, platform_admin


def test_every_action_is_logged_with_result_and_reason(http: httpx.Client, var_dir: Path) -> None:
    boss = platform_admin(http, var_dir)
    aid, username, h = make_admin(http, boss, "320500", ["org_admin"], prefix="log")
    # a refused action (scope) and a failed one (validation), then a good one
    assert (
        http.post(
            "/admin/v1/admins",
            headers=h,
            json={
                "username": "zz" + secrets.token_hex(3),
                "password": "x" * 12,
                "display_name": "x",
                "org_code": "320100",
            },
        ).status_code
        == 403
    )
    assert (
        http.post(
            "/admin/v1/roles",
            headers=h,
            json={
                "code": "r" + secrets.token_hex(2),
                "name": "x",
                "org_code": "320500",
                "data_scope": "own",
                "permissions": ["nope.nope"],
            },
        ).status_code
        == 400
    )
    assert http.post("/admin/v1/sessions", json={"username": username, "password": "wrong-password"}).status_code == 401
    r = http.get("/admin/v1/logs/operations", headers=boss, params={"username": username, "limit": 10})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    by_action = {i["action"]: i for i in reversed(items)}  # the newest of each action
    assert by_action["orgs.admin.create"]["result"] == "fail" and by_action["orgs.admin.create"]["status"] == 403
    assert "out-of-scope" in by_action["orgs.admin.create"]["reason"]
    assert by_action["orgs.role.create"]["status"] == 400 and "[permissions]" in by_action["orgs.role.create"]["reason"]
    assert by_action["admin.sign_in"]["result"] == "fail" and "bad-credentials" in by_action["admin.sign_in"]["reason"]
    assert all(i["ip"] == "127.0.0.1" and i["request_id"] for i in items)
    # the creation of the account itself, by the platform administrator
    r = http.get(
        "/admin/v1/logs/operations",
        headers=boss,
        params={"username": "admin", "action": "orgs.admin.create", "result": "ok", "limit": 100},
    )
    assert any(i["target"] == "" or i["path"] == "/admin/v1/admins" for i in r.json()["items"])
    # reads are not logged; newest first; keyset paging walks without repeats
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = http.get(
            "/admin/v1/logs/operations",
            headers=boss,
            params={"username": username, "limit": 1, **({"cursor": cursor} if cursor else {})},
        ).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert len(set(seen)) == 3
    ats = [i["at"] for i in items]
    assert ats == sorted(ats, reverse=True)
    # time range
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert http.get("/admin/v1/logs/operations", headers=boss, params={"since": future}).json()["items"] == []
    # a city administrator sees only its own subtree's entries
    r = http.get("/admin/v1/logs/operations", headers=h, params={"limit": 100})
    assert r.status_code == 200
    assert all(i["org_path"].startswith("320000.320500") for i in r.json()["items"])
    assert aid


def test_exports_and_masking(http: httpx.Client, var_dir: Path) -> None:
    boss = platform_admin(http, var_dir)
    role = http.post(
        "/admin/v1/roles",
        headers=boss,
        json={
            "code": "auditor" + secrets.token_hex(2),
            "name": "审计员",
            "org_code": "320000",
            "data_scope": "all",
            "mask_level": 0,
            "permissions": ["logs.read", "logs.export"],
        },
    ).json()
    _, _, auditor = make_admin(http, boss, "320000", [role["code"]], prefix="aud")
    r = http.get("/admin/v1/logs/operations/export", headers=boss, params={"format": "csv", "username": "admin"})
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["时间", "操作人", "所属机构"] and len(rows) > 1 and rows[1][3] == "127.0.0.1"
    r = http.get("/admin/v1/logs/operations/export", headers=auditor, params={"format": "xlsx", "username": "admin"})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    values = list(sheet.values)
    assert values[0][1] == "操作人" and len(values) > 1
    assert all(v[3] == "127.0.*.*" for v in values[1:])  # the auditor's role sees IPs masked
    searched = http.get("/admin/v1/logs/operations", headers=auditor, params={"username": "admin"}).json()["items"]
    assert searched and all(i["ip"] == "127.0.*.*" for i in searched)
    # the export itself is an action in the log
    r = http.get("/admin/v1/logs/operations", headers=boss, params={"action": "logs.export.operations"}).json()
    assert r["items"]
    # masking management: raising the IP level to 3 hides it from a system administrator (mask level 2) too
    fields = {f["field"]: f for f in http.get("/admin/v1/masking/fields", headers=boss).json()["items"]}
    assert fields["id_number"]["level"] == 3 and fields["ip"]["level"] == 1
    assert http.put("/admin/v1/masking/fields/ip", headers=auditor, json={"level": 3}).status_code == 403
    _, _, system = make_admin(http, boss, "320000", ["system"], prefix="sys")
    assert http.get("/admin/v1/logs/operations", headers=system).json()["items"][0]["ip"] == "127.0.0.1"
    assert http.put("/admin/v1/masking/fields/ip", headers=boss, json={"level": 3}).status_code == 200
    try:
        assert http.get("/admin/v1/logs/operations", headers=system).json()["items"][0]["ip"] == "127.0.*.*"
    finally:
        assert http.put("/admin/v1/masking/fields/ip", headers=boss, json={"level": 1}).status_code == 200
    assert http.put("/admin/v1/masking/fields/nope", headers=boss, json={"level": 1}).status_code == 400


async def test_integration_log_report_and_backup(res: Resources, var_dir: Path, base_url: str) -> None:
    app = "app-" + secrets.token_hex(3)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for i in range(5):
        await logs.record_integration(
            res,
            app_code=app,
            interface="/identity/token",
            direction="inbound",
            status=200 if i else 502,
            latency_ms=10.0 + i,
            ip="10.2.3.4",
            org_path="320000.320500",
            region_code="320500",
        )
    await res.db.execute("UPDATE orgs.integration_log SET at = $2 WHERE app_code = $1", app, yesterday)
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        r = await http.post(
            "/admin/v1/sessions",
            json={"username": "admin", "password": (var_dir / "admin-password").read_text().strip()},
        )
        boss = {"Authorization": f"Bearer {r.json()['access_token']}"}
        page = (await http.get("/admin/v1/logs/integration", headers=boss, params={"app_code": app})).json()
        assert len(page["items"]) == 5 and {i["result"] for i in page["items"]} == {"ok", "fail"}
        failed = (
            await http.get("/admin/v1/logs/integration", headers=boss, params={"app_code": app, "status": 502})
        ).json()["items"]
        assert len(failed) == 1 and failed[0]["latency_ms"] == 10.0
        r = await http.get(
            "/admin/v1/logs/integration/export", headers=boss, params={"app_code": app, "format": "xlsx"}
        )
        assert r.status_code == 200 and r.content[:2] == b"PK"
        rr = await http.get("/admin/v1/logs/report", headers=boss, params={"period": "week", "periods": 2})
        assert rr.status_code == 200, rr.text
        report = rr.json()
        assert report["period"] == "week" and sum(row["integration_calls"] for row in report["rows"]) >= 5
        for period in ("month", "quarter", "year"):
            assert (await http.get("/admin/v1/logs/report", headers=boss, params={"period": period})).status_code == 200
    path, n = await backup.backup_day(res, yesterday.date())
    assert n >= 5 and path.name.endswith(".csv.gz")
    lines = list(csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    assert lines[0][:3] == ["id", "at", "app_code"] and sum(1 for line in lines if line[2] == app) == 5
    made = await backup.backup_missing(res)
    assert yesterday.date() not in made  # already done
