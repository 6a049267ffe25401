"""The 49 applications end to end through the app's endpoints (/bff) with the simulated business systems, the
Ministry platform and the payment channels over real HTTP; then the engine's rules one by one."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from affairs import bookings, service, signing
from affairs.manifests import all_manifests
from core.resources import Resources
from core.settings import load_settings
from identity.numbers import uscc_check
from simulators.biz import vehicles
from tests.harness import inside_one_window
from tests.identity_helpers import Citizen, bearer, enrol, pick_citizen, sms_code

PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(2048)
PDF = b"%PDF-1.7\n" + secrets.token_bytes(1024)
CODES = sorted(all_manifests())


class Person:
    def __init__(self, http: httpx.Client, sim_url: str, citizen: Citizen) -> None:
        body = enrol(http, sim_url, citizen)
        self.citizen = citizen
        self.wangha = str(body["wangha"])
        session = body["session"]
        assert isinstance(session, dict)
        self.headers = bearer(session)


@pytest.fixture(scope="module")
def me(http: httpx.Client, sim_url: str) -> Person:
    return Person(http, sim_url, pick_citizen(sim_url))


@pytest.fixture(scope="module")
def enterprise(http: httpx.Client, me: Person) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "91" + "320505" + "".join(secrets.choice(alphabet) for _ in range(9))
    uscc = body + uscc_check(body)
    r = http.post(
        "/bff/v1/enterprises",
        json={
            "uscc": uscc,
            "name": "苏州高新区测试旅馆有限公司",
            "representative_name": me.citizen.name,
            "representative_id_number": me.citizen.id_number,
        },
        headers=me.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def problem(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return str(r.json()["type"]).rsplit(":", 1)[-1]


def upload(http: httpx.Client, me: Person, data: bytes = PNG) -> str:
    r = http.post(
        "/bff/v1/affairs/attachments",
        content=data,
        headers={**me.headers, "Content-Type": "application/octet-stream", "X-Filename": "photo.png"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def fill(http: httpx.Client, me: Person, code: str, enterprise_id: str | None = None) -> dict[str, str]:
    """Authorise, take the prefill, and fill the rest as a person would."""
    m = http.get(f"/bff/v1/affairs/apps/{code}").json()
    if m["identity_scopes"]:
        r = http.post(
            f"/bff/v1/affairs/apps/{code}/authorisation", json={"scopes": m["identity_scopes"]}, headers=me.headers
        )
        assert r.status_code == 204, r.text
    params = {"enterprise_id": enterprise_id} if enterprise_id else {}
    pre = http.get(f"/bff/v1/affairs/apps/{code}/prefill", params=params, headers=me.headers).json()
    form = dict(pre["form"])
    for f in m["form"]:
        if f["name"] in form or (not f["required"] and f["type"] == "attachment"):
            continue
        t = f["type"]
        if t == "attachment":
            form[f["name"]] = upload(http, me, PDF if "image/png" not in f.get("accept", []) else PNG)
        elif t == "enum":
            form[f["name"]] = f["options"][0]
        elif t == "region":
            form[f["name"]] = "320505"
        elif t == "date":
            form[f["name"]] = (date.today() + timedelta(days=30)).isoformat()
        elif t == "text":
            form[f["name"]] = "苏E12345" if f["name"] == "plate" else "测试内容"
    return form


def submit(http: httpx.Client, me: Person, code: str, form: dict[str, str], **extra: Any) -> httpx.Response:
    return http.post(
        "/bff/v1/affairs/cases",
        json={"code": code, "form": form, **extra},
        headers={**me.headers, "Idempotency-Key": secrets.token_hex(12)},
    )


def ref_of(sim_url: str, case_no: str) -> str:
    """The business system's reference of a case; it gets the case just after the submission is answered."""
    for _ in range(100):
        r = httpx.get(f"{sim_url}/biz/_sim/cases", params={"case_no": case_no})
        if r.status_code != 404:
            break
        time.sleep(0.05)
    assert r.status_code == 200, r.text
    return str(r.json()["ref"])


def command(sim_url: str, ref: str, status: str, **extra: Any) -> dict[str, Any]:
    r = httpx.post(f"{sim_url}/biz/_sim/cases/{ref}/status", json={"status": status, **extra})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def signed(method: str, path: str, system: str, body: bytes = b"") -> dict[str, str]:
    key = signing.system_key(load_settings().var_path, system)
    return {**signing.sign_headers(key, system, method, path, body), "Content-Type": "application/json"}


# ---------------------------------------------------------------- one driver per kind


