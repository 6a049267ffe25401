"""The CTID and SMS simulators over real HTTP, and the synthetic population behind CTID."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
import sys
import typing
from collections.abc import Iterator

import httpx
import pytest

from simulators import ctid
from simulators import population as pop
from tests.harness import ROOT

PROBLEM = "urn:szt:problem:"


def mod11_2(first17: str) -> str:
    """ISO 7064 MOD 11-2 computed the recursive way (not with GB 11643's weight table, as the module does)."""
    p = 0
    for ch in first17:
        p = ((p + int(ch)) * 2) % 11
    c = (12 - p) % 11
    return "X" if c == 10 else str(c)


def fingerprint() -> str:
    return hashlib.sha256("|".join(f"{p.id_number}{p.name}{p.phone}" for p in pop.population()).encode()).hexdigest()


@pytest.fixture
def sim(sim_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_url, timeout=15) as client:
        yield client


def field_errors(resp: httpx.Response) -> set[str]:
    assert resp.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in resp.json().get("errors", [])}


# --------------------------------------------------------------------------- population


def test_population_is_deterministic_across_processes() -> None:
    everyone = pop.population()
    assert len(everyone) == pop.SIZE == 2000
    assert pop._generate() == everyone
    code = "from tests.test_sim_ctid_sms import fingerprint; print(fingerprint())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fingerprint()


