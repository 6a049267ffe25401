"""End to end over real HTTP: enrol via SMS + face, 网号 and 网证, a second device, an identity code decoded from
its PNG, verified by a verifier, replayed, forged, expired, and refused once the 网证 is revoked."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import msgspec
import pytest
import zxingcpp
from gmssl import sm2
from PIL import Image

from core.resources import Resources
from core.signed import b64u_decode
from identity import clients
from identity.codes import codec as codes
from identity.keys import issuer_keys
from identity.numbers import wangha
from tests.identity_helpers import (
    Citizen,
    bearer,
    capture,
    device_public,
    enrol,
    pick_citizen,
    sign,
    sms_code,
)


def gmssl_verify(token: str, keys: list[dict[str, str]]) -> dict[str, object]:
    """Verify a compact signed document with pure-Python gmssl, given only the published keys."""
    head, sig = token.split(".")
    payload = msgspec.json.decode(b64u_decode(head))
    key = next(k for k in keys if k["kid"] == payload["kid"])
    xy = (b64u_decode(key["x"]) + b64u_decode(key["y"])).hex()
    crypt = sm2.CryptSM2(private_key="", public_key=xy, mode=1)
    crypt.public_key = xy
    assert crypt.verify_with_sm3(b64u_decode(sig).hex(), head.encode())
    return payload


@pytest.fixture(scope="module")
async def verifier(res: Resources) -> tuple[str, str]:
    made = await clients.create(
        res,
        client_id=f"verifier-{uuid.uuid4().hex[:8]}",
        name="地铁站闸机",
        kind="verifier",
        entitlements=["age_band", "over_18", "gender"],
    )
    assert made.client_secret
    return made.client.client_id, made.client_secret


def verify(http: httpx.Client, client: tuple[str, str], code: str) -> httpx.Response:
    return http.post("/identity/v1/codes/verify", json={"code": code}, auth=client)


def test_enrol_sign_in_code_verify_replay_forge_expire_revoke(
    http: httpx.Client, sim_url: str, verifier: tuple[str, str], res_settings_issuer: str
) -> None:
    citizen = pick_citizen(sim_url)
    enrolled = enrol(http, sim_url, citizen)
    wh = str(enrolled["wangha"])
    assert wangha.is_valid(wh) and citizen.id_number not in wh
    cred = enrolled["credential"]
    assert isinstance(cred, dict)
    keys = http.get("/identity/v1/keys").json()["keys"]
    payload = gmssl_verify(cred["document"], keys)
    assert payload["wh"] == wh and payload["iss"] == res_settings_issuer
    assert citizen.name not in cred["document"] and citizen.id_number not in str(payload)

    # A second device: SMS sign-in, then bind it with a device proof and a face check.
    second = Citizen(citizen.name, citizen.id_number, citizen.phone, citizen.birth_date)
    code = sms_code(http, sim_url, citizen.phone, "sign_in")
    sms_session = http.post(
        "/bff/v1/sessions", json={"method": "sms", "phone": citizen.phone, "sms_code": code, "device_name": "iPad"}
    )
    assert sms_session.status_code == 201, sms_session.text
    assert sms_session.json()["acr"] == "sms"
    chal = http.post("/bff/v1/challenges").json()
    bound = http.post(
        "/bff/v1/credentials",
        headers=bearer(sms_session.json()),
        json={
            "device": {"public_key": device_public(second.device), "platform": "ios", "name": "iPad"},
            "challenge_id": chal["challenge_id"],
            "signature": sign(second.device, chal["challenge"]),
            "face_capture": capture(sim_url, citizen.id_number),
        },
    )
    assert bound.status_code == 201, bound.text
    serial2 = bound.json()["serial"]

    # Sign in on the second device with its 网证.
    chal = http.post("/bff/v1/challenges").json()
    session2 = http.post(
        "/bff/v1/sessions",
        json={
            "method": "credential",
            "serial": serial2,
            "challenge_id": chal["challenge_id"],
            "signature": sign(second.device, chal["challenge"]),
        },
    )
    assert session2.status_code == 201, session2.text
    assert session2.json()["acr"] == "wz"
    auth2 = bearer(session2.json())

    # An identity code, decoded from its PNG by an independent decoder.
    issued = http.post("/bff/v1/identity-codes", headers=auth2, json={"share": ["age_band", "over_18", "name"]})
    assert issued.status_code == 201, issued.text
    code_view = issued.json()
    assert code_view["qr_version"] <= 10
    png = http.get(code_view["png_url"], headers=auth2)
    assert png.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(__import__("io").BytesIO(png.content)))
    assert [d.text for d in decoded] == [code_view["payload"]]

    ok = verify(http, verifier, decoded[0].text)
    assert ok.status_code == 200, ok.text
    voucher = ok.json()
    assert voucher["result"] == "pass" and voucher["mode"] == "wz"
    # Entitled and shared: age band and over-18. Shared but not entitled: the name. Entitled, not shared: gender.
    assert set(voucher["attributes"]) == {"age_band", "over_18"}
    assert voucher["attributes"]["over_18"] is True

    replay = verify(http, verifier, decoded[0].text)
    assert replay.status_code == 409 and replay.json()["type"] == "urn:szt:problem:code-replayed"

    fresh = http.post("/bff/v1/identity-codes", headers=auth2, json={}).json()["payload"]
    raw = bytearray(base64.b32decode(fresh[4:] + "=" * (-len(fresh[4:]) % 8)))
    raw[40] ^= 0x01
    forged = "SZT1" + base64.b32encode(bytes(raw)).decode().rstrip("=")
    bad = verify(http, verifier, forged)
    assert bad.status_code == 422 and bad.json()["type"] == "urn:szt:problem:code-forged"
    assert verify(http, verifier, fresh).status_code == 200  # the untouched one still verifies

    garbage = verify(http, verifier, "HELLO")
    assert garbage.status_code == 400 and garbage.json()["type"] == "urn:szt:problem:code-malformed"

    # Revoke the second device's 网证 from the first device: its outstanding code is refused.
    pending = http.post("/bff/v1/identity-codes", headers=auth2, json={}).json()["payload"]
    enrolled_session = enrolled["session"]
    assert isinstance(enrolled_session, dict)
    revoked = http.post(
        f"/bff/v1/credentials/{serial2}/revoke", headers=bearer(enrolled_session), json={"reason": "lost phone"}
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = verify(http, verifier, pending)
    assert refused.status_code == 403 and refused.json()["type"] == "urn:szt:problem:code-credential-revoked"
    assert http.get("/bff/v1/me", headers=auth2).status_code == 401  # the device's sessions ended too
    status = http.get("/identity/v1/credential-status", params={"limit": 1000}).json()["items"]
    assert {"serial": serial2, "status": "revoked"}.items() <= next(s for s in status if s["serial"] == serial2).items()


async def test_expired_code_is_refused(res: Resources, http: httpx.Client, verifier: tuple[str, str]) -> None:
    keys = await issuer_keys(res)
    old = codes.issue(keys.private, ttl_seconds=60, now=time.time() - 600)
    r = verify(http, verifier, old.text)
    assert r.status_code == 410 and r.json()["type"] == "urn:szt:problem:code-expired"


def test_verification_needs_client_credentials(http: httpx.Client, verifier: tuple[str, str]) -> None:
    r = verify(http, (verifier[0], "wrong-secret"), "SZT1AAAA")
    assert r.status_code == 401 and r.json()["type"] == "urn:szt:problem:invalid-client"
    assert http.post("/identity/v1/codes/verify", json={"code": "SZT1AAAA"}).status_code == 401
