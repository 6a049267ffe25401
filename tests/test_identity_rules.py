"""Identity rules one by one: PIN modes and lockout, face outcomes, CTID outage, SMS tries and resend limits,
one 网号 per person, refresh-token rotation with reuse detection, sessions per device, pairwise user codes,
and the audit entry for unmasked disclosure."""

from __future__ import annotations

import uuid

import httpx
import pytest

from core.resources import Resources
from identity import clients
from tests.identity_helpers import (
    Citizen,
    bearer,
    capture,
    credential_sign_in,
    device_public,
    enrol,
    pick_citizen,
    sms_code,
)


@pytest.fixture(scope="module")
def enrolled(http: httpx.Client, sim_url: str) -> tuple[Citizen, dict[str, object]]:
    c = pick_citizen(sim_url)
    return c, enrol(http, sim_url, c, pin="52813974")


def _serial(enrolled: tuple[Citizen, dict[str, object]]) -> str:
    cred = enrolled[1]["credential"]
    assert isinstance(cred, dict)
    return str(cred["serial"])


def test_service_modes_and_pin_lockout(
    http: httpx.Client, sim_url: str, enrolled: tuple[Citizen, dict[str, object]]
) -> None:
    c, serial = enrolled[0], _serial(enrolled)
    assert credential_sign_in(http, c, serial).json()["acr"] == "wz"
    assert credential_sign_in(http, c, serial, pin="52813974").json()["acr"] == "wz+pin"
    face = credential_sign_in(http, c, serial, face_capture=capture(sim_url, c.id_number))
    assert face.json()["acr"] == "wz+face"
    both = credential_sign_in(http, c, serial, pin="52813974", face_capture=capture(sim_url, c.id_number))
    assert both.json()["acr"] == "wz+pin+face"
    session = enrolled[1]["session"]
    assert isinstance(session, dict)
    for weak in ("12345678", "11111111", "87654321", "12121212"):
        r = http.put("/bff/v1/pin", headers=bearer(session), json={"pin": weak, "old_pin": "52813974"})
        assert r.status_code == 422 and r.json()["type"] == "urn:szt:problem:pin-weak", weak
    for _ in range(4):
        wrong = credential_sign_in(http, c, serial, pin="00000001")
        assert wrong.status_code == 422 and wrong.json()["type"] == "urn:szt:problem:pin-wrong"
    locked = credential_sign_in(http, c, serial, pin="00000001")
    assert locked.status_code == 422  # the fifth failure locks
    still = credential_sign_in(http, c, serial, pin="52813974")
    assert still.status_code == 403 and still.json()["type"] == "urn:szt:problem:pin-locked"


