"""The integrated government-service platform over real HTTP: the 办件 feed in the national shape, in order and
exactly once through an outage, drift repaired by reconciliation, and service guides pulled into versioned
manifests shown by /bff and /mini."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from affairs import govcodes, govservice
from core.resources import Resources
from identity.numbers import uscc_check
from tests.identity_helpers import pick_citizen
from tests.test_affairs import Person, command, fill, ref_of, submit

FLOW = ("pre_review", "accepted", "handling", "completed")


@pytest.fixture(scope="module")
def me(http: httpx.Client, sim_url: str) -> Person:
    return Person(http, sim_url, pick_citizen(sim_url))


def gp(sim_url: str, path: str, **kw: Any) -> Any:
    r = httpx.request(kw.pop("method", "GET"), f"{sim_url}/govplatform{path}", **kw)
    assert r.status_code == 200, r.text
    return r.json()


def held(sim_url: str, case_no: str, n: int, deadline: float = 30) -> dict[str, Any]:
    """The platform's records of a case once it holds `n` of them."""
    end = time.monotonic() + deadline
    while True:
        got: dict[str, Any] = gp(sim_url, f"/_sim/projects/{case_no}")
        if len(got["records"]) >= n or time.monotonic() > end:
            return got
        time.sleep(0.05)


def run_case(http: httpx.Client, sim_url: str, me: Person, code: str = "app-11") -> dict[str, Any]:
    case: dict[str, Any] = submit(http, me, code, fill(http, me, code)).json()
    ref = ref_of(sim_url, case["case_no"])
    for s in FLOW:
        assert command(sim_url, ref, s)["status_code"] == 200
    return case


def test_implementing_org_code_is_a_valid_credit_code() -> None:
    assert uscc_check(govcodes.IMPLEMENTING_ORG[:17]) == govcodes.IMPLEMENTING_ORG[17]


def test_every_transition_fed_in_the_national_shape_in_order(http: httpx.Client, sim_url: str, me: Person) -> None:
    case = run_case(http, sim_url, me)
    got = held(sim_url, case["case_no"], 5)
    recs = got["records"]
    assert [r["STATUS"] for r in recs] == ["01", "02", "03", "04", "06"]
    assert [r["STATUS_NAME"] for r in recs] == ["申报", "预审", "受理", "办理", "办结"]
    assert got["duplicates"] == 0 and got["current"] == "06"
    first = recs[0]
    assert first["PROJID"] == case["case_no"] and first["SERVICENAME"] == "驾驶证补证、换证"
    assert first["SERVICECODE"] == govcodes.item_code("app-11", "application")
    assert first["SERVICECODE"].startswith(govcodes.IMPLEMENTING_ORG)
    # The applicant leaves masked: neither the name nor the ID number in clear.
    assert first["APPLYNAME"] != me.citizen.name and first["APPLYNAME"][0] == me.citizen.name[0]
    assert "*" in first["APPLYNAME"] or len(me.citizen.name) == 1
    assert first["APPLY_CARDTYPE"] == "111" and me.citizen.id_number not in str(got)
    assert first["APPLY_CARDNUMBER"][:3] == me.citizen.id_number[:3] and "*" in first["APPLY_CARDNUMBER"]
    assert first["DEPTID"] == "320000.320500.jiaoguan" and first["DEPTNAME"] == "苏州市公安局交通警察支队"
    assert first["AREACODE"] == "320505" and first["APPLYFROM"] == "2"
    stamps = [r["TRANSACT_TIME"] for r in recs]
    assert stamps == sorted(stamps) and len({r["RECORD_ID"] for r in recs}) == 5


def test_the_gateway_refuses_unsigned_and_badly_signed_pushes(sim_url: str) -> None:
    body = {"PROJIDS": ["X1"]}
    r = httpx.post(f"{sim_url}/govplatform/v1/projects/status-query", json=body)
    assert r.status_code == 401 and r.json()["code"] == "10001"
    ts = str(int(time.time()))
    headers = {"x-tif-paasid": govcodes.PAASID, "x-tif-timestamp": ts, "x-tif-nonce": "n" * 16}
    r = httpx.post(
        f"{sim_url}/govplatform/v1/projects/status-query", json=body, headers={**headers, "x-tif-signature": "00"}
    )
    assert r.status_code == 401 and r.json()["code"] == "10003"


