"""The WeChat mini program: code2Session sign-in, one-time real-name binding, errcodes as problems, the
session_key kept on the server, getPhoneNumber with access-token renewal, small answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from core.resources import Resources
from identity.credentials.bindings import session_key_context
from identity.sessions import ACR_ORDER
from miniapp_api.models import RESPONSE_BUDGET
from tests.harness import Stack
from tests.identity_helpers import capture, enrol, pick_citizen
from tests.mini_helpers import (
    bind_body,
    phone_code,
    wechat_calls,
    wechat_fail,
    wechat_user,
    wx_code,
)


def _logs(var_dir: Path) -> str:
    """Every process's log: the server runs at DEBUG with access logs in tests."""
    return "".join(p.read_text(errors="replace") for p in var_dir.glob("*.log"))


def login(http: httpx.Client, sim_url: str, user: str) -> httpx.Response:
    return http.post("/mini/v1/wechat/sessions", json={"code": wx_code(sim_url, user)["code"]})


async def test_a_wechat_user_binds_once_and_signs_in_thereafter(
    http: httpx.Client, sim_url: str, res: Resources
) -> None:
    u = wechat_user(http, sim_url)
    person = await res.db.fetchval(
        "SELECT person_id FROM identity.external_accounts WHERE provider = 'wechat' AND subject = $1", u.subject
    )
    assert person is not None
    for _ in range(2):  # later uses: the wx.login code alone signs in, no second real-name check
        r = login(http, sim_url, u.key)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "signed_in" and "binding_ticket" not in body
        assert body["name_masked"].startswith(u.citizen.name[0]) and body["name_masked"] != u.citizen.name
        me = {"Authorization": f"Bearer {body['session']['access_token']}"}
        assert http.get("/mini/v1/wechat/subscribe-templates").status_code == 200
        consents = http.post("/mini/v1/wechat/subscriptions", json={"results": {"tplNotice01": "reject"}}, headers=me)
        assert consents.status_code == 200, consents.text
    # Same person each time, created once (by the binding) with the phone WeChat verified.
    assert await res.db.fetchval("SELECT count(*) FROM identity.people WHERE id = $1", person) == 1
    refreshed = http.post("/mini/v1/sessions/refresh", json={"refresh_token": body["session"]["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["access_token"]


async def test_an_app_user_binding_in_wechat_is_the_same_person(
    http: httpx.Client, sim_url: str, res: Resources
) -> None:
    c = pick_citizen(sim_url)
    enrolled: Any = enrol(http, sim_url, c)
    u = wechat_user(http, sim_url, citizen=c)
    bound = await res.db.fetchval("SELECT person_id FROM identity.external_accounts WHERE subject = $1", u.subject)
    app_person = await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", enrolled["wangha"])
    assert bound == app_person


async def test_a_mismatched_face_refuses_binding(http: httpx.Client, sim_url: str, res: Resources) -> None:
    c = pick_citizen(sim_url)
    minted = wx_code(sim_url, "wx-mismatch")
    ticket = http.post("/mini/v1/wechat/sessions", json={"code": minted["code"]}).json()["binding_ticket"]
    body = bind_body(sim_url, ticket, c, same_person=False, phone_code=phone_code(sim_url, minted["openid"], c.phone))
    r = http.post("/mini/v1/bindings", json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == "urn:szt:problem:face-not-same-person"
    assert problem["errors"][0]["field"] == "face_capture"
    assert r.headers["content-type"].startswith("application/problem+json")
    unbound = await res.db.fetchval(
        "SELECT person_id FROM identity.external_accounts WHERE subject = $1", minted["openid"]
    )
    assert unbound is None
    assert login(http, sim_url, "wx-mismatch").json()["status"] == "binding_required"
    assert http.post("/mini/v1/bindings", json={**body, "binding_ticket": "bt_" + "x" * 30}).status_code == 422


@pytest.mark.parametrize(
    ("errcode", "status", "slug", "retry_after"),
    [
        (40029, 422, "wechat-code-invalid", None),
        (45011, 429, "wechat-rate-limited", "60"),
        (40226, 403, "wechat-high-risk-user", None),
        (-1, 503, "wechat-busy", "5"),
    ],
)
def test_wechat_errcodes_map_to_clear_problems(
    http: httpx.Client, sim_url: str, errcode: int, status: int, slug: str, retry_after: str | None
) -> None:
    if errcode == 40029:
        code = "never-issued-by-wechat"
    elif errcode == 40226:  # WeChat's risk control blocks this user's codes
        code = wx_code(sim_url, "wx-risky", risky=True)["code"]
    else:
        wechat_fail(sim_url, "jscode2session", errcode)
        code = wx_code(sim_url, "wx-unlucky")["code"]
    r = http.post("/mini/v1/wechat/sessions", json={"code": code})
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["type"] == f"urn:szt:problem:{slug}"
    assert problem["title_zh"] and str(errcode) in problem["detail"]
    assert r.headers.get("retry-after") == retry_after
    if errcode == 40029:
        assert problem["errors"][0]["field"] == "code"


def test_a_used_code_is_refused(http: httpx.Client, sim_url: str) -> None:
    code = wx_code(sim_url, "wx-twice")["code"]
    assert http.post("/mini/v1/wechat/sessions", json={"code": code}).status_code == 200
    again = http.post("/mini/v1/wechat/sessions", json={"code": code})
    assert again.status_code == 422 and again.json()["type"].endswith("wechat-code-invalid")


async def test_the_session_key_never_leaves_the_server(
    http: httpx.Client, sim_url: str, res: Resources, stack: Stack
) -> None:
    seen: list[str] = []
    u = wechat_user(http, sim_url)
    for _ in range(2):
        r = login(http, sim_url, u.key)
        seen.append(r.text + str(dict(r.headers)))
        key = httpx.get(f"{sim_url}/wechat/_sim/session-key", params={"openid": u.subject}).json()["session_key"]
        assert len(key) == 24
        stored = await res.db.fetchval(
            "SELECT session_key_enc FROM identity.external_accounts WHERE subject = $1", u.subject
        )
        assert key not in stored  # SM4 ciphertext at rest, bound to its column and account
        assert res.fields.decrypt(stored, context=session_key_context("wechat", u.subject)) == key
        assert all(key not in text for text in seen)
        assert key not in _logs(stack.var_dir)


async def test_phone_number_and_access_token_renewal(http: httpx.Client, sim_url: str) -> None:
    u = wechat_user(http, sim_url)
    r = http.post(
        "/mini/v1/wechat/phone-number",
        json={"code": phone_code(sim_url, u.subject, u.citizen.phone)},
        headers=u.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"phone_masked": u.citizen.phone[:3] + "****" + u.citizen.phone[-4:], "matches_account": True}
    # WeChat expires the access token early: 42001, the client renews it once and the call goes through.
    before = wechat_calls(sim_url).get("token", 0)
    assert httpx.post(f"{sim_url}/wechat/_sim/expire-tokens").status_code == 200
    other = http.post(
        "/mini/v1/wechat/phone-number", json={"code": phone_code(sim_url, u.subject, "13900000001")}, headers=u.headers
    )
    assert other.status_code == 200, other.text
    assert other.json()["matches_account"] is False
    assert wechat_calls(sim_url)["token"] == before + 1
    bad = http.post("/mini/v1/wechat/phone-number", json={"code": "not-a-phone-code"}, headers=u.headers)
    assert bad.status_code == 422 and bad.json()["type"].endswith("wechat-code-invalid")
    assert http.post("/mini/v1/wechat/phone-number", json={"code": "x"}).status_code == 401


def test_answers_stay_small(http: httpx.Client, sim_url: str) -> None:
    u = wechat_user(http, sim_url)
    answers = [
        login(http, sim_url, u.key),
        http.get("/mini/v1/wechat/subscribe-templates"),
        http.post("/mini/v1/wechat/subscriptions", json={"results": {"tplCaseStatus01": "accept"}}, headers=u.headers),
        http.get("/mini/v1/alipay/service-entry", params={"limit": 8}),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        assert len(r.content) < RESPONSE_BUDGET
    templates = answers[1].json()["items"]
    assert {t["kind"] for t in templates} == {"case_status", "appointment_reminder", "broadcast"}
    assert set(templates[0]) == {"template_id", "kind", "title"}


def test_a_face_step_up_raises_the_session_to_the_wz_level(http: httpx.Client, sim_url: str) -> None:
    u = wechat_user(http, sim_url)
    other = capture(sim_url, u.citizen.id_number, same_person=False)
    refused = http.post("/mini/v1/sessions/step-up", json={"face_capture": other}, headers=u.headers)
    assert refused.status_code == 422 and refused.json()["type"].endswith("face-not-same-person")
    r = http.post(
        "/mini/v1/sessions/step-up", json={"face_capture": capture(sim_url, u.citizen.id_number)}, headers=u.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["acr"] == "wechat+face"
    assert ACR_ORDER[r.json()["acr"]] >= ACR_ORDER["wz"] > ACR_ORDER["wechat"]
    stepped = {"Authorization": f"Bearer {r.json()['session']['access_token']}"}
    assert (
        http.post(
            "/mini/v1/wechat/subscriptions", json={"results": {"tplNotice01": "reject"}}, headers=stepped
        ).status_code
        == 200
    )
    # The old session ended with the step-up; a stepped-up session does not step up again.
    assert (
        http.post(
            "/mini/v1/wechat/subscriptions", json={"results": {"tplNotice01": "reject"}}, headers=u.headers
        ).status_code
        == 401
    )
    again = http.post(
        "/mini/v1/sessions/step-up", json={"face_capture": capture(sim_url, u.citizen.id_number)}, headers=stepped
    )
    assert again.status_code == 422
