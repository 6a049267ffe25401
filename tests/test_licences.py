"""My e-licences end to end over real HTTP: list and detail (masked) from identity and the e-licence library simulator,
the 亮证 card image (saved under test-output/, its QR decoded by zxing-cpp), verification by a verifier client,
replay / forgery / expiry refused, scan-to-verify by verifier staff in the app, and the home's expiry reminder."""

from __future__ import annotations

import datetime as dt
import io
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image

from core.resources import Resources
from identity import clients
from identity.keys import issuer_keys
from identity.licences import service as licences
from tests.catalog_helpers import home
from tests.identity_helpers import Citizen, bearer, enrol, pick_citizen

OUT = Path(__file__).resolve().parent.parent / "test-output"


def pick_driver(sim_url: str) -> Citizen:
    """A citizen of the synthetic population who holds a driving licence in the library."""
    while True:
        c = pick_citizen(sim_url)
        items = httpx.post(f"{sim_url}/elicence/v1/licences/query", json={"id_number": c.id_number}).json()["items"]
        if any(i["kind"] == "driving_licence" for i in items):
            return c


@pytest.fixture(scope="module")
def driver(http: httpx.Client, sim_url: str) -> tuple[Citizen, dict[str, str]]:
    c = pick_driver(sim_url)
    session: Any = enrol(http, sim_url, c)["session"]
    return c, bearer(session)


@pytest.fixture(scope="module")
async def verifier(res: Resources) -> tuple[str, str]:
    made = await clients.create(
        res, client_id=f"hotel-{uuid.uuid4().hex[:8]}", name="酒店前台", kind="verifier", entitlements=["name"]
    )
    assert made.client_secret
    return made.client.client_id, made.client_secret