async def test_outage_accepted_then_delivered_exactly_once(
    http: httpx.Client, base_url: str, sim_url: str, me: Person, res: Resources
) -> None:
    gp(sim_url, "/_sim/availability", method="POST", json={"state": "down"})
    try:
        ready = httpx.get(f"{base_url}/affairs/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["govplatform"].startswith("fail")
        case = run_case(http, sim_url, me, "app-18")  # accepted and handled while the platform is away
        got = http.get(f"/bff/v1/affairs/cases/{case['id']}", headers=me.headers).json()
        assert got["status"] == "completed"
        pending = await res.db.fetchval(
            """SELECT count(*) FROM affairs.gov_feed f JOIN affairs.cases c ON c.id = f.case_id
               WHERE c.case_no = $1 AND f.delivered_at IS NULL""",
            case["case_no"],
        )
        assert pending == 5
        assert gp(sim_url, f"/_sim/projects/{case['case_no']}")["records"] == []
    finally:
        # Back, but the answer to the first batch is lost: the platform holds it, we send it again.
        gp(sim_url, "/_sim/availability", method="POST", json={"state": "up", "lose_answers": 1})
    assert httpx.get(f"{base_url}/affairs/readyz").json()["checks"]["govplatform"] == "ok"
    end = time.monotonic() + 60
    while time.monotonic() < end:
        await govservice.drain(res)  # what the affairs.govfeed job does; the records back off meanwhile
        left = await res.db.fetchval(
            """SELECT count(*) FROM affairs.gov_feed f JOIN affairs.cases c ON c.id = f.case_id
               WHERE c.case_no = $1 AND f.delivered_at IS NULL""",
            case["case_no"],
        )
        if left == 0:
            break
        await asyncio.sleep(0.2)
    got = held(sim_url, case["case_no"], 5)
    assert [r["STATUS"] for r in got["records"]] == ["01", "02", "03", "04", "06"]  # each once, in order
    assert got["duplicates"] >= 1  # the resent batch was recognised, not taken twice
    assert gp(sim_url, "/_sim/stats")["up"] is True


async def test_drift_repaired_by_reconciliation(http: httpx.Client, sim_url: str, me: Person, res: Resources) -> None:
    a, b = run_case(http, sim_url, me, "app-19"), run_case(http, sim_url, me, "app-20")
    for c in (a, b):
        assert len(held(sim_url, c["case_no"], 5)["records"]) == 5
    end = time.monotonic() + 30
    while await res.db.fetchval(  # settled: every record delivered
        "SELECT count(*) FROM affairs.gov_feed WHERE delivered_at IS NULL AND rejected_code IS NULL"
    ):
        assert time.monotonic() < end
        await govservice.drain(res)
        await asyncio.sleep(0.1)
    gp(sim_url, f"/_sim/projects/{a['case_no']}/drift", method="POST", json={"STATUS": "03"})
    gp(sim_url, f"/_sim/projects/{b['case_no']}/drift", method="POST", json={"STATUS": None})
    assert gp(sim_url, f"/_sim/projects/{b['case_no']}")["current"] is None
    report = await govservice.reconcile(res)
    drifted = {d["case_no"]: d for d in report.drift}
    assert drifted[a["case_no"]] == {"case_no": a["case_no"], "ours": "06", "theirs": "03"}
    assert drifted[b["case_no"]]["theirs"] is None and report.compared >= 2
    for c in (a, b):
        got = held(sim_url, c["case_no"], 6)
        assert got["current"] == "06" and got["records"][-1]["RECORD_ID"].startswith(f"{c['case_no']}-rs-")
    again = await govservice.reconcile(res)
    assert not {a["case_no"], b["case_no"]} & {d["case_no"] for d in again.drift}


async def test_guides_pulled_into_versioned_manifests(
    http: httpx.Client, base_url: str, sim_url: str, res: Resources
) -> None:
    before = await res.db.fetchval("SELECT version FROM affairs.current_manifest WHERE code = 'app-11'")
    if before == 1:  # not pulled yet in this run
        r = http.get("/bff/v1/affairs/apps/app-11/guide")
        assert r.status_code == 404 and r.json()["type"].endswith("no-guide")
    await govservice.sync_guides(res)
    v1 = await res.db.fetchval("SELECT version FROM affairs.current_manifest WHERE code = 'app-11'")
    assert v1 > before or before > 1
    for prefix in ("/bff", "/mini"):
        r = httpx.get(f"{base_url}{prefix}/v1/affairs/apps/app-11/guide")
        assert r.status_code == 200, r.text
        g = r.json()
        assert g["item_code"] == govcodes.item_code("app-11", "application") and g["source"] == "一体化政务服务平台"
        assert g["conditions"] and g["process"] and g["places"] and g["faq"] and g["time_limit"]
        assert "本人近期白底证件照" in [m["name"] for m in g["materials"]]
    assert await govservice.sync_guides(res) == 0  # nothing changed at the platform
    code = govcodes.item_code("app-11", "application")
    urgent = "承诺时限 3 个工作日（加急）"
    platform_v = gp(sim_url, f"/_sim/items/{code}/guide", method="PUT", json={"time_limit": urgent})
    assert await govservice.sync_guides(res) == 1
    v2 = await res.db.fetchval("SELECT version FROM affairs.current_manifest WHERE code = 'app-11'")
    assert v2 == v1 + 1
    g = http.get("/bff/v1/affairs/apps/app-11/guide").json()
    assert g["time_limit"] == urgent and g["version"] == platform_v["VERSION"]
    old = await res.db.fetchval("SELECT body FROM affairs.manifests WHERE code = 'app-11' AND version = $1", v1)
    assert old["guide"]["time_limit"] != urgent  # the older version stays as its cases saw it
    r = http.get("/bff/v1/affairs/apps/app-99/guide")
    assert r.status_code == 400