def drive_application(http: httpx.Client, sim_url: str, me: Person, code: str, enterprise: str) -> None:
    legal = all_manifests()[code]["subject"] == "legal"
    form = fill(http, me, code, enterprise if legal else None)
    r = submit(http, me, code, form, **({"enterprise_id": enterprise} if legal else {}))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "submitted" and case["case_no"].startswith("320500")
    ref = ref_of(sim_url, case["case_no"])
    for status in ("pre_review", "accepted", "handling", "completed"):
        assert command(sim_url, ref, status)["status_code"] == 200
    got = http.get(f"/bff/v1/affairs/cases/{case['id']}", headers=me.headers).json()
    assert got["status"] == "completed"
    assert [e["status"] for e in got["events"]] == ["submitted", "pre_review", "accepted", "handling", "completed"]
    stamps = [e["at"] for e in got["events"]]
    assert stamps == sorted(stamps)
    told = http.get("/bff/v1/affairs/notifications", params={"limit": 10}, headers=me.headers).json()["items"]
    assert told[0]["params"] == {"case_no": case["case_no"], "status": "已办结"}
    inbox = http.get("/bff/v1/messages", params={"limit": 10}, headers=me.headers).json()["items"]
    assert any(m["template"] == "case_status" and case["case_no"] in m["body"] and "已办结" in m["body"] for m in inbox)


