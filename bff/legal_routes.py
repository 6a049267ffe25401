"""App endpoints of legal persons: enterprises and their handlers (经办人), agents for citizens aged 60+ (代理人)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.params import JSONBody, Parameter

from bff.auth import client_ip, principal
from core.auth import BEARER_REQUIRED
from core.idempotency import idempotent
from core.resources import Resources
from identity.facade import (
    CURSOR_PATTERN,
    AgentGrant,
    AgentList,
    AgentPrincipal,
    AgentView,
    EnterpriseList,
    EnterpriseRequest,
    EnterpriseView,
    HandlerGrant,
    HandlerList,
    HandlerView,
    Principal,
    legal,
)

Req = Request[Any, Any, Any]
AUTH: dict[str, Any] = {"dependencies": {"me": principal}, "security": BEARER_REQUIRED}
Cursor = Annotated[str | None, Parameter(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")]
Limit = Annotated[int, Parameter(ge=1, le=legal.PAGE_MAX)]


@post(
    "/v1/enterprises",
    summary="Register an enterprise (统一社会信用代码) with me as its legal representative, real-name matched",
    tags=["legal persons"],
    status_code=201,
    middleware=[idempotent()],
    **AUTH,
)
async def register_enterprise(
    request: Req, res: Resources, me: Principal, data: JSONBody[EnterpriseRequest]
) -> EnterpriseView:
    return await legal.register_enterprise(res, me.person_id, data, ip=client_ip(request))


@get(
    "/v1/enterprises",
    summary="Enterprises I represent or handle (active authorisations), with my role",
    tags=["legal persons"],
    **AUTH,
)
async def my_enterprises(res: Resources, me: Principal, cursor: Cursor = None, limit: Limit = 100) -> EnterpriseList:
    return await legal.my_enterprises(res, me.person_id, cursor=cursor, limit=limit)


@post(
    "/v1/enterprises/{enterprise_id:uuid}/handlers",
    summary="Authorise a handler (经办人) by 网号 with scopes, valid at most one year (representative only)",
    tags=["legal persons"],
    status_code=201,
    middleware=[idempotent()],
    **AUTH,
)
async def grant_handler(
    request: Req, res: Resources, me: Principal, enterprise_id: uuid.UUID, data: JSONBody[HandlerGrant]
) -> HandlerView:
    return await legal.grant_handler(res, me.person_id, enterprise_id, data, ip=client_ip(request))


@get(
    "/v1/enterprises/{enterprise_id:uuid}/handlers",
    summary="The enterprise's handlers, revoked and expired included (representative only)",
    tags=["legal persons"],
    **AUTH,
)
async def list_handlers(
    res: Resources, me: Principal, enterprise_id: uuid.UUID, cursor: Cursor = None, limit: Limit = 100
) -> HandlerList:
    return await legal.list_handlers(res, me.person_id, enterprise_id, cursor=cursor, limit=limit)


@delete(
    "/v1/enterprises/{enterprise_id:uuid}/handlers/{handler_id:uuid}",
    summary="Revoke a handler (representative only)",
    tags=["legal persons"],
    **AUTH,
)
async def revoke_handler(
    request: Req, res: Resources, me: Principal, enterprise_id: uuid.UUID, handler_id: uuid.UUID
) -> None:
    await legal.revoke_handler(res, me.person_id, enterprise_id, handler_id, ip=client_ip(request))


@post(
    "/v1/agents",
    summary="Appoint an agent (代理人) by 网号 for up to 90 days (citizens aged 60+)",
    tags=["agents"],
    status_code=201,
    middleware=[idempotent()],
    **AUTH,
)
async def grant_agent(request: Req, res: Resources, me: Principal, data: JSONBody[AgentGrant]) -> AgentView:
    return await legal.grant_agent(res, me.person_id, data, ip=client_ip(request))


@get("/v1/agents", summary="My agent grants, as elder and as agent", tags=["agents"], **AUTH)
async def my_agents(res: Resources, me: Principal, cursor: Cursor = None, limit: Limit = 100) -> AgentList:
    return await legal.my_agents(res, me.person_id, cursor=cursor, limit=limit)


@delete("/v1/agents/{grant_id:uuid}", summary="Revoke an agent grant (the elder)", tags=["agents"], **AUTH)
async def revoke_agent(request: Req, res: Resources, me: Principal, grant_id: uuid.UUID) -> None:
    await legal.revoke_agent(res, me.person_id, grant_id, ip=client_ip(request))


@get(
    "/v1/agents/{grant_id:uuid}/principal",
    summary="As the agent: whom I act for (masked) and with which scopes, while the grant is active",
    tags=["agents"],
    **AUTH,
)
async def agent_principal(request: Req, res: Resources, me: Principal, grant_id: uuid.UUID) -> AgentPrincipal:
    return await legal.agent_principal(res, me.person_id, grant_id, ip=client_ip(request))


ROUTES = [
    register_enterprise,
    my_enterprises,
    grant_handler,
    list_handlers,
    revoke_handler,
    grant_agent,
    my_agents,
    revoke_agent,
    agent_principal,
]
