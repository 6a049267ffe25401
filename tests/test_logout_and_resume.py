"""RP-initiated logout checks everything before it revokes anything; resuming a suspended 网证 (lost phone) needs a
face check, is audited and told to every device of the holder."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from core.resources import Resources
from push import delivery
from tests.identity_helpers import (
    Citizen,
    bearer,
    capture,
    credential_sign_in,
    device_public,
    enrol,
    pick_citizen,
    sign,
    sms_code,
)
from tests.oidc_helpers import Flow, Portal, get_code, introspect, make_portal, redeem

BYE = "https://portal.example.gov.cn/bye"


@pytest.fixture(scope="module")
def app_auth(http: httpx.Client, sim_url: str) -> dict[str, str]:
    session = enrol(http, sim_url, pick_citizen(sim_url))["session"]
    assert isinstance(session, dict)
    return bearer(session)


@pytest.fixture
async def portal(res: Resources) -> Portal:
    return await make_portal(res, post_logout_redirect_uris=[BYE])


@pytest.mark.parametrize(
    "bad",
    [
        {"post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": BYE + "/x"},
        {"post_logout_redirect_uri": BYE, "client_id": "someone-else"},
        {"post_logout_redirect_uri": BYE, "state": "a\nb"},
    ],
)
def test_refused_logout_leaves_the_tokens_valid(
    http: httpx.Client, portal: Portal, app_auth: dict[str, str], bad: dict[str, str]
) -> None:
    flow = Flow()
    tokens = redeem(http, portal, get_code(http, portal, app_auth, flow), flow).json()
    r = http.get("/identity/logout", params={"id_token_hint": tokens["id_token"], **bad})
    assert r.status_code == 400 and "location" not in r.headers
    assert introspect(http, portal, tokens["access_token"])["active"] is True
    grant = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = http.post("/identity/token", auth=portal.auth, data=grant)
    assert refreshed.status_code == 200, refreshed.text  # the session's token family is alive

    good = http.get("/identity/logout", params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE})
    assert good.status_code == 302 and good.headers["location"] == BYE
    assert introspect(http, portal, refreshed.json()["access_token"]) == {"active": False}


async def drain(res: Resources, rounds: int = 20) -> None:
    await delivery.ensure_groups(res)
    for _ in range(rounds):
        n = 0
        for channel in (delivery.FANOUT, *delivery.PROVIDER_CHANNELS):
            n += await delivery.read_batch(res, channel, "test-consumer", block_ms=None)
        if n == 0:
            return
    raise AssertionError("streams did not drain")


def received(sim_url: str, provider: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{sim_url}/{provider}/_sim/received", params={"token": token}).json()[
        "items"
    ]
    return items


async def test_resume_needs_face_is_audited_and_told_to_every_device(
    res: Resources, http: httpx.Client, sim_url: str
) -> None:
    citizen = pick_citizen(sim_url)
    enrolled: Any = enrol(http, sim_url, citizen)
    serial = enrolled["credential"]["serial"]
    first = bearer(enrolled["session"])
    apns, hms = secrets.token_hex(32), "IQAAAACy0" + secrets.token_urlsafe(48)
    for dev in ({"platform": "apns", "token": apns}, {"platform": "hms", "token": hms}):
        assert http.post("/bff/v1/push/devices", json=dev, headers=first).status_code == 201

    lost = http.post(f"/bff/v1/credentials/{serial}/suspend", headers=first, json={"reason": "lost phone"})
    assert lost.status_code == 200 and lost.json()["status"] == "suspended"

    # Whoever holds the SIM signs in by SMS: not enough to undo the suspension.
    code = sms_code(http, sim_url, citizen.phone, "sign_in")
    by_sms = http.post("/bff/v1/sessions", json={"method": "sms", "phone": citizen.phone, "sms_code": code})
    assert by_sms.status_code == 201 and by_sms.json()["acr"] == "sms"
    sms_auth = bearer(by_sms.json())
    refused = http.post(f"/bff/v1/credentials/{serial}/resume", headers=sms_auth, json={"reason": "found it"})
    assert refused.status_code == 403 and refused.json()["type"].endswith(":step-up-required"), refused.text
    someone_else = capture(sim_url, citizen.id_number, same_person=False)
    refused = http.post(
        f"/bff/v1/credentials/{serial}/resume", headers=sms_auth, json={"reason": "x", "face_capture": someone_else}
    )
    assert refused.status_code in (403, 422), refused.text
    cred = next(c for c in http.get("/bff/v1/credentials", headers=sms_auth).json() if c["serial"] == serial)
    assert cred["status"] == "suspended"

    # A session signed in with face (the holder's other device) resumes it.
    other = Citizen(citizen.name, citizen.id_number, citizen.phone, citizen.birth_date)
    chal = http.post("/bff/v1/challenges").json()
    bound = http.post(
        "/bff/v1/credentials",
        headers=sms_auth,
        json={
            "device": {"public_key": device_public(other.device), "platform": "ios", "name": "iPad"},
            "challenge_id": chal["challenge_id"],
            "signature": sign(other.device, chal["challenge"]),
            "face_capture": capture(sim_url, citizen.id_number),
        },
    )
    assert bound.status_code == 201, bound.text
    with_face = credential_sign_in(
        http, other, bound.json()["serial"], face_capture=capture(sim_url, citizen.id_number)
    )
    assert with_face.status_code == 201 and with_face.json()["acr"] == "wz+face", with_face.text
    back = http.post(
        f"/bff/v1/credentials/{serial}/resume", headers=bearer(with_face.json()), json={"reason": "found it"}
    )
    assert back.status_code == 200 and back.json()["status"] == "active", back.text
    assert credential_sign_in(http, citizen, serial).status_code == 201

    # Or the SMS session with a fresh face check in the request itself.
    assert http.post(f"/bff/v1/credentials/{serial}/suspend", headers=sms_auth, json={}).status_code == 200
    fresh = http.post(
        f"/bff/v1/credentials/{serial}/resume",
        headers=sms_auth,
        json={"face_capture": capture(sim_url, citizen.id_number)},
    )
    assert fresh.status_code == 200 and fresh.json()["status"] == "active", fresh.text

    audited = await res.db.fetch(
        "SELECT detail FROM core.audit_log WHERE action = 'identity.credential.resume' AND target = $1 ORDER BY seq",
        serial,
    )
    details = [json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"] for r in audited]
    assert [(d["face"], d["acr"]) for d in details] == [("session", "wz+face"), ("capture", "sms")]

    await drain(res)
    for provider, token in (("apns", apns), ("hms", hms)):
        got = [json.dumps(m, ensure_ascii=False) for m in received(sim_url, provider, token)]
        assert sum("网证已恢复" in m for m in got) == 2, got
    inbox = http.get("/bff/v1/messages", headers=sms_auth)
    assert inbox.status_code == 200, inbox.text
    assert sum(m["title"] == "网证已恢复" for m in inbox.json()["items"]) == 2
