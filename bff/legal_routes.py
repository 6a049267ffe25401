"""App endpoints of legal persons: enterprises and their handlers (经办人), agents for citizens aged 60+ (代理人)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.params import JSONBody, Parameter

from bff.auth import SignedIn, client_ip
from core.idempotency import IdempotencyKey, idempotent
from core.resources import Resources
from identity.facade import Principal, legal, legal_models

Req = Request[Any, Any, Any]
Cursor = Annotated[
    str | None, Parameter(pattern=legal_models.CURSOR_PATTERN, description="next_cursor of the previous page")
]
Limit = Annotated[int, Parameter(ge=1, le=legal.PAGE_MAX)]


class Enterprises(SignedIn):
    """Enterprises I represent or handle, and their handlers."""

    path = "/v1/enterprises"
    tags = ("legal persons",)

    @post(
        summary="Register an enterprise (统一社会信用代码) with me as its legal representative, real-name matched",
        status_code=201,
        middleware=[idempotent()],
    )
    async def register_enterprise(
        self,
        request: Req,
        res: Resources,
        me: Principal,
        data: JSONBody[legal_models.EnterpriseRequest],
        idempotency_key: IdempotencyKey = None,
    ) -> legal_models.EnterpriseView:
        return await legal.register_enterprise(res, me.person_id, data, ip=client_ip(request))

    @get(summary="Enterprises I represent or handle (active authorisations), with my role")
    async def my_enterprises(
        self, res: Resources, me: Principal, cursor: Cursor = None, limit: Limit = 100
    ) -> legal_models.EnterpriseList:
        return await legal.my_enterprises(res, me.person_id, cursor=cursor, limit=limit)

    @post(
        "/{enterprise_id:uuid}/handlers",
        summary="Authorise a handler (经办人) by 网号 with scopes, valid at most one year (representative only)",
        status_code=201,
        middleware=[idempotent()],
    )
    async def grant_handler(
        self,
        request: Req,
        res: Resources,
        me: Principal,
        enterprise_id: uuid.UUID,
        data: JSONBody[legal_models.HandlerGrant],
        idempotency_key: IdempotencyKey = None,
    ) -> legal_models.HandlerView:
        return await legal.grant_handler(res, me.person_id, enterprise_id, data, ip=client_ip(request))

    @get(
        "/{enterprise_id:uuid}/handlers",
        summary="The enterprise's handlers, revoked and expired included (representative only)",
    )
    async def list_handlers(
        self, res: Resources, me: Principal, enterprise_id: uuid.UUID, cursor: Cursor = None, limit: Limit = 100
    ) -> legal_models.HandlerList:
        return await legal.list_handlers(res, me.person_id, enterprise_id, cursor=cursor, limit=limit)

    @delete("/{enterprise_id:uuid}/handlers/{handler_id:uuid}", summary="Revoke a handler (representative only)")
    async def revoke_handler(
        self, request: Req, res: Resources, me: Principal, enterprise_id: uuid.UUID, handler_id: uuid.UUID
    ) -> None:
        await legal.revoke_handler(res, me.person_id, enterprise_id, handler_id, ip=client_ip(request))


class Agents(SignedIn):
    """Agents (代理人) of citizens aged 60+: appointed by the elder, acting within the grant's scopes."""

    path = "/v1/agents"
    tags = ("agents",)

    @post(
        summary="Appoint an agent (代理人) by 网号 for up to 90 days (citizens aged 60+)",
        status_code=201,
        middleware=[idempotent()],
    )
    async def grant_agent(
        self,
        request: Req,
        res: Resources,
        me: Principal,
        data: JSONBody[legal_models.AgentGrant],
        idempotency_key: IdempotencyKey = None,
    ) -> legal_models.AgentView:
        return await legal.grant_agent(res, me.person_id, data, ip=client_ip(request))

    @get(summary="My agent grants, as elder and as agent")
    async def my_agents(
        self, res: Resources, me: Principal, cursor: Cursor = None, limit: Limit = 100
    ) -> legal_models.AgentList:
        return await legal.my_agents(res, me.person_id, cursor=cursor, limit=limit)

    @delete("/{grant_id:uuid}", summary="Revoke an agent grant (the elder)")
    async def revoke_agent(self, request: Req, res: Resources, me: Principal, grant_id: uuid.UUID) -> None:
        await legal.revoke_agent(res, me.person_id, grant_id, ip=client_ip(request))

    @get(
        "/{grant_id:uuid}/principal",
        summary="As the agent: whom I act for (masked) and with which scopes, while the grant is active",
    )
    async def agent_principal(
        self, request: Req, res: Resources, me: Principal, grant_id: uuid.UUID
    ) -> legal_models.AgentPrincipal:
        return await legal.agent_principal(res, me.person_id, grant_id, ip=client_ip(request))


ROUTES = [Enterprises, Agents]