def qr_of(http: httpx.Client, auth: dict[str, str], kind: str, purpose: str = "酒店入住", save: str = "") -> str:
    r = http.get(f"/bff/v1/licences/{kind}/image", params={"format": "png", "purpose": purpose}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["cache-control"] == "no-store"
    if save:
        OUT.mkdir(exist_ok=True)
        (OUT / save).write_bytes(r.content)
    image = Image.open(io.BytesIO(r.content)).convert("RGB")
    # The red diagonal watermark covers the data side of the card (the QR's quiet zone stays white).
    red, green, _ = image.crop((0, 100, 640, 560)).split()
    reddish = sum(1 for r_, g_ in zip(red.tobytes(), green.tobytes(), strict=True) if r_ - g_ > 30)
    assert reddish > 2000
    decoded = zxingcpp.read_barcodes(image)
    assert len(decoded) == 1
    text: str = decoded[0].text
    assert text.startswith("SZL1.")
    return text


async def person_id(res: Resources, http: httpx.Client, auth: dict[str, str]) -> str:
    wangha = http.get("/bff/v1/me", headers=auth).json()["wangha"]
    return str(await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", wangha))


def verify(http: httpx.Client, client: tuple[str, str], token: str) -> httpx.Response:
    return http.post("/identity/v1/licences/verify", json={"token": token}, auth=client)


def test_list_detail_image_verify_replay_forge(
    http: httpx.Client, driver: tuple[Citizen, dict[str, str]], verifier: tuple[str, str]
) -> None:
    citizen, auth = driver
    assert http.get("/bff/v1/licences").status_code == 401
    listed = http.get("/bff/v1/licences", headers=auth)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["library"] == "ok"
    kinds = {i["kind"]: i for i in body["items"]}
    assert {"id_card", "driving_licence"} <= set(kinds)
    assert citizen.id_number not in listed.text and citizen.name not in listed.text  # masked on the list
    assert kinds["id_card"]["number_masked"] == citizen.id_number[:3] + "*" * 11 + citizen.id_number[-4:]
    assert kinds["driving_licence"]["title"] == "机动车驾驶证" and kinds["driving_licence"]["valid_until"]

    detail = http.get("/bff/v1/licences/driving_licence", headers=auth)
    assert detail.status_code == 200, detail.text
    d = detail.json()
    assert d["facts"]["vehicle_class"] in ("C1", "C2", "B2", "A1") and d["image_url"].endswith("format=png")
    assert citizen.id_number not in detail.text
    assert http.get("/bff/v1/licences/passport", headers=auth).status_code in (400, 404)

    token = qr_of(http, auth, "driving_licence", save="licence-driving.png")
    assert citizen.id_number not in token and citizen.name not in token  # the QR carries no personal data

    ok = verify(http, verifier, token)
    assert ok.status_code == 200, ok.text
    v = ok.json()
    assert v["kind"] == "driving_licence" and v["result"] == "pass" and v["purpose"] == "酒店入住"
    assert v["holder"]["name"] == citizen.name  # entitled to the name
    assert "id_number" not in v["holder"] and v["holder"]["number_masked"].endswith(citizen.id_number[-4:])

    replay = verify(http, verifier, token)
    assert replay.status_code == 409 and replay.json()["type"] == "urn:szt:problem:licence-replayed"

    fresh = qr_of(http, auth, "id_card")
    head, sig = fresh[5:].split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    forged = verify(http, verifier, f"SZL1.{head}.{flipped}")
    assert forged.status_code == 422 and forged.json()["type"] == "urn:szt:problem:licence-forged"
    malformed = verify(http, verifier, "SZL1.nonsense")
    assert malformed.status_code == 400 and malformed.json()["type"] == "urn:szt:problem:licence-malformed"
    assert verify(http, (verifier[0], "wrong"), fresh).status_code == 401
    ok_id = verify(http, verifier, fresh)  # the untouched one still verifies
    assert ok_id.status_code == 200 and ok_id.json()["kind"] == "id_card"


async def test_unmasked_disclosure_is_audited_and_expired_refused(
    res: Resources, http: httpx.Client, driver: tuple[Citizen, dict[str, str]], verifier: tuple[str, str]
) -> None:
    _, auth = driver
    token = qr_of(http, auth, "driving_licence", purpose="租车")
    jti = licences.verify_document(token[5:], (await issuer_keys(res)).published)["jti"]
    assert verify(http, verifier, token).status_code == 200
    row = await res.db.fetchrow(
        "SELECT actor, detail FROM core.audit_log WHERE action = 'identity.licence.disclose' AND target = $1",
        f"driving_licence:{jti}",
    )
    assert row is not None and row["actor"] == f"client:{verifier[0]}"

    keys = await issuer_keys(res)
    old = licences.sign_token(keys.private, keys.kid, jti=uuid.uuid4().hex, kind="id_card", exp=int(time.time()) - 60)
    expired = verify(http, verifier, old)
    assert expired.status_code == 410 and expired.json()["type"] == "urn:szt:problem:licence-expired"


async def test_scan_to_verify_by_verifier_staff_only(
    res: Resources, http: httpx.Client, sim_url: str, driver: tuple[Citizen, dict[str, str]], verifier: tuple[str, str]
) -> None:
    holder, holder_auth = driver
    staff: Any = enrol(http, sim_url, pick_citizen(sim_url))
    staff_auth = bearer(staff["session"])

    token = qr_of(http, holder_auth, "driving_licence")
    refused = http.post("/bff/v1/scan", json={"payload": token}, headers=staff_auth)
    assert refused.status_code == 403 and refused.json()["type"] == "urn:szt:problem:not-a-verifier"

    await licences.link_verifier(res, await person_id(res, http, staff_auth), verifier[0], actor="test")
    scanned = http.post("/bff/v1/scan", json={"payload": token}, headers=staff_auth)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["kind"] == "licence" and scanned.json()["licence"]["holder"]["name"] == holder.name
    again = http.post("/bff/v1/scan", json={"payload": token}, headers=staff_auth)
    assert again.status_code == 409 and again.json()["type"] == "urn:szt:problem:licence-replayed"

    code = http.post("/bff/v1/identity-codes", headers=holder_auth, json={"share": ["name", "over_18"]})
    assert code.status_code == 201, code.text
    by_code = http.post("/bff/v1/scan", json={"payload": code.json()["payload"]}, headers=staff_auth)
    assert by_code.status_code == 200, by_code.text
    assert by_code.json()["kind"] == "identity_code" and by_code.json()["voucher"]["attributes"] == {
        "name": holder.name
    }
    # The holder is not verifier staff: scanning is refused for them.
    assert http.post("/bff/v1/scan", json={"payload": token}, headers=holder_auth).status_code == 403


async def test_expiring_document_appears_on_home(
    res: Resources, http: httpx.Client, sim_url: str, driver: tuple[Citizen, dict[str, str]]
) -> None:
    citizen, auth = driver
    soon = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    r = httpx.put(f"{sim_url}/elicence/_sim/licences/{citizen.id_number}/driving_licence", json={"valid_until": soon})
    assert r.status_code == 200, r.text
    listed = {i["kind"]: i for i in http.get("/bff/v1/licences", headers=auth).json()["items"]}
    assert listed["driving_licence"]["state"] == "expiring" and listed["driving_licence"]["days_left"] == 30

    reminders = home(http, auth, city="320500")["personal"]["reminders"]
    assert reminders["sources"]["documents"] == "ok"
    docs = [i for i in reminders["items"] if i["kind"] == "document_expiry"]
    assert docs and docs[0]["due"] == soon and "机动车驾驶证" in docs[0]["title"]
    assert docs[0]["link"] == "/bff/v1/licences/driving_licence"

    far = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    httpx.put(f"{sim_url}/elicence/_sim/licences/{citizen.id_number}/driving_licence", json={"valid_until": far})
    left = await licences.expiring_documents(res, await person_id(res, http, auth))
    assert all(d.link != "/bff/v1/licences/driving_licence" for d in left)