def test_population_is_realistic_and_id_numbers_are_valid() -> None:
    everyone = pop.population()
    assert len({p.id_number for p in everyone}) == len(everyone)
    assert len({p.phone for p in everyone}) == len(everyone)
    today = dt.date.today()
    ages = [(today - p.birth_date).days // 365 for p in everyone]
    assert sum(a >= 60 for a in ages) >= 5 and sum(a < 18 for a in ages) >= 5
    assert {p.city for p in everyone} == set(pop.CITIES.values()) == set(typing.get_args(ctid.City))
    for p in everyone:
        assert pop.valid_id_number(p.id_number), p
        assert p.id_number[17] == mod11_2(p.id_number[:17]), p
        assert pop.CITIES[p.id_number[:6]] == p.city
        assert p.id_number[6:14] == p.birth_date.strftime("%Y%m%d")
        assert pop.sex_of(p.id_number) == p.sex == ("male" if int(p.id_number[16]) % 2 else "female")
        assert dt.date(1940, 1, 1) <= p.birth_date <= dt.date(2012, 12, 31)
        assert (
            2 <= len(p.name) <= 3
            and p.phone.isdigit()
            and len(p.phone) == 11
            and p.phone[:2] in {"13", "15", "17", "18", "19"}
        )
        assert len(p.photo_digest) == 64
        assert pop.find(p.id_number) is p
    assert any(p.id_number.endswith("X") for p in everyone)
    assert pop.find(next(p.id_number for p in everyone if p.id_number.endswith("X")).lower()) is not None


def test_id_number_helpers() -> None:
    # Published GB 11643 example and independently computed ones.
    assert pop.id_checksum("11010519491231002") == "X"
    for first17 in ("32010219900307123", "32050520120229000", "44030419851111888"):
        assert pop.id_checksum(first17) == mod11_2(first17)
        assert pop.valid_id_number(first17 + mod11_2(first17))
    assert pop.valid_id_number("11010519491231002X")
    assert not pop.valid_id_number("11010519491231002x")  # callers normalise first
    assert not pop.valid_id_number("110105194912310021")  # wrong check character
    assert not pop.valid_id_number("32010219900230001" + mod11_2("32010219900230001"))  # 30 February
    assert not pop.valid_id_number("11010519491231002")
    assert not pop.valid_id_number("01010519491231002X")
    assert pop.birth_date_of("11010519491231002X") == dt.date(1949, 12, 31)
    assert pop.birth_date_of("320102199002300011") is None
    with pytest.raises(ValueError):
        pop.id_checksum("1101051949123100X")


def test_people_pages() -> None:
    first, nxt = pop.people(0, 5)
    assert [p.id_number for p in first] == [p.id_number for p in pop.population()[:5]] and nxt == 5
    last, nxt = pop.people(pop.SIZE - 2, 5)
    assert len(last) == 2 and nxt is None
    suzhou, _ = pop.people(0, 100, "苏州")
    assert suzhou and all(p.city == "苏州" for p in suzhou)
    assert pop.people(0, 10, "北京") == ([], None)


# --------------------------------------------------------------------------- CTID over HTTP


def capture(sim: httpx.Client, id_number: str, **flags: bool) -> str:
    resp = sim.post("/ctid/_sim/captures", json={"id_number": id_number, **flags})
    assert resp.status_code == 201, resp.text
    token: str = resp.json()["capture"]
    return token


def verify(sim: httpx.Client, name: str, id_number: str, token: str, biz_seq: str = "t-1") -> httpx.Response:
    return sim.post(
        "/ctid/v1/verify", json={"biz_seq": biz_seq, "name": name, "id_number": id_number, "capture": token}
    )


def test_people_page_over_http(sim: httpx.Client) -> None:
    resp = sim.get("/ctid/_sim/people", params={"limit": 3})
    assert resp.status_code == 200
    body = resp.json()
    assert body["next_offset"] == 3 and len(body["items"]) == 3
    person = pop.population()[0]
    assert body["items"][0] == {
        "name": person.name,
        "id_number": person.id_number,
        "sex": person.sex,
        "birth_date": person.birth_date.isoformat(),
        "city": person.city,
        "phone": person.phone,
        "photo_digest": person.photo_digest,
    }
    page = sim.get("/ctid/_sim/people", params={"city": "南通", "limit": 100, "offset": 0}).json()
    assert page["items"] and {p["city"] for p in page["items"]} == {"南通"}
    assert sim.get("/ctid/_sim/people", params={"offset": 5000}).json() == {"items": [], "next_offset": None}
    bad = sim.get("/ctid/_sim/people", params={"limit": 101})
    assert bad.status_code == 400 and "limit" in field_errors(bad)
    bad = sim.get("/ctid/_sim/people", params={"city": "北京"})
    assert bad.status_code == 400 and "city" in field_errors(bad)


def test_verify_outcomes(sim: httpx.Client) -> None:
    alice, bob = pop.population()[10], pop.population()[11]

    resp = verify(sim, alice.name, alice.id_number, capture(sim, alice.id_number), "pass-1")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["biz_seq"] == "pass-1" and body["result"] == "pass" and body["result_code"] == "0"
    assert 85 <= body["similarity"] <= 99 and body["message"]

    body = verify(sim, alice.name, alice.id_number, capture(sim, bob.id_number)).json()
    assert (body["result"], body["result_code"]) == ("not_same_person", "1001") and body["similarity"] < 60

    body = verify(sim, alice.name, alice.id_number, capture(sim, alice.id_number, same_person=False)).json()
    assert body["result"] == "not_same_person"

    body = verify(sim, alice.name, alice.id_number, capture(sim, alice.id_number, live=False)).json()
    assert (body["result"], body["result_code"]) == ("not_live", "1002")

    token = capture(sim, alice.id_number)
    body = verify(sim, alice.name + "某", alice.id_number, token).json()
    assert (body["result"], body["result_code"], body["similarity"]) == ("mismatch", "1003", 0.0)
    body = verify(sim, alice.name, bob.id_number, token).json()
    assert body["result"] == "mismatch"
    unknown = "320102199001011" + "23"
    body = verify(sim, alice.name, unknown + mod11_2(unknown), token).json()
    assert body["result"] == "mismatch"
    body = verify(sim, alice.name, "H12345678", token).json()  # an exit-entry permit is never in the register
    assert body["result"] == "mismatch"

    if alice.id_number.endswith("X"):  # lower-case x is read as X
        assert verify(sim, alice.name, alice.id_number.lower(), token).json()["result"] == "pass"

    calls = sim.get("/ctid/_sim/calls", params={"limit": 50}).json()["items"]
    mine = next(c for c in calls if c["biz_seq"] == "pass-1")
    assert mine["result"] == "pass" and mine["id_number"] != alice.id_number and "*" in mine["id_number"]
    assert calls[0]["at"] >= calls[-1]["at"]  # newest first


def test_forged_or_malformed_capture_is_refused(sim: httpx.Client) -> None:
    alice = pop.population()[20]
    genuine = capture(sim, alice.id_number, live=False)
    payload, mac = genuine.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged_payload = base64.urlsafe_b64encode(raw.replace(b'"live":false', b'"live":true')).rstrip(b"=").decode()
    assert forged_payload != payload
    for token in (f"{forged_payload}.{mac}", f"{payload}.{mac[:-2]}AA", "abc.def", "a.b"):
        resp = verify(sim, alice.name, alice.id_number, token)
        assert resp.status_code == 400, (token, resp.text)
        assert resp.json()["type"] == PROBLEM + "ctid-invalid-capture"
        assert field_errors(resp) == {"capture"}
    resp = verify(sim, alice.name, alice.id_number, "no-dot-here")  # fails the documented pattern
    assert resp.status_code == 400 and "capture" in field_errors(resp)


def test_ctid_validation_errors_name_the_field(sim: httpx.Client) -> None:
    alice = pop.population()[0]
    token = capture(sim, alice.id_number)
    cases = {
        "biz_seq": {"biz_seq": "has space"},
        "name": {"name": ""},
        "id_number": {"id_number": "12345"},
    }
    for field, change in cases.items():
        body = {"biz_seq": "v-1", "name": alice.name, "id_number": alice.id_number, "capture": token, **change}
        resp = sim.post("/ctid/v1/verify", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["type"] == PROBLEM + "validation" and field in field_errors(resp)
    resp = sim.post("/ctid/_sim/captures", json={"id_number": alice.id_number, "live": 0})
    assert resp.status_code == 400 and field_errors(resp) == {"live"}
    resp = sim.post("/ctid/_sim/captures", json={"id_number": "320102199001011230"})
    assert resp.status_code == 404 and resp.json()["type"] == PROBLEM + "not-found"


def test_outage_and_recovery(sim: httpx.Client) -> None:
    alice = pop.population()[30]
    token = capture(sim, alice.id_number)
    try:
        assert sim.post("/ctid/_sim/outage", json={"seconds": 60}).json()["seconds_left"] == 60
        resp = verify(sim, alice.name, alice.id_number, token)
        assert resp.status_code == 503
        assert resp.json()["type"] == PROBLEM + "ctid-unavailable" and int(resp.headers["retry-after"]) >= 1
        assert sim.post("/ctid/_sim/outage", json={"seconds": 0}).status_code == 200
        assert verify(sim, alice.name, alice.id_number, token).json()["result"] == "pass"

        state = sim.post("/ctid/_sim/outage", json={"seconds": 30, "slow_ms": 50, "fail": False}).json()
        assert state == {"seconds_left": 30, "slow_ms": 50, "fail": False}
        assert verify(sim, alice.name, alice.id_number, token).json()["result"] == "pass"  # late but answered

        bad = sim.post("/ctid/_sim/outage", json={"seconds": 301})
        assert bad.status_code == 400 and "seconds" in field_errors(bad)
        bad = sim.post("/ctid/_sim/outage", json={"seconds": 1, "slow_ms": 10_001})
        assert bad.status_code == 400 and "slow_ms" in field_errors(bad)
    finally:
        sim.post("/ctid/_sim/outage", json={"seconds": 0})


def test_control_endpoints_that_could_break_others_are_not_documented(sim: httpx.Client) -> None:
    ctid = sim.get("/ctid/schema/openapi.json").json()["paths"]
    assert "/ctid/v1/verify" in ctid and "/ctid/_sim/captures" in ctid
    assert "/ctid/_sim/outage" not in ctid and "/ctid/_sim/people" not in ctid
    sms = sim.get("/sms/schema/openapi.json").json()["paths"]
    assert "/sms/v1/messages" in sms and "/sms/_sim/outbox" in sms and "/sms/_sim/fail" not in sms


# --------------------------------------------------------------------------- SMS over HTTP


def send(sim: httpx.Client, phone: str, **extra: object) -> httpx.Response:
    return sim.post("/sms/v1/messages", json={"phone": phone, "template": "SZT_LOGIN_CODE", **extra})


def test_sms_send_lands_in_outbox(sim: httpx.Client) -> None:
    phone = "13900001111"
    first = send(sim, phone, params={"code": "123456"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["code"] == "OK" and body["phone"] == phone and body["message_id"]
    second = send(sim, phone, params={"code": "654321"}, sign_name="苏证通测试", out_id="ref-1").json()
    items = sim.get("/sms/_sim/outbox", params={"phone": phone}).json()["items"]
    assert [m["message_id"] for m in items[:2]] == [second["message_id"], body["message_id"]]
    newest = items[0]
    assert newest["params"] == {"code": "654321"} and newest["template"] == "SZT_LOGIN_CODE"
    assert newest["sign_name"] == "苏证通测试" and newest["out_id"] == "ref-1" and newest["phone"] == phone
    assert items[1]["sign_name"] == "苏证通" and items[1]["out_id"] is None
    sent_at = dt.datetime.fromisoformat(newest["sent_at"])
    assert sent_at.utcoffset() == dt.timedelta(0)
    assert sim.get("/sms/_sim/outbox", params={"phone": "13900002222"}).json() == {"items": []}

    for _ in range(55):
        send(sim, "13900003333")
    assert len(sim.get("/sms/_sim/outbox", params={"phone": "13900003333"}).json()["items"]) == 50


def test_sms_injected_failures(sim: httpx.Client) -> None:
    phone, other = "15900004444", "15900005555"
    try:
        assert sim.post("/sms/_sim/fail", json={"phone": phone, "count": 1, "status": 429}).status_code == 200
        resp = send(sim, phone)
        assert resp.status_code == 429 and resp.headers["retry-after"] == "1"
        assert resp.json()["type"] == PROBLEM + "sms-rate-limited"
        assert send(sim, phone).status_code == 200

        sim.post("/sms/_sim/fail", json={"phone": phone, "count": 2, "status": 503})
        assert send(sim, other).status_code == 200  # only that phone
        assert [send(sim, phone).status_code for _ in range(3)] == [503, 503, 200]

        sim.post("/sms/_sim/fail", json={"phone": phone, "count": 5, "status": 500})
        sim.post("/sms/_sim/fail", json={"phone": phone, "count": 0})
        assert send(sim, phone).status_code == 200

        bad = sim.post("/sms/_sim/fail", json={"phone": phone, "count": 1, "status": 404})
        assert bad.status_code == 400 and "status" in field_errors(bad)
        failed = {m["message_id"] for m in sim.get("/sms/_sim/outbox", params={"phone": phone}).json()["items"]}
        assert len(failed) == 3  # failed sends are not delivered
    finally:
        sim.post("/sms/_sim/fail", json={"phone": phone, "count": 0})


def test_sms_validation_errors_name_the_field(sim: httpx.Client) -> None:
    cases = [
        ({"phone": "12345678901", "template": "T"}, "phone"),
        ({"phone": "1380000000", "template": "T"}, "phone"),
        ({"phone": "13800000000", "template": "bad-template"}, "template"),
        ({"phone": "13800000000", "template": "T", "params": {f"k{i}": "v" for i in range(11)}}, "params"),
        ({"phone": "13800000000", "template": "T", "params": {"code": "x" * 65}}, "params"),
        ({"phone": "13800000000", "template": "T", "sign_name": ""}, "sign_name"),
        ({"phone": "13800000000", "template": "T", "out_id": "x" * 65}, "out_id"),
    ]
    for body, field in cases:
        resp = sim.post("/sms/v1/messages", json=body)
        assert resp.status_code == 400, (body, resp.text)
        named = {f.split("[")[0] for f in field_errors(resp)}  # a dict value is reported as `params[...]`
        assert resp.json()["type"] == PROBLEM + "validation" and field in named, resp.text
    resp = sim.get("/sms/_sim/outbox", params={"phone": "abc"})
    assert resp.status_code == 400 and "phone" in field_errors(resp)


def test_sms_batch_answers_per_number(sim: httpx.Client) -> None:
    """SendBatchSms-style: one template to many numbers, each with its own parameters and out_id; an injected
    failure fails only its number; a malformed number or an over-long batch refuses the call, naming the field."""
    ok, failing = "13700006666", "13700007777"
    try:
        sim.post("/sms/_sim/fail", json={"phone": failing, "count": 1, "status": 429})
        items = [
            {"phone": ok, "params": {"code": "111111"}, "out_id": "batch-ok"},
            {"phone": failing, "params": {"code": "222222"}, "out_id": "batch-fail"},
        ]
        resp = sim.post("/sms/v1/batch", json={"template": "SZT_PUSH_BROADCAST", "items": items})
        assert resp.status_code == 200, resp.text
        first, second = resp.json()["items"]
        assert first["code"] == "OK" and first["phone"] == ok and first["message_id"] and first["out_id"] == "batch-ok"
        assert second == {
            "phone": failing,
            "code": "sms-rate-limited",
            "status": 429,
            "out_id": "batch-fail",
            "retry_after": 1,
        }
        got = sim.get("/sms/v1/messages", params={"out_id": "batch-ok"}).json()["items"]
        assert [m["message_id"] for m in got] == [first["message_id"]] and got[0]["params"] == {"code": "111111"}
        assert sim.get("/sms/v1/messages", params={"out_id": "batch-fail"}).json() == {"items": []}
        assert sim.get("/sms/_sim/outbox", params={"phone": failing}).json() == {"items": []}

        bad = sim.post("/sms/v1/batch", json={"template": "T", "items": [{"phone": "12345"}]})
        assert bad.status_code == 400 and "phone" in bad.text
        too_many = [{"phone": ok}] * 101
        bad = sim.post("/sms/v1/batch", json={"template": "T", "items": too_many})
        assert bad.status_code == 400 and "items" in field_errors(bad)
    finally:
        sim.post("/sms/_sim/fail", json={"phone": failing, "count": 0})
