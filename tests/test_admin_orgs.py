"""Organisation registration with uploaded credentials, review by the level above, downloads, and the race of two
reviewers; administrator registration and review."""

from __future__ import annotations

import io
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

from core.crypto import sm3
from tests.admin_helpers import make_admin, platform_admin, sign_in

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def apply(
    http: httpx.Client, parent: str, code: str, files: list[tuple[str, bytes, str]], **extra: str
) -> httpx.Response:
    form = {
        "code": code,
        "name": f"测试机构{code}",
        "parent_code": parent,
        "kind": "station",
        "contact_name": "张三丰",
        "contact_phone": "13812345678",
        **extra,
    }
    return http.post(
        "/admin/v1/org-applications",
        data=form,
        files=[("documents", (name, content, ctype)) for name, content, ctype in files],
    )


def station_code() -> str:
    return f"320505-t{secrets.token_hex(3)}"


def test_apply_review_download(http: httpx.Client, var_dir: Path) -> None:
    code = station_code()
    r = apply(
        http, "320505", code, [("../../etc/营业执照.pdf", PDF, "application/pdf"), ("photo.png", png(), "image/png")]
    )
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["status"] == "pending" and app["level"] == "station" and app["contact_phone"] == "138****5678"
    names = [d["filename"] for d in app["documents"]]
    assert names == ["营业执照.pdf", "photo.png"]
    assert app["documents"][0]["sm3"] == sm3(PDF).hex()
    stored = list((var_dir / "orgs" / "documents" / app["id"]).iterdir())
    assert len(stored) == 2 and all(".." not in p.name and "营业" not in p.name for p in stored)

    boss = platform_admin(http, var_dir)
    _, _, suzhou = make_admin(http, boss, "320500", ["org_admin"], prefix="sz")
    doc = app["documents"][0]
    got = http.get(f"/admin/v1/org-applications/{app['id']}/documents/{doc['id']}", headers=suzhou)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["x-content-sm3"] == sm3(PDF).hex() and got.headers["content-type"] == "application/pdf"
    assert "attachment" in got.headers["content-disposition"]

    r = http.post(f"/admin/v1/org-applications/{app['id']}/review", headers=suzhou, json={"decision": "reject"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "reason"
    r = http.post(f"/admin/v1/org-applications/{app['id']}/review", headers=suzhou, json={"decision": "approve"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    orgs = http.get("/admin/v1/orgs", headers=suzhou, params={"parent": "320505"}).json()["items"]
    assert code in {o["code"] for o in orgs}
    created = next(o for o in orgs if o["code"] == code)
    assert created["path"] == f"320000.320500.320505.{code}" and created["level"] == "station"


def test_upload_checks(http: httpx.Client) -> None:
    # type from content: an executable named .pdf, a PNG header with garbage, a PDF without end marker
    for content in (b"MZ\x90\x00" + b"\x00" * 100, b"\x89PNG\r\n\x1a\n" + b"junk" * 10, b"%PDF-1.4 no end"):
        r = apply(http, "320505", station_code(), [("a.pdf", content, "application/pdf")])
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "documents[0]", r.text
    big = PDF[:-6] + b"0" * (4 * 1024 * 1024) + b"\n%%EOF\n"
    r = apply(http, "320505", station_code(), [("big.pdf", big, "application/pdf")])
    assert r.status_code == 400 and "MB" in r.json()["detail"]
    r = apply(http, "320505", station_code(), [])
    assert r.status_code == 400
    # a county under a station, a city code outside its parent's region
    r = apply(http, "320505-s01", station_code(), [("a.pdf", PDF, "application/pdf")])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "parent_code"
    r = apply(http, "320500", "320199", [("a.pdf", PDF, "application/pdf")], kind="bureau")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    r = apply(http, "no-such", station_code(), [("a.pdf", PDF, "application/pdf")])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "parent_code"


def test_concurrent_review_one_wins(http: httpx.Client, var_dir: Path, base_url: str) -> None:
    r = apply(http, "320505", station_code(), [("a.pdf", PDF, "application/pdf")])
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    boss = platform_admin(http, var_dir)
    _, _, city = make_admin(http, boss, "320500", ["org_admin"], prefix="race")
    _, _, county = make_admin(http, boss, "320505", ["org_admin"], prefix="race")

    def decide(headers: dict[str, str], decision: str) -> int:
        with httpx.Client(base_url=base_url, timeout=15) as c:
            body = {"decision": decision, "reason": "材料不全", "version": 1}
            return c.post(f"/admin/v1/org-applications/{app_id}/review", headers=headers, json=body).status_code

    with ThreadPoolExecutor(3) as pool:
        statuses = sorted(pool.map(decide, [boss, city, county], ["approve", "reject", "approve"]))
    assert statuses == [200, 409, 409]
    final = http.get(f"/admin/v1/org-applications/{app_id}", headers=boss).json()
    assert final["status"] in ("approved", "rejected") and final["version"] == 2


def test_admin_registration_and_review(http: httpx.Client, var_dir: Path, base_url: str) -> None:
    username = "reg" + secrets.token_hex(3)
    password = secrets.token_urlsafe(12)
    r = http.post(
        "/admin/v1/admin-registrations",
        json={
            "username": username,
            "password": password,
            "display_name": "李四",
            "org_code": "320505",
            "roles": ["org_admin"],
            "phone": "13700001234",
        },
    )
    assert r.status_code == 201, r.text
    reg = r.json()
    assert reg["status"] == "pending" and reg["phone"] == "137****1234"
    r = http.post("/admin/v1/sessions", json={"username": username, "password": password})
    assert r.status_code == 403 and r.json()["type"].endswith("account-inactive")
    r = http.post(
        "/admin/v1/admin-registrations",
        json={
            "username": "x" + username,
            "password": password,
            "display_name": "王五",
            "org_code": "320505",
            "roles": ["platform"],
        },
    )
    assert r.status_code == 400
    boss = platform_admin(http, var_dir)
    _, _, nanjing = make_admin(http, boss, "320100", ["org_admin"], prefix="nj")
    _, _, suzhou = make_admin(http, boss, "320500", ["org_admin"], prefix="sz")
    assert (
        http.post(f"/admin/v1/admins/{reg['id']}/review", headers=nanjing, json={"decision": "approve"}).status_code
        == 404
    )

    def decide(headers: dict[str, str]) -> int:
        with httpx.Client(base_url=base_url, timeout=15) as c:
            return c.post(
                f"/admin/v1/admins/{reg['id']}/review", headers=headers, json={"decision": "approve"}
            ).status_code

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(decide, [boss, suzhou])) == [200, 409]
    h = sign_in(http, username, password)
    assert http.get("/admin/v1/me", headers=h).json()["org_path"] == "320000.320500.320505"
