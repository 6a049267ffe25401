"""Statistics (users by region/age band/sex from identity's facts; access and per-app usage from the integration
log), monitoring samples from the server's metrics, alert rules firing and clearing into administrators' inboxes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import httpx

from core.resources import Resources
from identity import people
from orgs import logs, monitoring
from tests.admin_helpers import make_admin, platform_admin


def id_number(region: str, birth: str) -> str:
    body = region + birth.replace("-", "") + f"{secrets.randbelow(1000):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


async def test_user_statistics_by_region_age_and_sex(res: Resources, var_dir: Path, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        boss = (
            await http.post(
                "/admin/v1/sessions",
                json={"username": "admin", "password": (var_dir / "admin-password").read_text().strip()},
            )
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {boss}"}
        before = (await http.get("/admin/v1/stats/users", headers=h)).json()
        year = datetime.now(UTC).year
        added = [
            ("320505", f"{year - 70}-03-01", "female"),
            ("320505", f"{year - 25}-06-01", "male"),
            ("320102", f"{year - 10}-01-01", "male"),
        ]
        async with res.db.acquire() as conn:
            for region, birth, gender in added:
                await people.insert(
                    res,
                    conn,
                    id_type="resident",
                    id_number=id_number(region, birth),
                    name="统计",
                    phone=f"139{secrets.randbelow(10**8):08d}",
                    gender=gender,
                    birth_date=birth,
                )
        after = (await http.get("/admin/v1/stats/users", headers=h)).json()
        assert after["total"] == before["total"] + 3

        def count(doc: dict[str, list[dict[str, object]]], part: str, key: str) -> int:
            return next((int(str(b["count"])) for b in doc[part] if b["key"] == key), 0)

        assert count(after, "by_region", "320500") == count(before, "by_region", "320500") + 2
        assert count(after, "by_region", "320100") == count(before, "by_region", "320100") + 1
        assert count(after, "by_age_band", "60+") == count(before, "by_age_band", "60+") + 1
        assert count(after, "by_age_band", "18-29") == count(before, "by_age_band", "18-29") + 1
        assert count(after, "by_age_band", "0-13") == count(before, "by_age_band", "0-13") + 1
        assert count(after, "by_sex", "male") == count(before, "by_sex", "male") + 2
        assert next(b for b in after["by_region"] if b["key"] == "320500")["label"] == "苏州"


def test_city_statistics_stay_in_the_city(http: httpx.Client, var_dir: Path) -> None:
    boss = platform_admin(http, var_dir)
    _, _, suzhou = make_admin(http, boss, "320500", ["org_admin"], prefix="st")
    doc = http.get("/admin/v1/stats/users", headers=suzhou).json()
    assert {b["key"] for b in doc["by_region"]} <= {"320500"}
    _, _, viewer = make_admin(http, boss, "320500", [], prefix="st")
    assert http.get("/admin/v1/stats/users", headers=viewer).status_code == 403


async def test_access_and_app_usage(res: Resources, var_dir: Path, base_url: str) -> None:
    app = "app-" + secrets.token_hex(3)
    for i, region in enumerate(["320500", "320500", "320100"]):
        await logs.record_integration(
            res,
            app_code=app,
            interface="/identity/userinfo",
            direction="inbound",
            status=200 if i else 500,
            latency_ms=20.0,
            org_path="320000",
            region_code=region,
        )
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        boss = (
            await http.post(
                "/admin/v1/sessions",
                json={"username": "admin", "password": (var_dir / "admin-password").read_text().strip()},
            )
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {boss}"}
        by_service = (await http.get("/admin/v1/stats/access", headers=h, params={"group": "service"})).json()
        mine = [r for r in by_service["rows"] if r["key"] == app]
        assert sum(r["calls"] for r in mine) == 3 and sum(r["failed"] for r in mine) == 1
        by_region = (
            await http.get("/admin/v1/stats/access", headers=h, params={"group": "region", "period": "month"})
        ).json()
        assert any(r["key"] == "320500" and r["label"] == "苏州" and r["calls"] >= 2 for r in by_region["rows"])
        usage = (await http.get("/admin/v1/stats/apps", headers=h)).json()["items"]
        row = next(u for u in usage if u["app_code"] == app)
        assert row["calls"] == 3 and row["failed"] == 1 and row["active_days"] == 1


async def test_monitoring_samples_and_alerts(res: Resources, var_dir: Path, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        boss = (
            await http.post(
                "/admin/v1/sessions",
                json={"username": "admin", "password": (var_dir / "admin-password").read_text().strip()},
            )
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {boss}"}
        await monitoring.sample(res)  # the baseline
        for _ in range(7):
            assert (await http.get("/admin/v1/me", headers=h)).status_code == 200
        assert await monitoring.sample(res) >= 1
        route = "admin GET /admin/v1/me"
        series = (await http.get("/admin/v1/monitoring/series", headers=h, params={"route": route})).json()
        assert series["points"] and series["points"][-1]["count"] >= 7
        assert series["points"][-1]["p99_ms"] > 0
        summary = (await http.get("/admin/v1/monitoring/routes", headers=h)).json()["items"]
        assert any(s["route"] == route and s["count"] >= 7 for s in summary)
        overview = (await http.get("/admin/v1/monitoring/overview", headers=h)).json()
        assert overview["cpus"] >= 1 and overview["database_mb"] > 0

        name = "me-traffic-" + secrets.token_hex(2)
        r = await http.post(
            "/admin/v1/monitoring/alerts",
            headers=h,
            json={"name": name, "metric": "rate_per_s", "route": route, "op": ">", "threshold": 0.01, "window_s": 600},
        )
        assert r.status_code == 201, r.text
        bad = await http.post(
            "/admin/v1/monitoring/alerts",
            headers=h,
            json={"name": "x", "metric": "error_rate", "threshold": 5, "window_s": 600},
        )
        assert bad.status_code == 400
        assert (name, "fired") in await monitoring.evaluate(res)
        assert (name, "fired") not in await monitoring.evaluate(res)  # once per change of state
        inbox = (await http.get("/admin/v1/inbox", headers=h)).json()
        assert any(name in m["title"] and "触发" in m["title"] for m in inbox["items"]) and inbox["unread"] >= 1
        # the traffic falls out of the window: the alert clears and says so
        await res.db.execute("UPDATE orgs.metric_samples SET at = at - interval '2 hours' WHERE route = $1", route)
        assert (name, "cleared") in await monitoring.evaluate(res)
        inbox = (await http.get("/admin/v1/inbox", headers=h)).json()
        assert any(name in m["title"] and "解除" in m["title"] for m in inbox["items"])
        rules = (await http.get("/admin/v1/monitoring/alerts", headers=h)).json()["items"]
        rule = next(x for x in rules if x["name"] == name)
        assert rule["firing"] is False
        assert (await http.delete(f"/admin/v1/monitoring/alerts/{rule['id']}", headers=h)).status_code == 204
