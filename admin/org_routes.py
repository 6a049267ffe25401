"""Organisations, administrator accounts and roles, each behind a permission and the caller's data scope."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Request, get, post, put
from litestar.params import JSONBody, Parameter

from admin.auth import Guarded, guarded, needs
from admin.guards import admin_of
from core.idempotency import IdempotencyKey, idempotent
from core.pagination import MAX_PAGE
from core.resources import Resources
from orgs import permissions, service
from orgs.models import (
    Admin,
    AdminPage,
    AdminRegistration,
    NewRole,
    OrgPage,
    PermissionInfo,
    PermissionList,
    Review,
    Role,
    RoleAssignment,
    RolePage,
    RoleUpdate,
)

Req = Request[Any, Any, Any]
Cursor = Annotated[str | None, Parameter(max_length=200, pattern=r"^[0-9]+\.[0-9a-f]{32}$")]
Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE)]
OrgCodeQ = Annotated[str | None, Parameter(max_length=40, pattern=r"^[0-9a-z-]{2,40}$")]


@get(
    "/v1/orgs",
    summary="Organisations in my data scope (optionally the children of one)",
    tags=["orgs"],
    **guarded("orgs.org.list"),
)
async def list_orgs(
    request: Req, res: Resources, parent: OrgCodeQ = None, cursor: Cursor = None, limit: Limit = 50
) -> OrgPage:
    return await service.list_orgs(res, admin_of(request), parent, cursor, limit)


@get(
    "/v1/permissions",
    summary="The catalogue of menu and button permissions",
    tags=["roles"],
    **guarded("orgs.role.list"),
)
async def list_permissions() -> PermissionList:
    return PermissionList(
        items=[PermissionInfo(code=c, name=n, menu=m, kind=k) for c, (n, m, k) in permissions.CATALOGUE.items()]
    )


class Roles(Guarded):
    path = "/v1/roles"
    tags = ("roles",)

    @get(summary="Built-in roles and the custom roles of organisations in my scope", **needs("orgs.role.list"))
    async def list_roles(self, request: Req, res: Resources, cursor: Cursor = None, limit: Limit = 50) -> RolePage:
        return await service.list_roles(res, admin_of(request), cursor, limit)

    @post(
        summary="Create a custom role of an organisation (never more than I hold)",
        status_code=201,
        middleware=[idempotent()],
        **needs("orgs.role.edit", "orgs.role.create"),
    )
    async def create_role(
        self, request: Req, res: Resources, data: JSONBody[NewRole], idempotency_key: IdempotencyKey = None
    ) -> Role:
        return await service.create_role(res, admin_of(request), data)

    @get("/{role_id:uuid}", summary="One role", **needs("orgs.role.list"))
    async def get_role(self, request: Req, res: Resources, role_id: uuid.UUID) -> Role:
        return await service.get_role(res, admin_of(request), role_id)

    @put(
        "/{role_id:uuid}",
        summary="Edit a custom role (never granting more than I hold; its holders sign in again)",
        **needs("orgs.role.edit", "orgs.role.edit"),
    )
    async def update_role(self, request: Req, res: Resources, role_id: uuid.UUID, data: JSONBody[RoleUpdate]) -> Role:
        return await service.update_role(res, admin_of(request), role_id, data)


@post(
    "/v1/admin-registrations",
    summary="Register as an administrator of an organisation (pending until reviewed)",
    tags=["admins"],
    status_code=201,
    opt={"action": "orgs.admin.register"},
)
async def register_admin(request: Req, res: Resources, data: JSONBody[AdminRegistration]) -> Admin:
    request.scope.setdefault("state", {})["op_username"] = data.username
    return await service.create_admin(res, data, by=None)


class Admins(Guarded):
    """Administrator accounts in the caller's data scope."""

    path = "/v1/admins"
    tags = ("admins",)

    @get(summary="Administrator accounts in my data scope", **needs("orgs.admin.list"))
    async def list_admins(
        self,
        request: Req,
        res: Resources,
        status: Literal["pending", "active", "rejected", "disabled"] | None = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> AdminPage:
        return await service.list_admins(res, admin_of(request), status, cursor, limit)

    @post(
        summary="Create an active administrator account in my scope",
        status_code=201,
        middleware=[idempotent()],
        **needs("orgs.admin.create", "orgs.admin.create"),
    )
    async def create_admin(
        self, request: Req, res: Resources, data: JSONBody[AdminRegistration], idempotency_key: IdempotencyKey = None
    ) -> Admin:
        return await service.create_admin(res, data, by=admin_of(request))

    @get("/{admin_id:uuid}", summary="One administrator account", **needs("orgs.admin.list"))
    async def get_admin(self, request: Req, res: Resources, admin_id: uuid.UUID) -> Admin:
        return await service.get_admin(res, admin_of(request), admin_id)

    @post(
        "/{admin_id:uuid}/review",
        summary="Approve or reject a pending registration (409 when already decided)",
        status_code=200,
        **needs("orgs.admin.review", "orgs.admin.review"),
    )
    async def review_admin(self, request: Req, res: Resources, admin_id: uuid.UUID, data: JSONBody[Review]) -> Admin:
        return await service.review_admin(res, admin_of(request), admin_id, data)

    @put(
        "/{admin_id:uuid}/roles",
        summary="Replace an administrator's roles (never granting more than I hold)",
        **needs("orgs.admin.assign", "orgs.admin.assign"),
    )
    async def assign_roles(
        self, request: Req, res: Resources, admin_id: uuid.UUID, data: JSONBody[RoleAssignment]
    ) -> Admin:
        return await service.assign_roles(res, admin_of(request), admin_id, data.roles)

    @post(
        "/{admin_id:uuid}/disable",
        summary="Disable an administrator (ends their sessions)",
        status_code=200,
        **needs("orgs.admin.disable", "orgs.admin.disable"),
    )
    async def disable_admin(self, request: Req, res: Resources, admin_id: uuid.UUID) -> Admin:
        return await service.disable_admin(res, admin_of(request), admin_id)


ROUTES: list[Any] = [list_orgs, list_permissions, Roles, register_admin, Admins]
