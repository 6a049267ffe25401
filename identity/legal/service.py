"""Legal persons: enterprises by unified social credit code bound to their legal representative, the handlers
(经办人) the representative authorises, and agents (代理人) whom citizens aged 60 or more let act on their behalf.

Other domains ask `handler_for` ("may this person act for this enterprise with this scope?") and `acting_for`
("may this agent act for this elder with this scope?"). Personal data leaves only masked; every grant, revocation
and agent lookup is audited with actor `person:<id>`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from core import audit, clock
from core.masking import mask_id_number, mask_name
from core.pagination import decode_cursor
from core.pagination import next_cursor as _next_cursor
from core.problems import ProblemError, not_found
from core.resources import Resources
from identity import people
from identity.errors import conflict, forbidden, unprocessable
from identity.legal import repo
from identity.legal.models import (
    LEGAL_SCOPES,
    AgentGrant,
    AgentList,
    AgentPrincipal,
    AgentView,
    ElderView,
    EnterpriseList,
    EnterpriseRequest,
    EnterpriseView,
    HandlerGrant,
    HandlerList,
    HandlerView,
)
from identity.numbers import normalise_id_number, valid_uscc

ELDER_AGE = 60
AGENT_MIN_AGE = 18
MAX_AGENT_DAYS = 90
MAX_HANDLER_DAYS = 366  # "at most one year ahead", a leap year included
CLOCK_SKEW = timedelta(minutes=5)
PAGE_MAX = 100
MAX_ACTIVE_HANDLERS = 200  # per enterprise
MAX_ACTIVE_AGENTS = 20  # per elder


# ---------------------------------------------------------------- helpers


def _today() -> date:
    return clock.beijing_today()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def _name_masked(res: Resources, name_enc: str) -> str:
    return mask_name(res.fields.decrypt(name_enc, context=people.CTX_NAME))


def _scopes(requested: list[str]) -> list[str]:
    """Duplicates dropped, in the canonical order."""
    return [s for s in LEGAL_SCOPES if s in requested]


async def _person_by_wangha(res: Resources, wangha: str) -> uuid.UUID:
    person_id = await repo.person_id_by_wangha(res.db, wangha)
    if person_id is None:
        raise ProblemError(
            404, "person-not-found", "No enrolled person has this 网号", "该网号未注册", "person not found"
        )
    return person_id


# ---------------------------------------------------------------- enterprises


def _enterprise_view(res: Resources, r: Any) -> EnterpriseView:
    representative = r["role"] == "representative"
    return EnterpriseView(
        id=str(r["id"]),
        uscc=r["uscc"],
        name=r["name"],
        role=r["role"],
        representative_wangha=r["rep_wangha"],
        representative_name_masked=_name_masked(res, r["rep_name_enc"]),
        scopes=list(LEGAL_SCOPES) if representative else list(r["scopes"]),
        valid_until=None if representative else _iso(r["valid_until"]),
        created_at=r["created_at"].isoformat(),
    )


async def register_enterprise(res: Resources, person_id: str, req: EnterpriseRequest, *, ip: str) -> EnterpriseView:
    """The signed-in person registers an enterprise whose legal representative they are, real-name matched."""
    if not valid_uscc(req.uscc):
        raise unprocessable(
            "uscc-invalid",
            "The unified social credit code is not valid",
            "统一社会信用代码不正确",
            "the check character does not match (GB 32100)",
            field="uscc",
        )
    me = await people.load(res, person_id)
    if req.representative_name.strip() != me.name or normalise_id_number(
        req.representative_id_number
    ) != normalise_id_number(me.id_number):
        raise unprocessable(
            "representative-mismatch",
            "The legal representative is not the signed-in person",
            "法定代表人与当前登录人不一致",
            "the representative's name and ID number must be those of the signed-in person",
            field="representative_id_number",
        )
    enterprise_id = uuid.uuid4()
    name = req.name.strip()
    async with res.db.acquire() as conn, conn.transaction():
        try:
            created = await repo.insert_enterprise(conn, enterprise_id, req.uscc, name, uuid.UUID(person_id))
        except asyncpg.UniqueViolationError as exc:
            raise conflict(
                "enterprise-registered",
                "This unified social credit code is already registered",
                "该统一社会信用代码已注册",
            ) from exc
        await audit.record(
            conn,
            actor=f"person:{person_id}",
            action="identity.enterprise.register",
            target=req.uscc,
            ip=ip,
            detail={"enterprise": str(enterprise_id)},
        )
    return EnterpriseView(
        id=str(enterprise_id),
        uscc=req.uscc,
        name=name,
        role="representative",
        representative_wangha=me.wangha,
        representative_name_masked=mask_name(me.name),
        scopes=list(LEGAL_SCOPES),
        valid_until=None,
        created_at=created.isoformat(),
    )


async def my_enterprises(res: Resources, person_id: str, *, cursor: str | None, limit: int) -> EnterpriseList:
    """Enterprises where I am the representative or an active handler, newest first."""
    limit = max(1, min(limit, PAGE_MAX))
    after, after_id = decode_cursor(cursor)
    rows = await repo.enterprises_of(res.db, uuid.UUID(person_id), after, after_id, limit)
    return EnterpriseList(items=[_enterprise_view(res, r) for r in rows], next_cursor=_next_cursor(rows, limit))


async def _enterprise_as_representative(res: Resources, person_id: str, enterprise_id: uuid.UUID) -> None:
    representative = await repo.representative_of(res.db, enterprise_id)
    if representative is None:
        raise not_found("enterprise")
    if str(representative) != person_id:
        raise forbidden(
            "not-representative",
            "Only the legal representative may manage handlers",
            "仅法定代表人可管理经办人",
        )


# ---------------------------------------------------------------- handlers (经办人)


def _handler_view(res: Resources, r: Any, now: datetime) -> HandlerView:
    return HandlerView(
        id=str(r["id"]),
        enterprise_id=str(r["enterprise_id"]),
        wangha=r["wangha"],
        name_masked=_name_masked(res, r["name_enc"]),
        scopes=list(r["scopes"]),
        valid_until=r["valid_until"].isoformat(),
        created_at=r["created_at"].isoformat(),
        revoked_at=_iso(r["revoked_at"]),
        active=r["revoked_at"] is None and r["valid_until"] > now,
    )


async def grant_handler(
    res: Resources, person_id: str, enterprise_id: uuid.UUID, req: HandlerGrant, *, ip: str
) -> HandlerView:
    """The representative authorises (or re-authorises, replacing scopes and validity) an enrolled person."""
    await _enterprise_as_representative(res, person_id, enterprise_id)
    now = datetime.now(UTC)
    valid_until = req.valid_until.astimezone(UTC)
    if not now < valid_until <= now + timedelta(days=MAX_HANDLER_DAYS) + CLOCK_SKEW:
        raise unprocessable(
            "handler-validity",
            "The validity must end in the future and at most one year ahead",
            "授权有效期须晚于当前时间且不超过一年",
            field="valid_until",
        )
    handler_person = await _person_by_wangha(res, req.wangha)
    if str(handler_person) == person_id:
        raise unprocessable(
            "handler-self",
            "The legal representative needs no handler authorisation",
            "法定代表人无需授权自己为经办人",
            field="wangha",
        )
    scopes = _scopes(list(req.scopes))
    async with res.db.acquire() as conn, conn.transaction():
        await repo.lock_enterprise(conn, enterprise_id)
        active = await repo.count_other_active_handlers(conn, enterprise_id, handler_person)
        if active >= MAX_ACTIVE_HANDLERS:
            raise conflict(
                "handler-limit",
                f"At most {MAX_ACTIVE_HANDLERS} active handlers per enterprise",
                "经办人数量已达上限",
            )
        row = await repo.upsert_handler(conn, uuid.uuid4(), enterprise_id, handler_person, scopes, valid_until)
        assert row is not None
        await audit.record(
            conn,
            actor=f"person:{person_id}",
            action="identity.handler.grant",
            target=str(row["id"]),
            ip=ip,
            detail={
                "enterprise": str(enterprise_id),
                "handler": req.wangha,
                "scopes": scopes,
                "valid_until": valid_until.isoformat(),
            },
        )
        person = await repo.person_wangha_name(conn, handler_person)
    assert person is not None
    return _handler_view(res, {**dict(row.items()), **dict(person.items())}, now)


async def list_handlers(
    res: Resources, person_id: str, enterprise_id: uuid.UUID, *, cursor: str | None, limit: int
) -> HandlerList:
    await _enterprise_as_representative(res, person_id, enterprise_id)
    limit = max(1, min(limit, PAGE_MAX))
    after, after_id = decode_cursor(cursor)
    rows = await repo.handlers_of(res.db, enterprise_id, after, after_id, limit)
    now = datetime.now(UTC)
    return HandlerList(items=[_handler_view(res, r, now) for r in rows], next_cursor=_next_cursor(rows, limit))


async def revoke_handler(
    res: Resources, person_id: str, enterprise_id: uuid.UUID, handler_id: uuid.UUID, *, ip: str
) -> None:
    """Idempotent: revoking a revoked handler changes nothing (and is not audited again)."""
    await _enterprise_as_representative(res, person_id, enterprise_id)
    async with res.db.acquire() as conn, conn.transaction():
        row = await repo.lock_handler(conn, handler_id, enterprise_id)
        if row is None:
            raise not_found("handler")
        if row["revoked_at"] is not None:
            return
        await repo.revoke_handler(conn, handler_id)
        await audit.record(
            conn,
            actor=f"person:{person_id}",
            action="identity.handler.revoke",
            target=str(handler_id),
            ip=ip,
            detail={"enterprise": str(enterprise_id)},
        )


async def handler_for(res: Resources, person_id: str, enterprise_id: str, scope: str) -> bool:
    """May this person act for this enterprise with this scope: its legal representative, or an active handler
    (not revoked, validity not passed) granted the scope."""
    pid, eid = _uuid(person_id), _uuid(enterprise_id)
    if pid is None or eid is None or scope not in LEGAL_SCOPES:
        return False
    return await repo.may_act_for_enterprise(res.db, pid, eid, scope)


# ---------------------------------------------------------------- agents for citizens aged 60+ (代理人)


def _agent_view(res: Resources, r: Any, me: uuid.UUID, now: datetime) -> AgentView:
    return AgentView(
        id=str(r["id"]),
        role="elder" if r["elder_id"] == me else "agent",
        elder_wangha=r["elder_wangha"],
        elder_name_masked=_name_masked(res, r["elder_name_enc"]),
        agent_wangha=r["agent_wangha"],
        agent_name_masked=_name_masked(res, r["agent_name_enc"]),
        scopes=list(r["scopes"]),
        valid_from=r["valid_from"].isoformat(),
        valid_until=r["valid_until"].isoformat(),
        created_at=r["created_at"].isoformat(),
        revoked_at=_iso(r["revoked_at"]),
        active=r["revoked_at"] is None and r["valid_from"] <= now < r["valid_until"],
    )


async def grant_agent(res: Resources, person_id: str, req: AgentGrant, *, ip: str) -> AgentView:
    """The signed-in elder (60 or older by birth date) lets an enrolled adult act for them for `days` days."""
    elder = await people.load(res, person_id)
    today = _today()
    age = people.age_on(elder.birth_date, today)
    if age is None or age < ELDER_AGE:
        raise forbidden(
            "agent-age",
            f"Only citizens aged {ELDER_AGE} or more may appoint an agent",
            f"仅年满{ELDER_AGE}周岁的公民可委托代理人",
        )
    agent_id = await _person_by_wangha(res, req.agent_wangha)
    if str(agent_id) == person_id:
        raise unprocessable(
            "agent-self", "You cannot appoint yourself as agent", "不能委托本人为代理人", field="agent_wangha"
        )
    agent = await people.load(res, str(agent_id))
    agent_age = people.age_on(agent.birth_date, today)
    if agent_age is not None and agent_age < AGENT_MIN_AGE:
        raise unprocessable("agent-minor", "The agent must be an adult", "代理人须为成年人", field="agent_wangha")
    scopes = _scopes(list(req.scopes))
    now = datetime.now(UTC)
    grant_id = uuid.uuid4()
    elder_uuid = uuid.UUID(person_id)
    async with res.db.acquire() as conn, conn.transaction():
        # Serialise one elder's grants so the cap holds under concurrent requests.
        await repo.lock_agents_of(conn, person_id)
        active = await repo.count_active_agents(conn, elder_uuid)
        if active >= MAX_ACTIVE_AGENTS:
            raise conflict("agent-limit", f"At most {MAX_ACTIVE_AGENTS} active agent grants", "代理授权数量已达上限")
        await repo.insert_agent(conn, grant_id, elder_uuid, agent_id, scopes, now, now + timedelta(days=req.days))
        await audit.record(
            conn,
            actor=f"person:{person_id}",
            action="identity.agent.grant",
            target=str(grant_id),
            ip=ip,
            detail={"agent": agent.wangha, "scopes": scopes, "days": req.days},
        )
        row = await repo.agent_view_row(conn, grant_id)
    assert row is not None
    return _agent_view(res, row, elder_uuid, now)


async def my_agents(res: Resources, person_id: str, *, cursor: str | None, limit: int) -> AgentList:
    """Grants I made as elder and grants made to me as agent, newest first (revoked and expired included)."""
    limit = max(1, min(limit, PAGE_MAX))
    after, after_id = decode_cursor(cursor)
    me = uuid.UUID(person_id)
    rows = await repo.agents_of(res.db, me, after, after_id, limit)
    now = datetime.now(UTC)
    return AgentList(items=[_agent_view(res, r, me, now) for r in rows], next_cursor=_next_cursor(rows, limit))


async def revoke_agent(res: Resources, person_id: str, grant_id: uuid.UUID, *, ip: str) -> None:
    """The elder ends a grant (idempotent). The agent is told 403; anyone else learns nothing (404)."""
    async with res.db.acquire() as conn, conn.transaction():
        row = await repo.lock_agent(conn, grant_id)
        if row is None or person_id not in (str(row["elder_id"]), str(row["agent_id"])):
            raise not_found("agent grant")
        if str(row["elder_id"]) != person_id:
            raise forbidden("not-elder", "Only the elder may revoke this grant", "仅委托人可撤销代理授权")
        if row["revoked_at"] is not None:
            return
        await repo.revoke_agent(conn, grant_id)
        await audit.record(
            conn,
            actor=f"person:{person_id}",
            action="identity.agent.revoke",
            target=str(grant_id),
            ip=ip,
            detail={},
        )


async def agent_principal(res: Resources, person_id: str, grant_id: uuid.UUID, *, ip: str) -> AgentPrincipal:
    """Whom the signed-in agent acts for under this grant, while it is active. Every lookup is audited."""
    row = await repo.agent_grant(res.db, grant_id)
    now = datetime.now(UTC)
    if row is None or str(row["agent_id"]) != person_id:
        await audit.record(
            res.db,
            actor=f"person:{person_id}",
            action="identity.agent.principal",
            target=str(grant_id),
            result="not-found",
            ip=ip,
        )
        raise not_found("agent grant")
    active = row["revoked_at"] is None and row["valid_from"] <= now < row["valid_until"]
    if not active:
        state = "revoked" if row["revoked_at"] is not None else "expired"
        await audit.record(
            res.db,
            actor=f"person:{person_id}",
            action="identity.agent.principal",
            target=str(grant_id),
            result=state,
            ip=ip,
            detail={"elder": str(row["elder_id"])},
        )
        raise forbidden(
            f"agent-{state}",
            "This agent grant is no longer active",
            "代理授权已失效",
            f"the grant was {state}",
        )
    elder = await people.load(res, str(row["elder_id"]))
    age = people.age_on(elder.birth_date, _today())
    await audit.record(
        res.db,
        actor=f"person:{person_id}",
        action="identity.agent.principal",
        target=str(grant_id),
        ip=ip,
        detail={"elder": elder.wangha, "scopes": list(row["scopes"])},
    )
    return AgentPrincipal(
        agent_id=str(grant_id),
        elder=ElderView(
            wangha=elder.wangha,
            name_masked=mask_name(elder.name),
            id_number_masked=mask_id_number(elder.id_number),
            age_band=people.age_band(age) if age is not None else "",
        ),
        scopes=list(row["scopes"]),
        valid_from=row["valid_from"].isoformat(),
        valid_until=row["valid_until"].isoformat(),
    )


async def acting_for(res: Resources, agent_person_id: str, elder_person_id: str, scope: str) -> bool:
    """May this agent act for this elder with this scope: an active (not revoked, within its window) grant."""
    agent, elder = _uuid(agent_person_id), _uuid(elder_person_id)
    if agent is None or elder is None or scope not in LEGAL_SCOPES:
        return False
    return await repo.may_act_for_elder(res.db, agent, elder, scope)