def test_face_outcomes_and_ctid_outage(http: httpx.Client, sim_url: str) -> None:
    c = pick_citizen(sim_url)
    base = {
        "name": c.name,
        "id_number": c.id_number,
        "phone": c.phone,
        "device": {"public_key": device_public(c.device), "platform": "harmony"},
    }
    code = sms_code(http, sim_url, c.phone, "enrol")
    not_live = http.post(
        "/bff/v1/enrolments", json={**base, "sms_code": code, "face_capture": capture(sim_url, c.id_number, live=False)}
    )
    assert not_live.json()["type"] == "urn:szt:problem:face-not-live"
    other = http.post(
        "/bff/v1/enrolments",
        json={**base, "sms_code": code, "face_capture": capture(sim_url, c.id_number, same_person=False)},
    )
    # A failed face check does not spend the SMS code: the same code serves the next attempt.
    assert other.json()["type"] == "urn:szt:problem:face-not-same-person"
    httpx.post(f"{sim_url}/ctid/_sim/outage", json={"seconds": 30})
    try:
        down = http.post(
            "/bff/v1/enrolments", json={**base, "sms_code": code, "face_capture": capture(sim_url, c.id_number)}
        )
        assert down.status_code == 503 and down.json()["type"] == "urn:szt:problem:ctid-unavailable"
    finally:
        httpx.post(f"{sim_url}/ctid/_sim/outage", json={"seconds": 0})
    # Nothing was created by the failed attempts.
    wrong_number = {**base, "id_number": c.id_number[:-1] + ("0" if c.id_number[-1] != "0" else "1")}
    bad = http.post("/bff/v1/enrolments", json={**wrong_number, "sms_code": "000000", "face_capture": "x.y"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "id_number"


def test_sms_code_tries_and_resend_limit(http: httpx.Client, sim_url: str) -> None:
    c = pick_citizen(sim_url)
    sms_code(http, sim_url, c.phone, "enrol")
    again = http.post("/bff/v1/sms-codes", json={"phone": c.phone, "purpose": "enrol"})
    assert again.status_code == 429 and "retry-after" in again.headers
    body = {
        "name": c.name,
        "id_number": c.id_number,
        "phone": c.phone,
        "face_capture": capture(sim_url, c.id_number),
        "device": {"public_key": device_public(c.device), "platform": "ios"},
    }
    types = [http.post("/bff/v1/enrolments", json={**body, "sms_code": "999999"}).json()["type"] for _ in range(6)]
    assert types[:5] == ["urn:szt:problem:sms-code-wrong"] * 4 + ["urn:szt:problem:sms-code-exhausted"]
    assert types[5] == "urn:szt:problem:sms-code-expired"


def test_one_person_one_wangha(http: httpx.Client, sim_url: str, enrolled: tuple[Citizen, dict[str, object]]) -> None:
    c = enrolled[0]
    again = Citizen(c.name, c.id_number, c.phone, c.birth_date)
    code = "123456"  # refused as a duplicate before the code matters
    r = http.post(
        "/bff/v1/enrolments",
        json={
            "name": c.name,
            "id_number": c.id_number.lower(),
            "phone": c.phone,
            "sms_code": code,
            "face_capture": capture(sim_url, c.id_number),
            "device": {"public_key": device_public(again.device), "platform": "android"},
        },
    )
    assert r.status_code == 409 and r.json()["type"] == "urn:szt:problem:already-enrolled"


def test_refresh_rotation_and_reuse_detection(http: httpx.Client, enrolled: tuple[Citizen, dict[str, object]]) -> None:
    tokens = credential_sign_in(http, enrolled[0], _serial(enrolled)).json()
    first = http.post("/bff/v1/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200 and first.json()["refresh_token"] != tokens["refresh_token"]
    assert http.get("/bff/v1/me", headers=bearer(first.json())).status_code == 200
    reuse = http.post("/bff/v1/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reuse.status_code == 401
    # The reuse ended the whole session: the rotated token and its access token die too.
    assert (
        http.post("/bff/v1/sessions/refresh", json={"refresh_token": first.json()["refresh_token"]}).status_code == 401
    )
    assert http.get("/bff/v1/me", headers=bearer(first.json())).status_code == 401


def test_sessions_listed_and_ended_per_device(http: httpx.Client, enrolled: tuple[Citizen, dict[str, object]]) -> None:
    a = credential_sign_in(http, enrolled[0], _serial(enrolled)).json()
    b = credential_sign_in(http, enrolled[0], _serial(enrolled)).json()
    listed = http.get("/bff/v1/sessions", headers=bearer(a)).json()
    ids = {s["session_id"]: s for s in listed}
    assert ids[a["session_id"]]["current"] is True and b["session_id"] in ids
    assert http.delete(f"/bff/v1/sessions/{b['session_id']}", headers=bearer(a)).status_code == 204
    assert http.get("/bff/v1/me", headers=bearer(b)).status_code == 401
    assert http.delete(f"/bff/v1/sessions/{uuid.uuid4()}", headers=bearer(a)).status_code == 404


async def test_pairwise_user_codes_and_audited_disclosure(
    http: httpx.Client, res: Resources, enrolled: tuple[Citizen, dict[str, object]]
) -> None:
    session = credential_sign_in(http, enrolled[0], _serial(enrolled)).json()
    made = [
        await clients.create(
            res, client_id=f"v-{uuid.uuid4().hex[:8]}", name="核验点", kind="verifier", entitlements=["name", "over_18"]
        )
        for _ in range(2)
    ]
    vouchers = []
    for m in made:
        code = http.post("/bff/v1/identity-codes", headers=bearer(session), json={"share": ["name"]}).json()
        r = http.post(
            "/identity/v1/codes/verify",
            json={"code": code["payload"]},
            auth=(m.client.client_id, m.client_secret or ""),
            params={"signed": "true"},
        )
        assert r.status_code == 200, r.text
        vouchers.append(r.json())
    assert vouchers[0]["user_code"] != vouchers[1]["user_code"]  # two relying parties cannot link the user
    assert vouchers[0]["attributes"] == {"name": enrolled[0].name}
    assert vouchers[0]["signed"].count(".") == 1
    audited = await res.db.fetchval(
        "SELECT count(*) FROM core.audit_log WHERE action = 'identity.code.disclose' AND actor = $1",
        f"client:{made[0].client.client_id}",
    )
    assert audited == 1


async def test_issuer_key_rotation_keeps_old_codes_verifiable(res: Resources) -> None:
    from identity.codes import codec as codes
    from identity.keys import create_key, issuer_keys, retire_key

    before = await issuer_keys(res)
    old_code = codes.issue(before.private)
    new_kid = await create_key(res)
    after = await issuer_keys(res)
    assert after.kid == new_kid and before.kid in after.published  # both published during the overlap
    assert codes.verify(old_code.text, after.published).kid == before.kid
    assert codes.issue(after.private).kid == new_kid
    await retire_key(res, new_kid)  # leave the original key current for the other tests
    assert (await issuer_keys(res)).kid == before.kid
