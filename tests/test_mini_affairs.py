"""The same application (驾驶证补证 app-11) completed through the app BFF, the WeChat and the Alipay mini
program reaches the same affairs cases of the one person: one data source."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

import httpx

from core.resources import Resources
from tests.identity_helpers import bearer, capture, enrol, pick_citizen
from tests.mini_helpers import ali_code, bearer_of, bind_body, wechat_user

PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(2048)
PDF = b"%PDF-1.7\n" + secrets.token_bytes(1024)


def fill(http: httpx.Client, prefix: str, headers: dict[str, str], code: str) -> dict[str, str]:
    """Authorise, take the prefill and fill the rest, through one front door (`/bff` or `/mini`)."""
    m = http.get(f"{prefix}/v1/affairs/apps/{code}").json()
    if m["identity_scopes"]:
        r = http.post(
            f"{prefix}/v1/affairs/apps/{code}/authorisation", json={"scopes": m["identity_scopes"]}, headers=headers
        )
        assert r.status_code == 204, r.text
    form = dict(http.get(f"{prefix}/v1/affairs/apps/{code}/prefill", headers=headers).json()["form"])
    for f in m["form"]:
        if f["name"] in form or (not f["required"] and f["type"] == "attachment"):
            continue
        if f["type"] == "attachment":
            data = PDF if "image/png" not in f.get("accept", []) else PNG
            up = http.post(
                f"{prefix}/v1/affairs/attachments",
                content=data,
                headers={**headers, "Content-Type": "application/octet-stream", "X-Filename": "photo.png"},
            )
            assert up.status_code == 201, up.text
            form[f["name"]] = up.json()["id"]
        elif f["type"] == "enum":
            form[f["name"]] = f["options"][0]
        elif f["type"] == "region":
            form[f["name"]] = "320505"
        elif f["type"] == "date":
            form[f["name"]] = (date.today() + timedelta(days=30)).isoformat()
        else:
            form[f["name"]] = "测试内容"
    return form


def submit(http: httpx.Client, prefix: str, headers: dict[str, str], form: dict[str, str]) -> httpx.Response:
    return http.post(
        f"{prefix}/v1/affairs/cases",
        json={"code": "app-11", "form": form},
        headers={**headers, "Idempotency-Key": secrets.token_hex(12)},
    )


def step_up(http: httpx.Client, sim_url: str, headers: dict[str, str], id_number: str) -> dict[str, str]:
    r = http.post("/mini/v1/sessions/step-up", json={"face_capture": capture(sim_url, id_number)}, headers=headers)
    assert r.status_code == 200, r.text
    return bearer_of(r.json())


async def test_app_11_through_the_app_and_both_mini_programs_reaches_the_same_cases(
    http: httpx.Client, sim_url: str, res: Resources
) -> None:
    citizen = pick_citizen(sim_url)
    app: Any = enrol(http, sim_url, citizen)
    app_headers = bearer(app["session"])
    wx = wechat_user(http, sim_url, citizen=citizen)
    minted = ali_code(sim_url, "ali-affairs-" + secrets.token_hex(4))
    ticket = http.post("/mini/v1/alipay/sessions", json={"auth_code": minted["auth_code"]}).json()["binding_ticket"]
    bound = http.post("/mini/v1/bindings", json=bind_body(sim_url, ticket, citizen))  # known person: no phone needed
    assert bound.status_code == 200, bound.text
    ali_headers = bearer_of(bound.json())

    # The platform's login alone is not enough for an application that needs a 网证-level sign-in.
    weak = submit(http, "/mini", wx.headers, fill(http, "/mini", wx.headers, "app-11"))
    assert weak.status_code == 403 and weak.json()["type"].endswith("assurance-too-low"), weak.text
    wx_headers = step_up(http, sim_url, wx.headers, citizen.id_number)
    ali_headers = step_up(http, sim_url, ali_headers, citizen.id_number)

    cases = {}
    for door, prefix, headers in (
        ("app", "/bff", app_headers),
        ("wechat", "/mini", wx_headers),
        ("alipay", "/mini", ali_headers),
    ):
        r = submit(http, prefix, headers, fill(http, prefix, headers, "app-11"))
        assert r.status_code == 201, (door, r.text)
        cases[door] = r.json()
    assert len({c["id"] for c in cases.values()}) == 3
    # One person, one data source: the app sees the mini programs' cases exactly as they were answered there.
    for door, case in cases.items():
        seen = http.get(f"/bff/v1/affairs/cases/{case['id']}", headers=app_headers)
        assert seen.status_code == 200, (door, seen.text)
        assert {k: seen.json()[k] for k in ("case_no", "code", "status")} == {
            k: case[k] for k in ("case_no", "code", "status")
        }
    listed = {i["id"] for i in http.get("/bff/v1/affairs/cases", headers=app_headers).json()["items"]}
    in_wechat = {i["id"] for i in http.get("/mini/v1/affairs/cases", headers=wx_headers).json()["items"]}
    in_alipay = http.get("/mini/v1/affairs/cases", headers=ali_headers)
    assert in_alipay.status_code == 200 and len(in_alipay.content) < 16 * 1024
    assert listed == in_wechat == {i["id"] for i in in_alipay.json()["items"]} >= {c["id"] for c in cases.values()}
    person = await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", app["wangha"])
    owners = await res.db.fetch(
        "SELECT DISTINCT person_id FROM identity.external_accounts WHERE person_id = $1", person
    )
    assert len(owners) == 1