def drive_appointment(http: httpx.Client, sim_url: str, me: Person, code: str) -> None:
    offices = http.get(f"/bff/v1/affairs/apps/{code}/offices", params={"region": "320505"}).json()["items"]
    assert offices and all(o["region_code"].startswith("3205") for o in offices)
    slots = http.get(
        f"/bff/v1/affairs/apps/{code}/slots", params={"office_id": offices[0]["id"]}, headers=me.headers
    ).json()["items"]
    slot = slots[len(slots) // 2]
    form = {"name": me.citizen.name, "phone": me.citizen.phone}
    if code == "app-44":
        form |= {"law_firm": "江苏某律师事务所", "detainee": "王某", "lawyer_licence": "13200000000000001"}
        r = http.post(
            "/bff/v1/affairs/bookings", json={"code": code, "slot_id": slot["id"], "form": form}, headers=me.headers
        )
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "form.lawyer_licence", r.text
        form["lawyer_licence"] = httpx.get(f"{sim_url}/biz/_sim/lawyers").json()["licence"]
    if code == "app-45":
        form |= {"detainee": "王某", "kinship": "父母", "declaration": "本人承诺属实"}
    r = http.post(
        "/bff/v1/affairs/bookings", json={"code": code, "slot_id": slot["id"], "form": form}, headers=me.headers
    )
    assert r.status_code == 201, r.text
    booking = r.json()
    again = http.get(f"/bff/v1/affairs/apps/{code}/slots", params={"office_id": offices[0]["id"]}, headers=me.headers)
    assert next(s for s in again.json()["items"] if s["id"] == slot["id"])["left"] == slot["left"] - 1
    mine = http.get("/bff/v1/affairs/bookings", headers=me.headers).json()["items"]
    assert booking["id"] in [b["id"] for b in mine]


QUERY_PARAMS: dict[str, list[dict[str, str]]] = {
    "app-01": [{"awardee": "张建国"}],
    "app-42": [{"awardee": "江苏金盾保安服务有限公司"}],
    "app-43": [{"awardee": "徐州市某再生资源回收站"}],
    "app-06": [{"type": "progress"}, {"type": "document"}, {"type": "offices", "region": "320500"}],
    "app-24": [{}],
    "app-49": [{"name": "", "region": "320500"}],
}


def drive_query(http: httpx.Client, sim_url: str, me: Person, code: str) -> None:
    for params in QUERY_PARAMS[code]:
        if code == "app-49":
            params = {"name": me.citizen.name, "region": me.citizen.id_number[:4] + "00"}
        r = http.post(f"/bff/v1/affairs/queries/{code}", json={"params": params}, headers=me.headers)
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        if code in ("app-01", "app-42", "app-43"):
            assert result["items"][0]["awardee"] == params["awardee"]
        elif code == "app-49":
            assert result["count"] >= 1 and set(result) == {"name", "region", "count"}  # a count, never a person
            assert me.citizen.id_number not in r.text and me.citizen.phone not in r.text
        elif code == "app-24":
            assert result["stage"] in ("已受理", "制证中", "待领取", "已领取")
        elif params.get("type") == "document":
            assert {d["document"] for d in result["items"]} == {"普通护照", "往来港澳通行证", "往来台湾通行证"}
        elif params.get("type") == "offices":
            assert result["items"] and all("出入境" in o["name"] for o in result["items"])
        else:
            assert "items" in result


def drive_payment(http: httpx.Client, sim_url: str, me: Person, code: str) -> None:
    for channel in ("wechat", "alipay"):
        r = http.post(
            "/bff/v1/affairs/orders",
            json={"item": "普通护照", "channel": channel},
            headers={**me.headers, "Idempotency-Key": secrets.token_hex(8)},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["amount_fen"] == 12000 and order["status"] == "created" and order["pay_params"]
        paid = httpx.post(f"{sim_url}/pay/_sim/pay", json={"out_trade_no": order["out_trade_no"]}).json()
        assert paid["notified"] in (200, 204)
        got = http.get(f"/bff/v1/affairs/orders/{order['id']}", headers=me.headers).json()
        assert got["status"] == "paid"
        r = http.post(f"/bff/v1/affairs/orders/{order['id']}/refund", json={}, headers=me.headers)
        assert r.status_code == 200 and r.json()["status"] == "refunded" and r.json()["refunded_fen"] == 12000, r.text


def drive_city_link(http: httpx.Client, sim_url: str, me: Person, code: str) -> None:
    a = http.get(f"/bff/v1/affairs/city-links/{code}", params={"region": "320505"}).json()
    b = http.get(f"/bff/v1/affairs/city-links/{code}", params={"region": "320102"}).json()
    assert a["city_code"] == "320500" and b["city_code"] == "320100" and a["url"] != b["url"]
    path = f"/affairs/v1/city-links/{code}/320500"
    body = json.dumps({"url": "https://sz.example/new", "title": "苏州新入口"}).encode()
    r = http.put(path, content=body, headers=signed("PUT", path, "cityops", body))
    assert r.status_code == 200, r.text
    assert (
        http.get(f"/bff/v1/affairs/city-links/{code}", params={"region": "320505"}).json()["url"]
        == "https://sz.example/new"
    )


def drive_enterprise(http: httpx.Client, sim_url: str, me: Person, code: str, enterprise: str) -> None:
    at = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    r = http.post(
        "/bff/v1/affairs/enterprise-requests",
        json={
            "enterprise_id": enterprise,
            "preferred_at": at,
            "form": {"service": "上门指导", "detail": "消防与治安检查"},
        },
        headers=me.headers,
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    for status in ("scheduled", "visited"):
        path = f"/affairs/v1/enterprise-requests/{rid}/progress"
        body = json.dumps({"status": status, "note": "已安排民警"}).encode()
        assert http.post(path, content=body, headers=signed("POST", path, "zhian", body)).status_code == 201
    listed = http.get("/bff/v1/affairs/enterprise-requests", params={"enterprise_id": enterprise}, headers=me.headers)
    item = next(i for i in listed.json()["items"] if i["id"] == rid)
    assert item["status"] == "visited" and [p["status"] for p in item["progress"]] == [
        "submitted",
        "scheduled",
        "visited",
    ]
    r = http.post(f"/bff/v1/affairs/enterprise-requests/{rid}/rating", json={"level": 5}, headers=me.headers)
    assert r.status_code == 201, r.text


def drive_map(http: httpx.Client, sim_url: str, me: Person, code: str) -> None:
    r = http.get("/bff/v1/affairs/offices/nearby", params={"lat": 31.2990, "lon": 120.5853, "radius_m": 20000})
    items = r.json()["items"]
    assert items and [o["distance_m"] for o in items] == sorted(o["distance_m"] for o in items)
    assert all(o["distance_m"] <= 20000 and o["hours"] and o["services"] for o in items)
    only = http.get(
        "/bff/v1/affairs/offices/nearby", params={"lat": 31.299, "lon": 120.5853, "radius_m": 20000, "kind": "station"}
    )
    assert {o["kind"] for o in only.json()["items"]} == {"station"}


def drive_move_car(http: httpx.Client, sim_url: str, me: Person, code: str) -> None:
    plate, owner = next((p, o) for p, o in vehicles().items() if o.id_number != me.citizen.id_number)
    r = http.post(
        "/bff/v1/affairs/move-car", json={"plate": plate, "location": "星湖街328号地下车库B2"}, headers=me.headers
    )
    assert r.status_code == 201, r.text
    report = r.json()
    assert owner.phone not in r.text and report["status"] == "notified" and report["relay_number"].startswith("95110-")
    sms = httpx.get(f"{sim_url}/sms/_sim/outbox", params={"phone": owner.phone}).json()["items"][0]
    assert sms["template"] == "move_car" and sms["params"]["relay"] == report["relay_number"]
    assert me.citizen.phone not in json.dumps(sms, ensure_ascii=False)
    r = http.post("/bff/v1/affairs/move-car", json={"plate": plate, "location": "again"}, headers=me.headers)
    assert r.status_code == 429 and problem(r) == "plate-recently-reported"


@pytest.mark.parametrize("code", CODES)
def test_each_application_end_to_end(http: httpx.Client, sim_url: str, me: Person, enterprise: str, code: str) -> None:
    kind = all_manifests()[code]["kind"]
    if kind == "application":
        drive_application(http, sim_url, me, code, enterprise)
    elif kind == "appointment":
        drive_appointment(http, sim_url, me, code)
    elif kind == "query":
        drive_query(http, sim_url, me, code)
    elif kind == "payment":
        drive_payment(http, sim_url, me, code)
    elif kind == "city_link":
        drive_city_link(http, sim_url, me, code)
    elif kind == "enterprise":
        drive_enterprise(http, sim_url, me, code, enterprise)
    elif kind == "map":
        drive_map(http, sim_url, me, code)
    elif kind == "move_car":
        drive_move_car(http, sim_url, me, code)
    else:  # pragma: no cover
        raise AssertionError(kind)


def test_the_49_and_their_kinds(http: httpx.Client) -> None:
    codes: list[str] = []
    cursor = None
    while True:
        page = http.get("/bff/v1/affairs/apps", params={"limit": 20, **({"cursor": cursor} if cursor else {})}).json()
        codes += [i["code"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert codes == [f"app-{n:02d}" for n in range(1, 50)]
    kinds = [all_manifests()[c]["kind"] for c in codes]
    assert kinds.count("application") == 32
    m = http.get("/bff/v1/affairs/apps/app-11").json()
    assert {f["name"] for f in m["form"]} >= {"licence", "action", "reason", "photo", "pickup"}
    assert {x["field"]: x["certificate_free"] for x in m["materials"]}["licence"] is True
    assert m["fees"] == [{"item": "驾驶证工本费", "amount_fen": 1000}] and m["binding"]["system"] == "jiaoguan"


# ---------------------------------------------------------------- declaration rules


def test_validation_names_every_bad_field(http: httpx.Client, me: Person) -> None:
    form = fill(http, me, "app-11")
    bad = {**form, "phone": "12345", "licence": "driving:" + "0" * 24, "action": "换新", "region_code": "110101"}
    r = submit(http, me, "app-11", bad)
    assert r.status_code == 400, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"form.phone", "form.licence", "form.action", "form.region_code"}
    missing = {k: v for k, v in form.items() if k != "photo"}
    r = submit(http, me, "app-11", {**missing, "extra": "x"})
    assert {e["field"] for e in r.json()["errors"]} == {"form.photo", "form.extra"}
    r = submit(http, me, "app-11", {**form, "id_number": "110105194912310020"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "form.id_number"


def test_attachments_sniffed_capped_and_digested(http: httpx.Client, me: Person, res_settings_issuer: str) -> None:
    from core.crypto import sm3

    h = {**me.headers, "Content-Type": "application/octet-stream"}
    r = http.post("/bff/v1/affairs/attachments", content=b"GIF89a" + b"x" * 100, headers=h)
    assert r.status_code == 415 and problem(r) == "unsupported-file-type"
    r = http.post("/bff/v1/affairs/attachments", content=b"%PDF-" + b"x" * (service.MAX_ATTACHMENT), headers=h)
    assert r.status_code == 413
    r = http.post("/bff/v1/affairs/attachments", content=PDF, headers=h)
    assert r.status_code == 201 and r.json()["mime"] == "application/pdf" and r.json()["sm3"] == sm3(PDF).hex()
    stored = (
        load_settings().var_path
        / "affairs"
        / "attachments"
        / uuid.UUID(r.json()["id"]).hex[:2]
        / uuid.UUID(r.json()["id"]).hex
    )
    assert stored.read_bytes() == PDF
    # A PDF where the form wants a photo is refused by the accepted types of that field.
    form = fill(http, me, "app-11")
    r = submit(http, me, "app-11", {**form, "photo": r.json()["id"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "form.photo"


def test_draft_resumed_on_another_device(http: httpx.Client, sim_url: str, me: Person) -> None:
    r = http.put(
        "/bff/v1/affairs/drafts/app-17", json={"form": {"move_to": "320505", "reason": "购房"}}, headers=me.headers
    )
    assert r.status_code == 200, r.text
    rev = r.json()["revision"]
    # Another device: an SMS sign-in gives another session of the same person.
    code = sms_code(http, sim_url, me.citizen.phone, "sign_in")
    s = http.post(
        "/bff/v1/sessions", json={"method": "sms", "phone": me.citizen.phone, "sms_code": code, "device_name": "iPad"}
    )
    assert s.status_code in (200, 201), s.text
    other = bearer(s.json())
    assert other != me.headers
    got = http.get("/bff/v1/affairs/drafts/app-17", headers=other).json()
    assert got["form"] == {"move_to": "320505", "reason": "购房"} and got["revision"] == rev
    r = http.put("/bff/v1/affairs/drafts/app-17", json={"form": {"move_to": "320102"}, "revision": rev}, headers=other)
    assert r.status_code == 200
    stale = http.put(
        "/bff/v1/affairs/drafts/app-17", json={"form": {"move_to": "320205"}, "revision": rev}, headers=me.headers
    )
    assert stale.status_code == 409 and problem(stale) == "draft-changed"
    # The SMS session is below the assurance an application needs.
    form = fill(http, me, "app-17")
    r = submit(http, me, "app-17", form)
    assert r.status_code == 201
    low = http.post("/bff/v1/affairs/cases", json={"code": "app-17", "form": form}, headers=other)
    assert low.status_code == 403 and problem(low) == "assurance-too-low"
    assert http.get("/bff/v1/affairs/drafts/app-17", headers=me.headers).status_code == 404  # submitted: gone


async def test_duplicate_submission_same_key_one_case(http: httpx.Client, me: Person, res: Resources) -> None:
    form = fill(http, me, "app-18")
    key = secrets.token_hex(16)
    h = {**me.headers, "Idempotency-Key": key}
    first = http.post("/bff/v1/affairs/cases", json={"code": "app-18", "form": form}, headers=h)
    second = http.post("/bff/v1/affairs/cases", json={"code": "app-18", "form": form}, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"] and first.json()["case_no"] == second.json()["case_no"]
    # The same key even from a fresh access token (the middleware's cache scope) still finds the one case.
    person = await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", me.wangha)
    again = await service.submit(
        res, str(person), "wz+face", service.msgspec.convert({"code": "app-18", "form": form}, service.CaseIn), key
    )
    assert str(again.id) == first.json()["id"]
    n = await res.db.fetchval(
        "SELECT count(*) FROM affairs.cases WHERE person_id = $1 AND idempotency_key = $2", person, key
    )
    assert n == 1


async def test_crash_after_commit_loses_nothing(http: httpx.Client, sim_url: str, me: Person, res: Resources) -> None:
    """The case is answered once committed; if the process dies before handing it over, redelivery does it."""
    form = fill(http, me, "app-18")
    person = await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", me.wangha)
    req = service.msgspec.convert({"code": "app-18", "form": form}, service.CaseIn)
    case = await service.submit(res, str(person), "wz+face", req, secrets.token_hex(16))
    service._delivering[case.id].cancel()  # the "crash": the hand-over never starts
    await asyncio.sleep(0)
    assert httpx.get(f"{sim_url}/biz/_sim/cases", params={"case_no": case.case_no}).status_code == 404
    assert await res.db.fetchval("SELECT external_ref FROM affairs.cases WHERE id = $1", case.id) is None
    await res.db.execute(
        "UPDATE affairs.cases SET created_at = created_at - interval '1 minute' WHERE id = $1", case.id
    )
    assert await service.redeliver(res) >= 1
    ref = ref_of(sim_url, case.case_no)
    assert await res.db.fetchval("SELECT external_ref FROM affairs.cases WHERE id = $1", case.id) == ref


async def test_bad_callbacks_refused_logged_case_unchanged(
    http: httpx.Client, sim_url: str, me: Person, res: Resources
) -> None:
    r = submit(http, me, "app-20", fill(http, me, "app-20"))
    case = r.json()
    ref = ref_of(sim_url, case["case_no"])
    assert command(sim_url, ref, "pre_review")["status_code"] == 200
    before = await res.db.fetchval("SELECT count(*) FROM affairs.refused_callbacks")
    for mode in ("bad-signature", "unsigned", "stale", "replay"):
        out = httpx.post(
            f"{sim_url}/biz/_sim/callbacks/forge", json={"case_no": case["case_no"], "status": "accepted", "mode": mode}
        ).json()
        assert out["status_code"] == 401, (mode, out)
    reasons = await res.db.fetch("SELECT reason FROM affairs.refused_callbacks ORDER BY id DESC LIMIT 4")
    assert sorted(r["reason"] for r in reasons) == ["bad-signature", "replayed", "stale-timestamp", "unsigned"]
    assert await res.db.fetchval("SELECT count(*) FROM affairs.refused_callbacks") == before + 4
    got = http.get(f"/bff/v1/affairs/cases/{case['id']}", headers=me.headers).json()
    assert got["status"] == "pre_review" and len(got["events"]) == 2
    # A callback signed by another system's key for this case is refused too.
    path = "/affairs/v1/callbacks/zhian"
    body = json.dumps({"ref": ref, "case_no": case["case_no"], "status": "accepted"}).encode()
    r = http.post(path, content=body, headers=signed("POST", path, "crj", body))
    assert r.status_code == 401
    # And a skipped state is refused as a transition, leaving the case as it was.
    out = command(sim_url, ref, "completed")
    assert out["status_code"] == 409 and "bad-transition" in out["body"]


async def test_supplement_withdraw_rating_and_rectification(
    http: httpx.Client, sim_url: str, me: Person, res: Resources
) -> None:
    form = fill(http, me, "app-11")
    mailing = {
        "recipient": me.citizen.name,
        "phone": me.citizen.phone,
        "region_code": "320505",
        "address": "苏州市高新区竹园路209号",
    }
    case = submit(http, me, "app-11", form, mailing=mailing).json()
    assert case["mailing"]["address"] != mailing["address"] and case["mailing"]["region_code"] == "320505"
    ref = ref_of(sim_url, case["case_no"])
    command(sim_url, ref, "pre_review")
    command(sim_url, ref, "supplement_requested", materials=["本人近期白底证件照"])
    got = http.get(f"/bff/v1/affairs/cases/{case['id']}", headers=me.headers).json()
    assert got["status"] == "supplement_requested" and got["materials_requested"] == ["本人近期白底证件照"]
    r = http.post(
        f"/bff/v1/affairs/cases/{case['id']}/supplement", json={"form": {"photo": upload(http, me)}}, headers=me.headers
    )
    assert r.status_code == 200 and r.json()["status"] == "pre_review", r.text
    assert httpx.get(f"{sim_url}/biz/_sim/cases", params={"case_no": case["case_no"]}).json()["supplements"] == 1
    for s in ("accepted", "handling", "completed"):
        command(sim_url, ref, s)
    r = http.post(f"/bff/v1/affairs/cases/{case['id']}/rating", json={"level": 2}, headers=me.headers)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "tags"
    r = http.post(
        f"/bff/v1/affairs/cases/{case['id']}/rating", json={"level": 2, "tags": ["等待时间长"]}, headers=me.headers
    )
    assert r.status_code == 201 and r.json()["rectification"] is True
    r = http.post(f"/bff/v1/affairs/cases/{case['id']}/rating", json={"level": 5}, headers=me.headers)
    assert r.status_code == 409 and problem(r) == "already-rated"
    path = "/affairs/v1/rectifications?org_code=320000.320500"
    r = http.get(path, headers=signed("GET", path, "jiaoguan"))
    assert r.status_code == 200 and f"case:{case['id']}" in [x["subject"] for x in r.json()["items"]]
    # Withdrawal: before acceptance only.
    other = submit(http, me, "app-19", fill(http, me, "app-19")).json()
    r = http.post(f"/bff/v1/affairs/cases/{other['id']}/withdrawal", headers=me.headers)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    # Withdrawn perhaps before it reached its business system: that system hears of it all the same.
    for _ in range(100):
        held = httpx.get(f"{sim_url}/biz/_sim/cases", params={"case_no": other["case_no"]})
        if held.status_code == 200 and held.json()["status"] == "withdrawn":
            break
        await asyncio.sleep(0.05)
    assert held.json()["status"] == "withdrawn", held.text
    r = http.post(f"/bff/v1/affairs/cases/{case['id']}/withdrawal", headers=me.headers)
    assert r.status_code == 409
    # Automatic rating: a finished case never rated gets the default after the deadline.
    done = submit(http, me, "app-21", fill(http, me, "app-21")).json()
    dref = ref_of(sim_url, done["case_no"])
    for s in ("pre_review", "accepted", "handling", "completed"):
        command(sim_url, dref, s)
    assert await service.auto_rate(res, now=datetime.now(UTC) + timedelta(days=16)) >= 1
    row = await res.db.fetchrow("SELECT level, automatic FROM affairs.ratings WHERE subject = $1", f"case:{done['id']}")
    assert row is not None and row["level"] == 4 and row["automatic"] is True  # 满意, 003's default
    # My cases: paged, newest first, capped.
    page = http.get("/bff/v1/affairs/cases", params={"limit": 2}, headers=me.headers).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    nxt = http.get(
        "/bff/v1/affairs/cases", params={"limit": 2, "cursor": page["next_cursor"]}, headers=me.headers
    ).json()
    assert not {c["id"] for c in page["items"]} & {c["id"] for c in nxt["items"]}
    assert http.get("/bff/v1/affairs/cases", params={"limit": 500}, headers=me.headers).status_code == 400


async def test_booking_rules(http: httpx.Client, sim_url: str, res: Resources) -> None:
    p = Person(http, sim_url, pick_citizen(sim_url))
    office = http.get("/bff/v1/affairs/apps/app-02/offices", params={"region": "320102"}).json()["items"][0]
    slots = http.get("/bff/v1/affairs/apps/app-02/slots", params={"office_id": office["id"]}, headers=p.headers).json()[
        "items"
    ]
    form = {"name": p.citizen.name, "phone": p.citizen.phone}

    def book(slot: dict[str, Any]) -> httpx.Response:
        return http.post(
            "/bff/v1/affairs/bookings", json={"code": "app-02", "slot_id": slot["id"], "form": form}, headers=p.headers
        )

    ids = []
    for slot in slots[10:14]:
        r = book(slot)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert book(slots[10]).status_code == 409  # the same time twice
    for bid in ids[:3]:
        assert http.post(f"/bff/v1/affairs/bookings/{bid}/cancellation", headers=p.headers).status_code == 200
    r = http.post(f"/bff/v1/affairs/bookings/{ids[3]}/cancellation", headers=p.headers)
    assert r.status_code == 429 and problem(r) == "too-many-cancellations"
    # Reminders the day before, once.
    person = await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", p.wangha)
    starts = await res.db.fetchval(
        "SELECT s.starts_at FROM affairs.bookings b JOIN affairs.slots s ON s.id = b.slot_id WHERE b.id = $1",
        uuid.UUID(ids[3]),
    )
    assert await bookings.remind(res, now=starts - timedelta(days=1)) >= 1
    assert await bookings.remind(res, now=starts - timedelta(days=1)) == 0
    told = http.get("/bff/v1/affairs/notifications", headers=p.headers).json()["items"]
    assert any(t["template"] == "appointment_reminder" for t in told)
    # Three no-shows in a month: the sweep after the times passed blacklists the person.
    for slot in slots[20:23]:
        assert book(slot).status_code == 201
    last = max(s["starts_at"] for s in slots[20:23])
    await bookings.sweep_no_shows(res, now=datetime.fromisoformat(last) + timedelta(hours=2))
    assert await res.db.fetchval("SELECT count(*) FROM affairs.blacklist WHERE person_id = $1", person) == 1
    r = book(slots[30])
    assert r.status_code == 403 and problem(r) == "booking-blacklisted"


def test_name_count_rate_limited(http: httpx.Client, me: Person) -> None:
    inside_one_window(3600)
    codes = []
    for _ in range(12):
        r = http.post(
            "/bff/v1/affairs/queries/app-49", json={"params": {"name": "张伟", "region": "320500"}}, headers=me.headers
        )
        codes.append(r.status_code)
    assert codes.count(429) >= 2 and codes[0] == 200


async def test_no_criminal_record_with_the_ministry(http: httpx.Client, sim_url: str, res: Resources) -> None:
    clean, recorded = pick_citizen(sim_url), pick_citizen(sim_url)
    httpx.post(f"{sim_url}/biz/_sim/records", json={"id_number": recorded.id_number})
    results, refs = {}, {}
    for c in (clean, recorded):
        pushed = httpx.post(f"{sim_url}/mps/_sim/applications", json={"name": c.name, "id_number": c.id_number}).json()
        assert pushed["status_code"] == 202, pushed
        for _ in range(600):  # the first certificate also makes the platform's seal
            fb = httpx.get(f"{sim_url}/mps/_sim/feedback", params={"apply_no": pushed["apply_no"]})
            if fb.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert fb.status_code == 200, fb.text
        results[c.id_number] = fb.json()["result"]
        refs[c.id_number] = fb.json()["certificate_ref"]
        for _ in range(200):  # the feedback is delivered first, then the application is marked fed back
            row = await res.db.fetchrow(
                "SELECT status, id_number_enc, certificate_ref FROM affairs.ncr_applications WHERE mps_apply_no = $1",
                pushed["apply_no"],
            )
            if row is not None and row["status"] == "fed_back":
                break
            await asyncio.sleep(0.05)
        assert row is not None and row["status"] == "fed_back" and c.id_number not in row["id_number_enc"]
        assert (row["certificate_ref"] or "") == refs[c.id_number]
    assert results == {clean.id_number: "no_record", recorded.id_number: "has_record"}
    # The clean one's feedback carries the sealed certificate eseal issued; the other none.
    assert refs[recorded.id_number] == "" and refs[clean.id_number].startswith("eseal:")
    from eseal import service as eseal_service

    path = eseal_service.issued_path(res, refs[clean.id_number])
    assert path is not None
    verified = await eseal_service.signing.verify_file(res, path)
    assert verified.valid and verified.signatures[0].kind == "pades"
    proc = await asyncio.create_subprocess_exec("pdftotext", str(path), "-", stdout=asyncio.subprocess.PIPE)
    text = (await proc.communicate())[0].decode()
    assert "无犯罪记录证明" in text and clean.name in text and clean.id_number not in text  # the number masked
    # An unsigned push is refused.
    r = http.post(
        "/affairs/v1/mps/applications",
        json={"apply_no": "X1", "name": "某", "id_number": clean.id_number, "purpose": "x"},
    )
    assert r.status_code == 401


async def test_payment_reconciliation_flags_abnormal(
    http: httpx.Client, sim_url: str, me: Person, res: Resources
) -> None:
    inside_one_window(86_400, need=30, offset=8 * 3600)  # paid and reconciled on the same Beijing day
    orders = [
        http.post(
            "/bff/v1/affairs/orders",
            json={"item": "港澳签注（一次）", "channel": "wechat"},
            headers={**me.headers, "Idempotency-Key": secrets.token_hex(8)},
        ).json()
        for _ in range(2)
    ]
    matching, order = orders
    # Paid, and told: the bill and our records agree.
    paid = httpx.post(f"{sim_url}/pay/_sim/pay", json={"out_trade_no": matching["out_trade_no"]}).json()
    assert paid["notified"] in (200, 204)
    # Paid at the channel, but its notification never reached us.
    assert (
        httpx.post(f"{sim_url}/pay/_sim/pay", json={"out_trade_no": order["out_trade_no"], "notify": False}).status_code
        == 200
    )
    today = datetime.now(UTC).astimezone(bookings.SHANGHAI).date().isoformat()
    path = f"/affairs/v1/reconciliations/wechat/{today}"
    rep = http.post(path, headers=signed("POST", path, "crj"))
    assert rep.status_code == 201, rep.text
    flagged = {x["out_trade_no"]: x["reason"] for x in rep.json()["report"]}
    assert flagged[order["out_trade_no"]] == "paid-at-channel-not-here" and rep.json()["matched"] >= 1
    assert (
        http.get(f"/bff/v1/affairs/orders/{order['id']}", headers=me.headers).json()["abnormal"]
        == "paid-at-channel-not-here"
    )
    # A forged payment notification is refused and changes nothing.
    bad = http.post(
        "/affairs/v1/pay/wechat/notify",
        content=b'{"event_type":"TRANSACTION.SUCCESS"}',
        headers={"Wechatpay-Signature": "x", "Wechatpay-Timestamp": "1"},
    )
    assert bad.status_code == 401


async def test_scheduled_jobs_run_and_seeding_is_idempotent(res: Resources) -> None:
    import affairs.jobs
    from affairs import seed
    from core.worker import SCHEDULED

    await res.db.execute(
        "UPDATE affairs.city_links SET url = 'https://kept.example/' WHERE code = 'app-25' AND city_code = '321300'"
    )
    offices = await res.db.fetchval("SELECT count(*) FROM affairs.offices")
    await seed.seed(res)
    assert await res.db.fetchval("SELECT count(*) FROM affairs.offices") == offices
    kept = "SELECT url FROM affairs.city_links WHERE code = 'app-25' AND city_code = '321300'"
    assert await res.db.fetchval(kept) == "https://kept.example/"  # a city's own link survives a restart
    jobs = [s for s in SCHEDULED if s.name.startswith("affairs.")]
    assert {j.name for j in jobs} == {
        "affairs.redeliver", "affairs.reminders", "affairs.no_shows", "affairs.auto_rate", "affairs.reconcile"
    } | {"affairs.govfeed", "affairs.govreconcile", "affairs.govguides"} and affairs.jobs.redeliver in [
        j.job for j in jobs
    ]  # fmt: skip
    for job in jobs:
        await job.job(res)


async def test_nearby_agrees_with_every_office_in_the_table(http: httpx.Client, res: Resources) -> None:
    from affairs.geo import distance_m

    lat, lon, radius = 32.0603, 118.7969, 20000  # Nanjing
    rows = await res.db.fetch("SELECT id, lat, lon, kind FROM affairs.offices")
    for kind in (None, "station"):
        near = sorted(
            (d, str(r["id"]))
            for r in rows
            if (kind is None or r["kind"] == kind) and (d := distance_m(lat, lon, r["lat"], r["lon"])) <= radius
        )[:10]
        want = [(round(d), i) for d, i in near]
        params: dict[str, Any] = {"lat": lat, "lon": lon, "radius_m": radius, "limit": 10}
        if kind:
            params["kind"] = kind
        got = http.get("/bff/v1/affairs/offices/nearby", params=params).json()["items"]
        assert want and [(o["distance_m"], o["id"]) for o in got] == want
