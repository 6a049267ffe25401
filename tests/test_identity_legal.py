"""Legal persons over real HTTP: an enterprise registered by its real-name-matched legal representative, handlers
(经办人) authorised and revoked, and agents (代理人) appointed by a citizen aged 60+, looked up, expired and revoked."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.masking import mask_id_number, mask_name
from core.resources import Resources
from identity.legal import service as legal
from identity.numbers import uscc_check
from tests.identity_helpers import Citizen, bearer, enrol, pick_citizen

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def new_uscc() -> str:
    body = "91" + "320594" + "".join(secrets.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check(body)


def _sixty_years_ago() -> str:
    today = date.today()
    return today.replace(year=today.year - 60, day=min(today.day, 28)).isoformat()


def pick(sim_url: str, wanted: Callable[[Citizen], bool]) -> Citizen:
    for _ in range(500):
        c = pick_citizen(sim_url)
        if wanted(c):
            return c
    raise AssertionError("no such citizen in the simulator's population")


class Enrolled:
    def __init__(self, http: httpx.Client, sim_url: str, citizen: Citizen) -> None:
        body = enrol(http, sim_url, citizen)
        self.citizen = citizen
        self.wangha = str(body["wangha"])
        session = body["session"]
        assert isinstance(session, dict)
        self.headers = bearer(session)

    async def person_id(self, res: Resources) -> str:
        return str(await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", self.wangha))


@pytest.fixture(scope="module")
def cast(http: httpx.Client, sim_url: str) -> dict[str, Enrolled]:
    """A representative under 60, a second adult, and an elder born more than 60 years ago."""
    cutoff = _sixty_years_ago()
    # Younger than 60 with a margin of a year, so the 60th birthday cannot fall during the run.
    margin = date.fromisoformat(cutoff).replace(year=int(cutoff[:4]) + 1).isoformat()
    rep = pick(sim_url, lambda c: c.birth_date > margin)
    other = pick(sim_url, lambda c: True)
    elder = pick(sim_url, lambda c: c.birth_date < cutoff)
    return {name: Enrolled(http, sim_url, c) for name, c in (("rep", rep), ("other", other), ("elder", elder))}


def problem_type(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    slug: str = r.json()["type"].rsplit(":", 1)[-1]
    return slug


def _enterprise(c: Citizen, uscc: str, **over: Any) -> dict[str, Any]:
    return {
        "uscc": uscc,
        "name": "苏州测试科技有限公司",
        "representative_name": c.name,
        "representative_id_number": c.id_number,
        **over,
    }


async def _audit_count(res: Resources, action: str, target: str) -> int:
    n: int = await res.db.fetchval(
        "SELECT count(*) FROM core.audit_log WHERE action = $1 AND target = $2", action, target
    )
    return n


async def test_enterprise_registration_and_handlers(
    http: httpx.Client, res: Resources, cast: dict[str, Enrolled]
) -> None:
    rep, other = cast["rep"], cast["other"]
    uscc = new_uscc()
    assert http.post("/bff/v1/enterprises", json=_enterprise(rep.citizen, uscc)).status_code == 401

    # A wrong check character: 422 naming the field.
    wrong = uscc[:17] + next(c for c in USCC_ALPHABET if c != uscc[17])
    r = http.post("/bff/v1/enterprises", json=_enterprise(rep.citizen, wrong), headers=rep.headers)
    assert r.status_code == 422 and problem_type(r) == "uscc-invalid"
    assert r.json()["errors"][0]["field"] == "uscc"

    # The representative named by the enterprise is somebody else, or the ID number does not match.
    for over in (
        {"representative_name": other.citizen.name, "representative_id_number": other.citizen.id_number},
        {"representative_id_number": other.citizen.id_number},
    ):
        r = http.post("/bff/v1/enterprises", json=_enterprise(rep.citizen, uscc, **over), headers=rep.headers)
        assert r.status_code == 422 and problem_type(r) == "representative-mismatch", r.text

    r = http.post("/bff/v1/enterprises", json=_enterprise(rep.citizen, uscc), headers=rep.headers)
    assert r.status_code == 201, r.text
    ent = r.json()
    eid = ent["id"]
    assert ent["uscc"] == uscc and ent["role"] == "representative" and ent["representative_wangha"] == rep.wangha
    assert ent["representative_name_masked"] == mask_name(rep.citizen.name)
    assert rep.citizen.name not in r.text and rep.citizen.id_number not in r.text
    assert await _audit_count(res, "identity.enterprise.register", uscc) == 1

    r = http.post("/bff/v1/enterprises", json=_enterprise(rep.citizen, uscc), headers=rep.headers)
    assert r.status_code == 409 and problem_type(r) == "enterprise-registered"

    mine = http.get("/bff/v1/enterprises", headers=rep.headers).json()["items"]
    assert [(e["id"], e["role"]) for e in mine if e["uscc"] == uscc] == [(eid, "representative")]

    # A handler for 30 days with two scopes (a duplicate is ignored).
    rep_id, other_id = await rep.person_id(res), await other.person_id(res)
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    grant = {
        "wangha": other.wangha,
        "scopes": ["affairs.submit", "affairs.view", "affairs.submit"],
        "valid_until": until,
    }
    handlers_url = f"/bff/v1/enterprises/{eid}/handlers"
    r = http.post(handlers_url, json=grant, headers=rep.headers)
    assert r.status_code == 201, r.text
    handler = r.json()
    assert handler["scopes"] == ["affairs.submit", "affairs.view"] and handler["active"] is True
    assert handler["name_masked"] == mask_name(other.citizen.name) and other.citizen.name not in r.text
    listed = http.get(handlers_url, headers=rep.headers).json()
    assert [h["id"] for h in listed["items"]] == [handler["id"]] and listed["next_cursor"] is None
    assert await legal.handler_for(res, other_id, eid, "affairs.submit")
    assert not await legal.handler_for(res, other_id, eid, "eseal.sign")
    assert await legal.handler_for(res, rep_id, eid, "eseal.sign")  # the representative acts for the enterprise
    theirs = http.get("/bff/v1/enterprises", headers=other.headers).json()["items"]
    assert [(e["id"], e["role"], e["scopes"]) for e in theirs] == [(eid, "handler", ["affairs.submit", "affairs.view"])]

    # Only the representative manages handlers; validity at most a year; unknown 网号 and enterprise are 404.
    rep_grant = {**grant, "wangha": rep.wangha}
    assert http.post(handlers_url, json=rep_grant, headers=other.headers).status_code == 403
    assert http.get(handlers_url, headers=other.headers).status_code == 403
    assert http.delete(f"{handlers_url}/{handler['id']}", headers=other.headers).status_code == 403
    too_long = {**grant, "valid_until": (datetime.now(UTC) + timedelta(days=400)).isoformat()}
    r = http.post(handlers_url, json=too_long, headers=rep.headers)
    assert r.status_code == 422 and problem_type(r) == "handler-validity"
    past = {**grant, "valid_until": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    assert http.post(handlers_url, json=past, headers=rep.headers).status_code == 422
    r = http.post(handlers_url, json=rep_grant, headers=rep.headers)
    assert r.status_code == 422 and problem_type(r) == "handler-self"
    assert http.post(handlers_url, json={**grant, "wangha": "0000000000"}, headers=rep.headers).status_code == 404
    assert http.get(f"/bff/v1/enterprises/{uuid.uuid4()}/handlers", headers=rep.headers).status_code == 404

    # Revoked: no longer active, no longer acting, no longer listed among the handler's enterprises.
    r = http.delete(f"{handlers_url}/{handler['id']}", headers=rep.headers)
    assert r.status_code == 204, r.text
    assert http.delete(f"{handlers_url}/{handler['id']}", headers=rep.headers).status_code == 204  # idempotent
    assert not await legal.handler_for(res, other_id, eid, "affairs.submit")
    after = http.get(handlers_url, headers=rep.headers).json()["items"][0]
    assert after["active"] is False and after["revoked_at"]
    assert all(e["id"] != eid for e in http.get("/bff/v1/enterprises", headers=other.headers).json()["items"])
    assert await _audit_count(res, "identity.handler.grant", handler["id"]) == 1
    assert await _audit_count(res, "identity.handler.revoke", handler["id"]) == 1

    # Granting again re-activates the same handler; once its validity has passed it is not active.
    r = http.post(handlers_url, json=grant, headers=rep.headers)
    assert r.status_code == 201 and r.json()["id"] == handler["id"] and r.json()["active"] is True
    assert await legal.handler_for(res, other_id, eid, "affairs.view")
    await res.db.execute(
        "UPDATE identity.handlers SET valid_until = now() - interval '1 second' WHERE id = $1", uuid.UUID(handler["id"])
    )
    assert not await legal.handler_for(res, other_id, eid, "affairs.view")
    assert http.get(handlers_url, headers=rep.headers).json()["items"][0]["active"] is False


async def test_agents_for_elders(http: httpx.Client, res: Resources, cast: dict[str, Enrolled]) -> None:
    rep, other, elder = cast["rep"], cast["other"], cast["elder"]
    elder_id, other_id = await elder.person_id(res), await other.person_id(res)
    audit_before: int = await res.db.fetchval("SELECT count(*) FROM core.audit_log WHERE action LIKE 'identity.agent%'")

    # Younger than 60: no agent.
    body = {"agent_wangha": other.wangha, "scopes": ["affairs.view"], "days": 30}
    r = http.post("/bff/v1/agents", json=body, headers=rep.headers)
    assert r.status_code == 403 and problem_type(r) == "agent-age"
    r = http.post("/bff/v1/agents", json={**body, "agent_wangha": elder.wangha}, headers=elder.headers)
    assert r.status_code == 422 and problem_type(r) == "agent-self"
    assert http.post("/bff/v1/agents", json={**body, "days": 91}, headers=elder.headers).status_code == 400

    # The elder appoints an agent; a retry with the same Idempotency-Key gets the same grant.
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = http.post("/bff/v1/agents", json=body, headers={**elder.headers, **key})
    assert r.status_code == 201, r.text
    grant = r.json()
    again = http.post("/bff/v1/agents", json=body, headers={**elder.headers, **key})
    assert again.status_code == 201 and again.json()["id"] == grant["id"]
    assert grant["role"] == "elder" and grant["agent_wangha"] == other.wangha and grant["active"] is True
    assert elder.citizen.name not in r.text and other.citizen.name not in r.text
    valid = datetime.fromisoformat(grant["valid_until"]) - datetime.fromisoformat(grant["valid_from"])
    assert valid == timedelta(days=30)

    as_agent = http.get("/bff/v1/agents", headers=other.headers).json()["items"]
    assert [(a["id"], a["role"]) for a in as_agent] == [(grant["id"], "agent")]

    # The agent reads whom they act for: masked, with the granted scopes; others learn nothing.
    principal_url = f"/bff/v1/agents/{grant['id']}/principal"
    r = http.get(principal_url, headers=other.headers)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["elder"]["wangha"] == elder.wangha and seen["elder"]["age_band"] == "60+"
    assert seen["elder"]["name_masked"] == mask_name(elder.citizen.name)
    assert seen["elder"]["id_number_masked"] == mask_id_number(elder.citizen.id_number)
    assert elder.citizen.name not in r.text and elder.citizen.id_number not in r.text
    assert seen["scopes"] == ["affairs.view"]
    assert await legal.acting_for(res, other_id, elder_id, "affairs.view")
    assert not await legal.acting_for(res, other_id, elder_id, "affairs.submit")
    assert not await legal.acting_for(res, elder_id, other_id, "affairs.view")
    assert http.get(principal_url, headers=rep.headers).status_code == 404
    assert http.get(principal_url, headers=elder.headers).status_code == 404
    assert http.delete(f"/bff/v1/agents/{grant['id']}", headers=other.headers).status_code == 403
    assert http.delete(f"/bff/v1/agents/{grant['id']}", headers=rep.headers).status_code == 404

    # A second grant whose window has passed: 403 for the agent, and a page of one with a cursor.
    r = http.post("/bff/v1/agents", json={**body, "scopes": ["affairs.submit"], "days": 1}, headers=elder.headers)
    assert r.status_code == 201
    expired = r.json()
    await res.db.execute(
        "UPDATE identity.agents SET valid_until = now() - interval '1 second' WHERE id = $1", uuid.UUID(expired["id"])
    )
    r = http.get(f"/bff/v1/agents/{expired['id']}/principal", headers=other.headers)
    assert r.status_code == 403 and problem_type(r) == "agent-expired"
    assert not await legal.acting_for(res, other_id, elder_id, "affairs.submit")
    first = http.get("/bff/v1/agents", params={"limit": 1}, headers=elder.headers).json()
    assert [a["id"] for a in first["items"]] == [expired["id"]] and first["next_cursor"]
    second = http.get("/bff/v1/agents", params={"limit": 1, "cursor": first["next_cursor"]}, headers=elder.headers)
    assert [a["id"] for a in second.json()["items"]] == [grant["id"]]

    # Revoked by the elder: the agent may no longer act.
    r = http.delete(f"/bff/v1/agents/{grant['id']}", headers=elder.headers)
    assert r.status_code == 204, r.text
    r = http.get(principal_url, headers=other.headers)
    assert r.status_code == 403 and problem_type(r) == "agent-revoked"
    assert not await legal.acting_for(res, other_id, elder_id, "affairs.view")

    # Grants, revocation and every principal lookup are in the audit log.
    audit_after: int = await res.db.fetchval("SELECT count(*) FROM core.audit_log WHERE action LIKE 'identity.agent%'")
    assert audit_after - audit_before >= 8
    actions = await res.db.fetch(
        "SELECT action, result, actor FROM core.audit_log WHERE target = $1 ORDER BY seq", grant["id"]
    )
    seq = [(a["action"], a["result"]) for a in actions]
    assert seq[0] == ("identity.agent.grant", "ok")
    assert ("identity.agent.principal", "ok") in seq and ("identity.agent.revoke", "ok") in seq
    assert seq[-1] == ("identity.agent.principal", "revoked")
    assert {a["actor"] for a in actions if a["action"] == "identity.agent.revoke"} == {f"person:{elder_id}"}
