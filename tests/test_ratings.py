"""好差评 end to end over real HTTP (docs/domains/haocp.md): ratings with the national fields, the fixed tags and the
comment filter; a bad rating through the whole rectification loop to a second rating, reported to the provincial
好差评 simulator at each step; an outage during which ratings are accepted and later delivered exactly once; drift at
the party repaired by reconciliation; the automatic rating after 15 days is 满意."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from affairs import ratings, service, signing
from affairs.haocp import HaocpClient
from core import clock
from core.resources import Resources
from core.settings import load_settings
from tests.admin_helpers import make_admin, platform_admin
from tests.identity_helpers import pick_citizen
from tests.test_affairs import Person, command, fill, ref_of, submit


@pytest.fixture(scope="module")
def me(http: httpx.Client, sim_url: str) -> Person:
    return Person(http, sim_url, pick_citizen(sim_url))


def finished_case(http: httpx.Client, sim_url: str, me: Person, code: str = "app-21") -> dict[str, Any]:
    case: dict[str, Any] = submit(http, me, code, fill(http, me, code)).json()
    ref = ref_of(sim_url, case["case_no"])
    for s in ("pre_review", "accepted", "handling", "completed"):
        command(sim_url, ref, s)
    return case


def sim_control(sim_url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    key = signing.system_key(load_settings().var_path, "haocp")
    headers = {**signing.sign_headers(key, "szt", "POST", f"/haocp{path}", raw), "Content-Type": "application/json"}
    return httpx.post(f"{sim_url}/haocp{path}", content=raw, headers=headers)


def held(sim_url: str, case_no: str) -> dict[str, Any]:
    r = httpx.get(f"{sim_url}/haocp/_sim/counts", params={"projectNo": case_no})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def until(res: Resources, check: Any, what: str, deadline: float = 20.0) -> Any:
    """Drain the outbox (as the job does, past any backoff) until `check()` is truthy."""
    end = time.monotonic() + deadline
    while True:
        await ratings.deliver(res, now=clock.now() + timedelta(hours=2))
        got = check()
        if got:
            return got
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def rate(http: httpx.Client, me: Person, case: dict[str, Any], **body: Any) -> httpx.Response:
    return http.post(f"/bff/v1/affairs/cases/{case['id']}/rating", json=body, headers=me.headers)


async def test_tags_per_level_and_the_comment_filter(
    http: httpx.Client, sim_url: str, me: Person, res: Resources
) -> None:
    case = finished_case(http, sim_url, me)
    subject = f"case:{case['id']}"
    # A tag of another level: 422 naming the field, nothing stored.
    r = rate(http, me, case, level=2, tags=["服务态度好"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tags", r.text
    # A refused word in the comment: 422 naming the comment, nothing stored.
    r = rate(http, me, case, level=2, tags=["等待时间长"], comment="可以加微信找人代办")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "comment", r.text
    assert await res.db.fetchval("SELECT count(*) FROM affairs.ratings WHERE subject = $1", subject) == 0
    # Masked words and personal numbers are stored and reported masked.
    r = rate(
        http,
        me,
        case,
        level=2,
        tags=["等待时间长", "多次跑动"],
        comment="窗口真是垃圾，打13912345678没人接",
        channel="app",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["masked"] is True and body["rectification"] is True
    assert "垃圾" not in body["comment"] and "＊＊" in body["comment"] and "13912345678" not in body["comment"]
    row = await res.db.fetchrow("SELECT * FROM affairs.ratings WHERE subject = $1", subject)
    assert row is not None
    assert row["case_no"] == case["case_no"] and row["item_code"] == "app-21" and row["channel"] == "app"
    got = await until(res, lambda: held(sim_url, case["case_no"])["case"], "the evaluation at the party")
    assert got["evaluations"] == 1 and got["held"]["alternate"] == 2 and got["held"]["rectifyStatus"] == "open"
    # Unsigned calls to the party are refused.
    assert httpx.post(f"{sim_url}/haocp/v1/evaluations/query", json={"projectNos": ["x"]}).status_code == 401


async def test_bad_rating_through_the_whole_loop_to_a_second_rating(
    http: httpx.Client, sim_url: str, me: Person, res: Resources, var_dir: Path
) -> None:
    boss = platform_admin(http, var_dir)
    _, _, handler = make_admin(http, boss, "320500", ["system"], prefix="rh")
    _, _, plain = make_admin(http, boss, "320500", ["org_admin"], prefix="ro")
    case = finished_case(http, sim_url, me)
    r = rate(http, me, case, level=1, tags=["服务态度差"], comment="态度很差")
    assert r.status_code == 201 and r.json()["rectification"] is True, r.text
    page = http.get("/admin/v1/ratings/rectifications", params={"status": "open"}, headers=handler).json()
    rect = next(x for x in page["items"] if x["case_no"] == case["case_no"])
    assert rect["org_code"].startswith("320000.320500") and rect["level"] == 1
    base = f"/admin/v1/ratings/rectifications/{rect['id']}"
    # The role decides who may act: an organisation administrator has no 好差评 permission.
    assert http.post(f"{base}/verification", json={"decision": "rectify"}, headers=plain).status_code == 403
    # A step out of order is refused.
    r = http.post(f"{base}/rectification", json={"note": "x"}, headers=handler)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "status"
    # 核查: disputed, so an appeal (grounds required).
    assert http.post(f"{base}/verification", json={"decision": "appeal"}, headers=handler).status_code == 400
    r = http.post(f"{base}/verification", json={"decision": "appeal", "note": "监控显示按规定办理"}, headers=handler)
    assert r.status_code == 200 and r.json()["status"] == "appealed", r.text
    # The appellant cannot review the own appeal; someone else refuses it, so it goes to rectification.
    r = http.post(f"{base}/appeal-review", json={"upheld": False}, headers=handler)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "reviewer", r.text
    r = http.post(f"{base}/appeal-review", json={"upheld": False, "note": "群众诉求合理"}, headers=boss)
    assert r.status_code == 200 and r.json()["status"] == "rectifying", r.text
    assert r.json()["due_at"] > rect["due_at"]  # the rectification deadline replaced the verification one
    r = http.post(f"{base}/rectification", json={"note": "已约谈窗口人员并整改服务规范"}, headers=handler)
    assert r.status_code == 200 and r.json()["status"] == "rectified", r.text
    # 回访: an SMS to the citizen; the citizen replies 4 and the gateway's uplink callback is the second rating.
    r = http.post(f"{base}/visit", json={}, headers=handler)
    assert r.status_code == 200 and r.json()["status"] == "visiting", r.text
    box = httpx.get(f"{sim_url}/sms/_sim/outbox", params={"phone": me.citizen.phone}).json()["items"]
    assert box[0]["template"] == "rating_visit" and box[0]["params"]["case_no"] == case["case_no"]
    reply = httpx.post(f"{sim_url}/sms/_sim/replies", json={"phone": me.citizen.phone, "content": "4 好多了"}).json()
    assert reply["status_code"] == 200 and json.loads(reply["body"])["outcome"] == "rated", reply
    done = http.get(base, headers=handler).json()
    assert done["status"] == "closed" and done["second_level"] == 4
    steps = [e["step"] for e in done["events"]]
    assert steps == ["opened", "verify", "appeal", "appeal_review", "rectify", "visit", "second_rating"], steps
    # One second rating only.
    assert rate(http, me, case, level=5).status_code == 409
    # Reported at each step: the party holds both evaluations and every step, each once.
    want = ["opened", "verify", "appeal", "appeal_review", "rectify", "visit", "second_rating"]
    got = await until(
        res,
        lambda: (c := held(sim_url, case["case_no"])["case"]) and c["rectifications"] == len(want) and c,
        "every step at the party",
    )
    assert got["evaluations"] == 2 and sorted(got["steps"]) == sorted(want) and got["duplicates"] == 0
    assert got["held"] == {"projectNo": case["case_no"], "assessNumber": 2, "alternate": 4, "rectifyStatus": "closed"}
    # The second path: rectified straight away, visited, and rated again in the app.
    other = finished_case(http, sim_url, me)
    assert rate(http, me, other, level=2, tags=["材料繁琐"]).status_code == 201
    page = http.get("/admin/v1/ratings/rectifications", params={"status": "open"}, headers=handler).json()
    oid = next(x["id"] for x in page["items"] if x["case_no"] == other["case_no"])
    ob = f"/admin/v1/ratings/rectifications/{oid}"
    assert http.post(f"{ob}/verification", json={"decision": "rectify"}, headers=handler).status_code == 200
    assert http.post(f"{ob}/rectification", json={"note": "精简材料清单"}, headers=handler).status_code == 200
    assert http.post(f"{ob}/visit", json={"note": "电话+短信回访"}, headers=handler).status_code == 200
    r = rate(http, me, other, level=5, tags=["材料精简"])
    assert r.status_code == 201 and r.json()["second"] is True, r.text
    assert http.get(ob, headers=handler).json()["status"] == "closed"
    # Statistics: by level, channel, item and organisation, in the console too.
    for group in ("level", "channel", "item", "org"):
        r = http.get("/admin/v1/stats/ratings", params={"group": group}, headers=boss)
        assert r.status_code == 200 and r.json()["items"], r.text
    by_item = http.get("/admin/v1/stats/ratings", params={"group": "item"}, headers=boss).json()["items"]
    row = next(i for i in by_item if i["key"] == "app-21")
    assert row["second_ratings"] >= 2 and row["closed"] >= 2 and row["levels"]["非常不满意"] >= 1
    assert http.get("/admin/v1/stats/ratings", params={"group": "nope"}, headers=boss).status_code == 400


async def test_outage_accepted_then_delivered_exactly_once(
    http: httpx.Client, sim_url: str, me: Person, res: Resources
) -> None:
    case = finished_case(http, sim_url, me)
    assert sim_control(sim_url, "/_sim/outage", {"down": True}).status_code == 200
    try:
        ready = http.get("/affairs/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["haocp"].startswith("fail"), ready.text
        refused_before = held(sim_url, "-")["refused_down"]
        r = rate(http, me, case, level=5, tags=["一次办好"])
        assert r.status_code == 201, r.text  # accepted while the party is down
        key = f"eval:case:{case['id']}:1"
        end = time.monotonic() + 20
        while True:  # the job runs while the party is down: each attempt fails and backs off
            await ratings.deliver(res, now=clock.now() + timedelta(hours=2))
            row = await res.db.fetchrow("SELECT * FROM affairs.haocp_outbox WHERE key = $1", key)
            assert row is not None
            if row["attempts"] >= 3 and row["leased_until"] is None:
                break
            assert time.monotonic() < end, dict(row)
            await asyncio.sleep(0.05)
        assert row["delivered_at"] is None and row["attempts"] >= 3 and "503" in row["last_error"]
        assert row["next_at"] > clock.now()  # backing off
        assert held(sim_url, case["case_no"])["case"] is None
        assert held(sim_url, "-")["refused_down"] >= refused_before + 3
    finally:
        assert sim_control(sim_url, "/_sim/outage", {"down": False}).status_code == 200
    got = await until(res, lambda: held(sim_url, case["case_no"])["case"], "delivery after the outage")
    row = await res.db.fetchrow("SELECT * FROM affairs.haocp_outbox WHERE key = $1", key)
    assert row is not None
    assert row["delivered_at"] is not None
    # More runs of the job and of reconciliation deliver nothing more; a resend is de-duplicated by the party.
    await ratings.deliver(res, now=clock.now() + timedelta(hours=2))
    drift = await ratings.reconcile(res)
    assert case["case_no"] not in drift.repaired
    assert await HaocpClient(res).report("evaluation", key, row["payload"]) is True
    got = held(sim_url, case["case_no"])["case"]
    assert got["evaluations"] == 1 and got["duplicates"] == 1 and got["held"]["alternate"] == 5
    assert http.get("/affairs/readyz").json()["checks"]["haocp"] == "ok"


async def test_reconciliation_repairs_drift(http: httpx.Client, sim_url: str, me: Person, res: Resources) -> None:
    good = finished_case(http, sim_url, me)
    bad = finished_case(http, sim_url, me)
    assert rate(http, me, good, level=4, tags=["流程简便"]).status_code == 201
    assert rate(http, me, bad, level=2, tags=["指引不清"]).status_code == 201
    for case in (good, bad):
        await until(res, lambda c=case: held(sim_url, c["case_no"])["case"], "the first delivery")
    # Nothing drifted yet: reconciliation repairs neither.
    first = await ratings.reconcile(res)
    assert good["case_no"] not in first.repaired and bad["case_no"] not in first.repaired
    # The party changes a level, forgets a case, and changes a rectification state.
    assert sim_control(sim_url, "/_sim/drift", {"projectNo": good["case_no"], "action": "level", "level": 1}).is_success
    change = {"projectNo": bad["case_no"], "action": "status", "status": "closed"}
    assert sim_control(sim_url, "/_sim/drift", change).is_success
    drift = await ratings.reconcile(res)
    assert {good["case_no"], bad["case_no"]} <= set(drift.repaired)
    await until(res, lambda: held(sim_url, good["case_no"])["case"]["held"]["alternate"] == 4, "the level repaired")
    await until(
        res, lambda: held(sim_url, bad["case_no"])["case"]["held"]["rectifyStatus"] == "open", "the state repaired"
    )
    assert sim_control(sim_url, "/_sim/drift", {"projectNo": good["case_no"], "action": "forget"}).is_success
    assert good["case_no"] in (await ratings.reconcile(res)).repaired
    back = await until(res, lambda: held(sim_url, good["case_no"])["case"], "the forgotten case resent")
    assert back["held"] == {"projectNo": good["case_no"], "assessNumber": 1, "alternate": 4, "rectifyStatus": ""}
    again = await ratings.reconcile(res)
    assert good["case_no"] not in again.repaired and bad["case_no"] not in again.repaired


async def test_automatic_rating_after_15_days_is_satisfied(
    http: httpx.Client, sim_url: str, me: Person, res: Resources
) -> None:
    case = finished_case(http, sim_url, me)
    assert await service.auto_rate(res, now=clock.now() + timedelta(days=16)) >= 1
    row = await res.db.fetchrow("SELECT * FROM affairs.ratings WHERE subject = $1", f"case:{case['id']}")
    assert row is not None
    assert row["level"] == 4 and row["automatic"] is True and row["method"] == "default"
    got = await until(res, lambda: held(sim_url, case["case_no"])["case"], "the automatic rating reported")
    assert got["held"]["alternate"] == 4 and got["evaluations"] == 1
    payload = await res.db.fetchval(
        "SELECT payload FROM affairs.haocp_outbox WHERE key = $1", f"eval:case:{case['id']}:1"
    )
    assert payload["satisfaction"] == "满意" and payload["evaluateType"] == "3" and payload["pf"] == "2"
