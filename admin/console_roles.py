"""Console pages of the role editor (角色权限): create and edit custom roles with their permissions grouped as the
menu tree (each menu, then its buttons), never granting more than the editor holds (orgs.service checks on the
server; the form only greys out what the editor lacks), and assign roles to an administrator. Everything goes
through orgs.service, as the API does (admin/org_routes.py); the operation log middleware records each post."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Response, get, post

from admin import pages
from core.problems import ProblemError
from core.resources import Resources
from orgs import service
from orgs.models import AdminPrincipal, NewRole, Role, RoleUpdate

ACTIVE = "/admin/console/roles"


def _form_role(data: dict[str, str], perms: list[str]) -> dict[str, Any]:
    return {
        "name": data.get("name", "").strip()[:100],
        "data_scope": data.get("data_scope", ""),
        "mask_level": int(data.get("mask_level", "0") or 0),
        "permissions": perms[:200],
    }


async def _editor(request: pages.Req, res: Resources, p: AdminPrincipal, role: Role | None) -> Response[Any]:
    return await pages.render(
        request,
        res,
        "role_edit.html",
        ACTIVE,
        me=p,
        title="编辑角色" if role else "新建角色",
        role=role,
        tree=service.menu_tree(),
        granted=set(role.permissions) if role else set(),
        org_default=(await service.org_code_of(res, p.org_id)) or "",
    )


@get("/console/roles/new", opt={"permission": "orgs.role.edit"}, **pages.NO_SCHEMA)
@pages.console_page
async def role_new(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.current_admin(request, "orgs.role.edit")
    return await _editor(request, res, p, None)


@get("/console/roles/{role_id:uuid}", opt={"permission": "orgs.role.edit"}, **pages.NO_SCHEMA)
async def role_page(request: pages.Req, res: Resources, role_id: uuid.UUID) -> Response[Any]:
    async def inner(request: pages.Req, res: Resources) -> Response[Any]:
        p = await pages.current_admin(request, "orgs.role.edit")
        return await _editor(request, res, p, await service.get_role(res, p, pages.path_uuid(request, "role_id")))

    return await pages.show(request, res, inner)


async def _fields(request: pages.Req) -> dict[str, str]:
    """The form's single-valued fields (the permission checkboxes repeat: `_permissions`)."""
    form = await request.form()
    return {k: str(form.get(k) or "") for k in ("code", "name", "org_code", "data_scope", "mask_level")}


async def _permissions(request: pages.Req) -> list[str]:
    form = await request.form()
    return [str(v) for v in form.getall("permissions", [])]


@post("/console/roles", opt={"action": "orgs.role.create"}, **pages.NO_SCHEMA)
async def role_create(request: pages.Req, res: Resources) -> Response[Any]:
    target = "/admin/console/roles/new"
    p = await pages.poster(request, "orgs.role.edit", target)
    if isinstance(p, Response):
        return p
    data = await _fields(request)
    try:
        fields = _form_role(data, await _permissions(request))
        role = msgspec.convert(
            {**fields, "code": data.get("code", "").strip(), "org_code": data.get("org_code", "").strip()}, NewRole
        )
        made = await service.create_role(res, p, role)
    except (ValueError, msgspec.ValidationError):
        return pages.back(target, error="请检查填写内容")
    except ProblemError as exc:
        return pages.refused(target, exc)
    request.scope.setdefault("state", {})["op_target"] = made.code
    return pages.back(ACTIVE, notice="角色已创建")


@post("/console/roles/{role_id:uuid}", opt={"action": "orgs.role.edit"}, **pages.NO_SCHEMA)
async def role_update(request: pages.Req, res: Resources, role_id: uuid.UUID) -> Response[Any]:
    target = f"/admin/console/roles/{role_id}"
    p = await pages.poster(request, "orgs.role.edit", target)
    if isinstance(p, Response):
        return p
    data = await _fields(request)
    try:
        update = msgspec.convert(_form_role(data, await _permissions(request)), RoleUpdate)
        saved = await service.update_role(res, p, role_id, update)
    except (ValueError, msgspec.ValidationError):
        return pages.back(target, error="请检查填写内容")
    except ProblemError as exc:
        return pages.refused(target, exc)
    request.scope.setdefault("state", {})["op_target"] = saved.code
    return pages.back(ACTIVE, notice="角色已保存，持有该角色的管理员需重新登录")


@get("/console/admins/{admin_id:uuid}/roles", opt={"permission": "orgs.admin.assign"}, **pages.NO_SCHEMA)
async def admin_roles_page(request: pages.Req, res: Resources, admin_id: uuid.UUID) -> Response[Any]:
    async def inner(request: pages.Req, res: Resources) -> Response[Any]:
        p = await pages.current_admin(request, "orgs.admin.assign")
        admin, roles = await service.assignable_roles(res, p, pages.path_uuid(request, "admin_id"))
        return await pages.render(
            request,
            res,
            "admin_roles.html",
            "/admin/console/admins",
            me=p,
            title="分配角色",
            admin=admin,
            roles=roles,
        )

    return await pages.show(request, res, inner)


@post("/console/admins/{admin_id:uuid}/roles", opt={"action": "orgs.admin.assign"}, **pages.NO_SCHEMA)
async def admin_roles_assign(request: pages.Req, res: Resources, admin_id: uuid.UUID) -> Response[Any]:
    target = f"/admin/console/admins/{admin_id}/roles"
    p = await pages.poster(request, "orgs.admin.assign", target)
    if isinstance(p, Response):
        return p
    form = await request.form()
    codes = [str(v)[:41] for v in form.getall("roles", [])][:10]
    try:
        done = await service.assign_roles(res, p, admin_id, codes)
    except ProblemError as exc:
        return pages.refused(target, exc)
    request.scope.setdefault("state", {})["op_target"] = done.username
    return pages.back(target, notice="角色已分配")


ROUTES: list[Any] = [role_new, role_page, role_create, role_update, admin_roles_page, admin_roles_assign]
