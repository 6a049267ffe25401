"""Helpers for identity tests: a citizen from the CTID simulator's population, a device key, SMS codes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import httpx

from core.crypto import SM2PrivateKey, der_to_raw
from core.signed import b64u

_offsets = itertools.count(100)


@dataclass
class Citizen:
    name: str
    id_number: str
    phone: str
    birth_date: str
    device: SM2PrivateKey = field(default_factory=SM2PrivateKey.generate)


def pick_citizen(sim_url: str, *, adult: bool = True) -> Citizen:
    while True:
        offset = next(_offsets)
        page = httpx.get(f"{sim_url}/ctid/_sim/people", params={"offset": offset, "limit": 1}).json()
        p = page["items"][0]
        if not adult or p["birth_date"] <= "2006-01-01":
            return Citizen(p["name"], p["id_number"], p["phone"], p["birth_date"])


def device_public(key: SM2PrivateKey) -> str:
    return b64u(key.public_key().to_uncompressed())


def sign(key: SM2PrivateKey, text: str) -> str:
    return b64u(der_to_raw(key.sign(text.encode())))


def capture(sim_url: str, id_number: str, *, live: bool = True, same_person: bool = True) -> str:
    r = httpx.post(
        f"{sim_url}/ctid/_sim/captures", json={"id_number": id_number, "live": live, "same_person": same_person}
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["capture"]
    return token


def sms_code(http: httpx.Client, sim_url: str, phone: str, purpose: str) -> str:
    r = http.post("/bff/v1/sms-codes", json={"phone": phone, "purpose": purpose})
    assert r.status_code == 202, r.text
    outbox = httpx.get(f"{sim_url}/sms/_sim/outbox", params={"phone": phone}).json()["items"]
    code: str = outbox[0]["params"]["code"]
    return code


def enrol(http: httpx.Client, sim_url: str, c: Citizen, *, pin: str | None = None) -> dict[str, object]:
    code = sms_code(http, sim_url, c.phone, "enrol")
    body = {
        "name": c.name,
        "id_number": c.id_number,
        "phone": c.phone,
        "sms_code": code,
        "face_capture": capture(sim_url, c.id_number),
        "device": {"public_key": device_public(c.device), "platform": "android", "name": "Mate 60"},
    }
    if pin:
        body["pin"] = pin
    r = http.post("/bff/v1/enrolments", json=body)
    assert r.status_code == 201, r.text
    enrolled: dict[str, object] = r.json()
    return enrolled


def bearer(tokens: dict[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def credential_sign_in(http: httpx.Client, c: Citizen, serial: str, **factors: str) -> httpx.Response:
    """Sign in with the device-bound 网证: sign a fresh challenge, add PIN or face capture as given."""
    chal = http.post("/bff/v1/challenges").json()
    return http.post(
        "/bff/v1/sessions",
        json={
            "method": "credential",
            "serial": serial,
            "challenge_id": chal["challenge_id"],
            "signature": sign(c.device, chal["challenge"]),
            **factors,
        },
    )
