"""End to end over HTTP: a county bureau applies → its city reviews (two at once: one wins) → approval issues
client credentials that work at the OIDC token endpoint → the app is on the city's home → delisted, it is gone."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.admin_helpers import make_admin, platform_admin
from tests.catalog_helpers import codes_in, home, home_once


def icon_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (240, 240), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def test_onboarding_end_to_end(http: httpx.Client, var_dir: Path, base_url: str) -> None:
    platform = platform_admin(http, var_dir)
    _, _, applicant = make_admin(http, platform, "320505", ["org_admin"], prefix="gx")  # 苏州高新区分局
    _, _, reviewer = make_admin(http, platform, "320500", ["system"], prefix="sz")  # 苏州市公安局
    _, _, nanjing = make_admin(http, platform, "320100", ["system"], prefix="nj")

    # Icon: checked by content, resized, served by URL.
    not_png = http.post(
        "/admin/v1/catalog/icons", content=b"GIF89a" + b"\0" * 64, headers={**applicant, "Content-Type": "image/png"}
    )
    assert not_png.status_code == 400, not_png.text
    assert not_png.json()["errors"][0]["field"] == "icon"
    up = http.post("/admin/v1/catalog/icons", content=icon_png(), headers={**applicant, "Content-Type": "image/png"})
    assert up.status_code == 201, up.text
    icon = up.json()
    assert http.get(icon["urls"]["96"].removeprefix(base_url)).content.startswith(b"\x89PNG")

    application: dict[str, Any] = {
        "name": "高新区电动自行车上牌",
        "category": "交管",
        "kind": "h5",
        "entry_path": f"{base_url}/bff/healthz",
        "icon_digest": icon["digest"],
        "channels": ["ios", "android", "harmony"],
        "regions": ["320500"],
        "scopes": ["openid", "profile"],
        "redirect_uris": ["https://gx.example.invalid/callback"],
    }
    bad = http.post("/admin/v1/catalog/applications", json={**application, "regions": ["320100"]}, headers=applicant)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "regions"
    applied = http.post(
        "/admin/v1/catalog/applications", json=application, headers={**applicant, "Idempotency-Key": "gx-ebike-1"}
    )
    assert applied.status_code == 201, applied.text
    version = applied.json()
    code = version["app_code"]
    retried = http.post(
        "/admin/v1/catalog/applications", json=application, headers={**applicant, "Idempotency-Key": "gx-ebike-1"}
    )
    assert retried.json()["id"] == version["id"]  # a retried application is not a second app

    # The applicant cannot review (no permission); another city does not even see it.
    review_url = f"/admin/v1/catalog/versions/{version['id']}/review"
    assert http.post(review_url, json={"decision": "approve"}, headers=applicant).status_code == 403
    assert http.post(review_url, json={"decision": "approve"}, headers=nanjing).status_code == 404
    queue = http.get("/admin/v1/catalog/versions", params={"status": "pending"}, headers=reviewer).json()
    assert version["id"] in [v["id"] for v in queue["items"]]
    assert code not in codes_in(home(http, city="320500"))  # not listed before approval

    # Two reviewers decide at once: one wins, the other gets a conflict.
    def decide(who: dict[str, str]) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=15) as c:
            return c.post(review_url, json={"decision": "approve"}, headers=who)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(decide, [reviewer, platform]))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    outcome = next(a for a in answers if a.status_code == 200).json()
    assert outcome["version"]["status"] == "approved" and outcome["client_id"] == code
    secret = outcome["client_secret"]
    assert secret

    # The issued credentials work at the token endpoint.
    token = http.post(
        "/identity/token",
        data={"grant_type": "client_credentials", "scope": "affairs"},
        auth=(outcome["client_id"], secret),
    )
    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "Bearer" and token.json()["access_token"]

    # Listed on 苏州's home (its own module), not on 南京's.
    body = home_once(http, "320500", lambda b: code in codes_in(b))
    local = next(m for m in body["modules"] if m["key"] == "city.local")
    assert code in [i["code"] for i in local["items"]]
    assert code not in codes_in(home(http, city="320100"))
    found = http.get("/bff/v1/catalog/search", params={"q": "dian dong zi xing che", "city": "320500"}).json()
    assert code in [i["code"] for i in found["items"]]

    # Delisted by its city: gone from the home screen; the old token endpoint credentials are not shown again.
    delist = http.post(
        f"/admin/v1/catalog/apps/{code}/listing", json={"listed": False, "reason": "整改"}, headers=reviewer
    )
    assert delist.status_code == 200, delist.text
    assert delist.json()["listed"] is False
    home_once(http, "320500", lambda b: code not in codes_in(b))
    app = http.get(f"/admin/v1/catalog/apps/{code}", headers=applicant).json()
    assert app["listed"] is False and "client_secret" not in app
    assert http.get(f"/admin/v1/catalog/apps/{code}", headers=nanjing).status_code == 404
    notes = http.get(f"/admin/v1/catalog/apps/{code}/notifications", headers=applicant).json()["items"]
    assert [n["kind"] for n in notes] == ["review_approved"]
