"""Rules of organisations, administrators and roles: sign-in, principals, registration and review."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from core import audit
from core.masking import mask_phone
from core.pagination import decode_cursor, next_cursor
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources
from orgs import passwords, permissions, repo, sessions, totp
from orgs.models import (
    Admin,
    AdminPage,
    AdminPrincipal,
    AdminRegistration,
    NewRole,
    Org,
    OrgPage,
    Review,
    Role,
    RolePage,
    RoleUpdate,
    SessionToken,
    SignIn,
)
from orgs.scope import can_see, four_eyes, sql_scope

MAX_FAILURES = 5
LOCK_SECONDS = 900
CTX_PHONE = "orgs.admin_phone"
CTX_TOTP = "orgs.admin_totp"


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", "Forbidden", "无权访问", detail)


def out_of_scope() -> ProblemError:
    return ProblemError(403, "out-of-scope", "Outside your data scope", "超出数据权限范围", "outside your data scope")


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, "conflict", "Conflict", "请求冲突", detail)


def _bad_credentials() -> ProblemError:
    return ProblemError(401, "bad-credentials", "Wrong username or password", "用户名或密码错误", "sign-in refused")


# --- principals and sign-in ------------------------------------------------------------------------------------


async def principal_for(res: Resources, row: asyncpg.Record) -> AdminPrincipal:
    roles = await repo.roles_of(res.db, row["id"])
    perms: set[str] = set()
    scope, mask = "own", 0
    for r in roles:
        perms.update(r["permissions"])
        if permissions.SCOPE_RANK[r["data_scope"]] > permissions.SCOPE_RANK[scope]:
            scope = r["data_scope"]
        mask = max(mask, r["mask_level"])
    return AdminPrincipal(
        id=row["id"],
        username=row["username"],
        org_id=row["org_id"],
        org_path=row["org_path"],
        org_level=row["org_level"],
        region_code=row["region_code"],
        data_scope=scope,
        permissions=frozenset(perms),
        roles=tuple(r["code"] for r in roles),
        mask_level=mask,
    )


async def _session(res: Resources, row: asyncpg.Record) -> SessionToken:
    p = await principal_for(res, row)
    token = await sessions.issue(res, p)
    return SessionToken(
        access_token=token,
        token_type="Bearer",  # noqa: S106
        expires_in=sessions.idle_seconds(res.settings),
        username=p.username,
        permissions=sorted(p.permissions),
    )


async def sign_in(res: Resources, data: SignIn, ip: str) -> SessionToken:
    row = await repo.admin_by_username(res.db, data.username)
    if row is None:
        await passwords.check_password(data.password, passwords.DUMMY)  # same time as a real check
        raise _bad_credentials()
    # Count the attempt and decide on the lock in one statement before any secret is compared (DESIGN: attempt
    # counters): a burst of guesses is judged like the same guesses in sequence. Password and one-time code are one
    # attempt; it stays counted until the sign-in succeeds.
    if await repo.count_attempt(res.db, row["id"], MAX_FAILURES, LOCK_SECONDS) is None:
        raise ProblemError(
            423, "account-locked", "Account locked after repeated failures", "连续登录失败，账号已锁定", "locked"
        )
    if not await passwords.check_password(data.password, row["password_hash"]):
        raise _bad_credentials()
    if row["status"] != "active":
        raise ProblemError(403, "account-inactive", "Account not active", "账号未启用", f"account is {row['status']}")
    step: int | None = None
    if row["totp_enabled"]:
        if data.totp is None:
            raise ProblemError(
                401, "totp-required", "One-time code required", "需要动态验证码", "totp required", field="totp"
            )
        secret = res.fields.decrypt(row["totp_secret_enc"], context=CTX_TOTP)
        step = totp.verify(secret, data.totp, after_step=row["totp_last_step"])
        if step is None:
            raise ProblemError(401, "totp-invalid", "Wrong one-time code", "动态验证码错误", "totp", field="totp")
    if not await repo.record_success(res.db, row["id"], step):
        raise ProblemError(401, "totp-invalid", "One-time code already used", "动态验证码已使用", "totp", field="totp")
    await audit.record(res.db, actor=f"admin:{row['username']}", action="admin.sign_in", ip=ip)
    return await _session(res, row)


async def sign_in_by_sub(res: Resources, sub: str, ip: str) -> SessionToken:
    """QR sign-in: the 苏证通 account (OIDC sub at the admin-console client) bound to an active account."""
    row = await repo.admin_by_sub(res.db, sub)
    if row is None or row["status"] != "active":
        raise ProblemError(
            403, "not-bound", "No administrator bound to this 苏证通 account", "该苏证通账号未绑定管理员", "not bound"
        )
    await audit.record(res.db, actor=f"admin:{row['username']}", action="admin.sign_in_qr", ip=ip)
    return await _session(res, row)


async def bind_sub(res: Resources, p: AdminPrincipal, sub: str) -> None:
    if not await repo.bind_sub(res.db, p.id, sub):
        raise conflict("this 苏证通 account is bound to another administrator")
    await audit.record(res.db, actor=f"admin:{p.username}", action="admin.bind_qr")


# --- TOTP enrolment --------------------------------------------------------------------------------------------


async def start_totp(res: Resources, p: AdminPrincipal) -> tuple[str, str]:
    secret = totp.new_secret()
    await repo.set_totp(res.db, p.id, res.fields.encrypt(secret, context=CTX_TOTP), False)
    return secret, totp.otpauth_uri(secret, p.username)


async def confirm_totp(res: Resources, p: AdminPrincipal, code: str) -> None:
    row = await repo.admin_by_id(res.db, p.id)
    if row is None or row["totp_secret_enc"] is None:
        raise invalid("code", "start TOTP enrolment first")
    if totp.verify(res.fields.decrypt(row["totp_secret_enc"], context=CTX_TOTP), code) is None:
        raise invalid("code", "wrong one-time code")
    await repo.set_totp(res.db, p.id, row["totp_secret_enc"], True)
    await audit.record(res.db, actor=f"admin:{p.username}", action="admin.totp_enabled")


# --- organisations ---------------------------------------------------------------------------------------------


def _org(r: asyncpg.Record) -> Org:
    return Org(**{k: r[k] for k in Org.__struct_fields__})


async def org_by_code(res: Resources, code: str) -> Org | None:
    r = await repo.org_by_code(res.db, code)
    return None if r is None else _org(r)


async def org_name(res: Resources, org_id: uuid.UUID) -> str:
    """The organisation's name ("" when there is none)."""
    return await repo.org_name(res.db, org_id) or ""


async def org_code_of(res: Resources, org_id: uuid.UUID) -> str | None:
    r = await repo.org_by_id(res.db, org_id)
    return None if r is None else str(r["code"])


async def visible_org(res: Resources, p: AdminPrincipal, code: str, field: str = "org_code") -> asyncpg.Record:
    r = await repo.org_by_code(res.db, code)
    if r is None:
        raise invalid(field, "no such organisation")
    if not can_see(p, r["path"]):
        raise out_of_scope()
    return r


async def list_orgs(
    res: Resources, p: AdminPrincipal, parent_code: str | None, cursor: str | None, limit: int
) -> OrgPage:
    parent_id = None
    if parent_code:
        parent_id = (await visible_org(res, p, parent_code, "parent"))["id"]
    at, rid = decode_cursor(cursor)
    rows = await repo.list_orgs(
        res.db,
        sql_scope(p, "path", 1),
        parent_id=parent_id,
        after=(at, rid) if at and rid else None,
        limit=limit,
    )
    return OrgPage(items=[_org(r) for r in rows], next_cursor=next_cursor(rows, limit))


# --- roles -----------------------------------------------------------------------------------------------------


def _role(r: asyncpg.Record) -> Role:
    fields: dict[str, Any] = {k: r[k] for k in Role.__struct_fields__}
    fields["permissions"] = list(r["permissions"])
    return Role(**fields)


def _check_grantable(p: AdminPrincipal, perms: set[str], scope: str, mask_level: int) -> None:
    """Nobody grants more than they hold: permissions, data scope and visible masking level."""
    if not p.has("*") and not perms <= p.permissions:
        lacking = sorted(perms - p.permissions)
        raise ProblemError(
            403,
            "grant-exceeds-own",
            "Cannot grant a permission you do not hold",
            "不能授予本人未拥有的权限",
            f"cannot grant permissions you lack: {', '.join(lacking)}",
            field="permissions",
        )
    if permissions.SCOPE_RANK[scope] > permissions.SCOPE_RANK[p.data_scope]:
        raise forbidden("cannot grant a wider data scope than yours")
    if mask_level > p.mask_level:
        raise forbidden("cannot grant a higher masking level than yours")


async def create_role(res: Resources, p: AdminPrincipal, data: NewRole) -> Role:
    org = await visible_org(res, p, data.org_code)
    unknown = set(data.permissions) - permissions.ALL
    if unknown:
        raise invalid("permissions", f"unknown permissions: {', '.join(sorted(unknown))}")
    _check_grantable(p, set(data.permissions), data.data_scope, data.mask_level)
    row = await repo.insert_role(
        res.db,
        code=data.code,
        name=data.name,
        org_id=org["id"],
        data_scope=data.data_scope,
        mask_level=data.mask_level,
        permissions=sorted(set(data.permissions)),
    )
    if row is None:
        raise conflict("a role with this code exists in the organisation")
    await audit.record(res.db, actor=f"admin:{p.username}", action="orgs.role.create", target=data.code)
    return _role(row)


async def update_role(res: Resources, p: AdminPrincipal, role_id: uuid.UUID, data: RoleUpdate) -> Role:
    """Edit a custom role of an organisation in scope (built-in roles are fixed); its holders' sessions end so
    their next sign-in carries the new permissions."""
    row = await repo.role_by_id(res.db, role_id)
    if row is None or not (row["builtin"] or can_see(p, row["org_path"])):
        raise not_found("role")
    if row["builtin"]:
        raise forbidden("built-in roles are fixed; create a custom role instead")
    unknown = set(data.permissions) - permissions.ALL
    if unknown:
        raise invalid("permissions", f"unknown permissions: {', '.join(sorted(unknown))}")
    _check_grantable(p, set(data.permissions), data.data_scope, data.mask_level)
    async with res.db.acquire() as conn, conn.transaction():
        updated = await repo.update_role(
            conn,
            role_id,
            name=data.name,
            data_scope=data.data_scope,
            mask_level=data.mask_level,
            permissions=sorted(set(data.permissions)),
        )
        if updated is None:
            raise not_found("role")
        holders = await repo.holders_of(conn, role_id)
        await audit.record(
            conn,
            actor=f"admin:{p.username}",
            action="orgs.role.edit",
            target=row["code"],
            detail={"permissions": sorted(set(data.permissions)), "data_scope": data.data_scope},
        )
    for admin_id in holders:
        await sessions.revoke_all(res, admin_id)
    return _role(updated)


async def get_role(res: Resources, p: AdminPrincipal, role_id: uuid.UUID) -> Role:
    row = await repo.role_by_id(res.db, role_id)
    if row is None or (not row["builtin"] and not can_see(p, row["org_path"])):
        raise not_found("role")
    return _role(row)


async def list_roles(res: Resources, p: AdminPrincipal, cursor: str | None, limit: int) -> RolePage:
    at, rid = decode_cursor(cursor)
    rows = await repo.list_roles(res.db, sql_scope(p, "o.path", 1), (at, rid) if at and rid else None, limit)
    return RolePage(items=[_role(r) for r in rows], next_cursor=next_cursor(rows, limit))


def _ancestors(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


async def _resolve_roles(res: Resources, codes: list[str], org_path: str) -> list[asyncpg.Record]:
    ancestors = await res.db.fetch("SELECT id FROM orgs.orgs WHERE path = ANY($1)", _ancestors(org_path))
    rows = await repo.roles_assignable(res.db, list(set(codes)), [a["id"] for a in ancestors])
    found = {r["code"] for r in rows}
    missing = set(codes) - found
    if missing:
        raise invalid("roles", f"unknown roles: {', '.join(sorted(missing))}")
    return list(rows)


async def assignable_roles(res: Resources, p: AdminPrincipal, admin_id: uuid.UUID) -> tuple[Admin, list[Role]]:
    """An administrator in scope and the roles `p` may give them: built-in roles and custom roles of their
    organisation and its ancestors, none granting more than `p` holds."""
    row = await _visible_admin(res, p, admin_id)
    ancestors = await repo.org_ids_by_paths(res.db, _ancestors(row["org_path"]))
    out = []
    for r in await repo.roles_of_orgs(res.db, ancestors):
        try:
            _check_grantable(p, set(r["permissions"]), r["data_scope"], r["mask_level"])
        except ProblemError:
            continue
        out.append(_role(r))
    return (await _admins(res, [row]))[0], out


def menu_tree() -> list[tuple[str, tuple[str, str] | None, list[tuple[str, str]]]]:
    """The permission catalogue as the console menu tree: (menu, its menu permission (code, name), its buttons)."""
    tree: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {}
    for code, (name, menu, kind) in permissions.CATALOGUE.items():
        menus, buttons = tree.setdefault(menu, ([], []))
        (menus if kind == "menu" else buttons).append((code, name))
    return [(menu, menus[0] if menus else None, menus[1:] + buttons) for menu, (menus, buttons) in tree.items()]


async def assign_roles(res: Resources, p: AdminPrincipal, admin_id: uuid.UUID, codes: list[str]) -> Admin:
    row = await _visible_admin(res, p, admin_id)
    if row["id"] == p.id:
        raise forbidden("administrators do not change their own roles")
    roles = await _resolve_roles(res, codes, row["org_path"])
    for r in roles:
        _check_grantable(p, set(r["permissions"]), r["data_scope"], r["mask_level"])
    async with res.db.acquire() as conn, conn.transaction():
        await repo.set_roles(conn, admin_id, [r["id"] for r in roles])
        await audit.record(
            conn,
            actor=f"admin:{p.username}",
            action="orgs.admin.assign",
            target=row["username"],
            detail={"roles": codes},
        )
    await sessions.revoke_all(res, admin_id)  # the next sign-in carries the new permissions
    return await get_admin(res, p, admin_id)


# --- administrators --------------------------------------------------------------------------------------------


async def _admins(res: Resources, rows: list[asyncpg.Record]) -> list[Admin]:
    codes = await repo.role_codes_of(res.db, [r["id"] for r in rows])
    out = []
    for r in rows:
        phone = res.fields.decrypt(r["phone_enc"], context=CTX_PHONE) if r["phone_enc"] else None
        out.append(
            Admin(
                id=r["id"],
                username=r["username"],
                display_name=r["display_name"],
                phone=mask_phone(phone) if phone else None,
                org_id=r["org_id"],
                org_path=r["org_path"],
                status=r["status"],
                totp_enabled=r["totp_enabled"],
                qr_bound=r["person_sub"] is not None,
                roles=codes.get(r["id"], []),
                review_reason=r["review_reason"],
                created_at=r["created_at"],
            )
        )
    return out


async def _visible_admin(res: Resources, p: AdminPrincipal, admin_id: uuid.UUID) -> asyncpg.Record:
    row = await repo.admin_by_id(res.db, admin_id)
    if row is None:
        raise not_found("administrator")
    if not can_see(p, row["org_path"]):
        raise not_found("administrator")  # outside the scope it does not exist, as far as the caller knows
    return row


async def get_admin(res: Resources, p: AdminPrincipal, admin_id: uuid.UUID) -> Admin:
    return (await _admins(res, [await _visible_admin(res, p, admin_id)]))[0]


async def list_admins(
    res: Resources, p: AdminPrincipal, status: str | None, cursor: str | None, limit: int
) -> AdminPage:
    at, rid = decode_cursor(cursor)
    rows = await repo.list_admins(
        res.db, sql_scope(p, "a.org_path", 1), status=status, after=(at, rid) if at and rid else None, limit=limit
    )
    return AdminPage(items=await _admins(res, rows), next_cursor=next_cursor(rows, limit))


async def create_admin(
    res: Resources,
    data: AdminRegistration,
    *,
    by: AdminPrincipal | None,
) -> Admin:
    """Registration (by=None: pending until reviewed) or creation by an administrator in scope (active)."""
    org = await repo.org_by_code(res.db, data.org_code)
    if org is None:
        raise invalid("org_code", "no such organisation")
    if by is not None and not can_see(by, org["path"]):
        raise out_of_scope()
    roles = await _resolve_roles(res, data.roles, org["path"]) if data.roles else []
    if by is not None:
        for r in roles:
            _check_grantable(by, set(r["permissions"]), r["data_scope"], r["mask_level"])
    elif any(r["code"] == "platform" for r in roles):
        raise invalid("roles", "the platform role is not requested by registration")
    async with res.db.acquire() as conn, conn.transaction():
        admin_id = await repo.insert_admin(
            conn,
            username=data.username,
            display_name=data.display_name,
            phone_enc=res.fields.encrypt(data.phone, context=CTX_PHONE) if data.phone else None,
            org_id=org["id"],
            org_path=org["path"],
            password_hash=await passwords.hash_password(data.password),
            status="pending" if by is None else "active",
        )
        if admin_id is None:
            raise conflict("username taken")
        await repo.set_roles(conn, admin_id, [r["id"] for r in roles])
        await audit.record(
            conn,
            actor=f"admin:{by.username}" if by else f"registrant:{data.username}",
            action="orgs.admin.create" if by else "orgs.admin.register",
            target=data.username,
        )
    row = await repo.admin_by_id(res.db, admin_id)
    assert row is not None
    return (await _admins(res, [row]))[0]


async def review_admin(res: Resources, p: AdminPrincipal, admin_id: uuid.UUID, data: Review) -> Admin:
    row = await _visible_admin(res, p, admin_id)
    four_eyes(p, submitted_by=row["id"], submitter_org="")  # nobody reviews their own registration
    if data.decision == "reject" and not data.reason.strip():
        raise invalid("reason", "a rejection names its reason")
    if row["status"] != "pending":
        raise conflict(f"the registration was already decided ({row['status']})")
    roles = await repo.roles_of(res.db, admin_id)
    if data.decision == "approve":
        for r in roles:
            _check_grantable(p, set(r["permissions"]), r["data_scope"], r["mask_level"])
    ok = await repo.review_admin(
        res.db,
        admin_id,
        status="active" if data.decision == "approve" else "rejected",
        reviewer=p.id,
        reason=data.reason,
        version=data.version or row["version"],
    )
    if not ok:
        raise conflict("the registration was decided or changed meanwhile")
    await audit.record(
        res.db, actor=f"admin:{p.username}", action=f"orgs.admin.{data.decision}", target=row["username"]
    )
    return await get_admin(res, p, admin_id)


async def disable_admin(res: Resources, p: AdminPrincipal, admin_id: uuid.UUID) -> Admin:
    row = await _visible_admin(res, p, admin_id)
    if row["id"] == p.id:
        raise forbidden("administrators do not disable themselves")
    await repo.set_status(res.db, admin_id, "disabled")
    await sessions.revoke_all(res, admin_id)
    await audit.record(res.db, actor=f"admin:{p.username}", action="orgs.admin.disable", target=row["username"])
    return await get_admin(res, p, admin_id)


async def dashboard_counts(res: Resources, p: AdminPrincipal) -> dict[str, int]:
    # all three conditions share the same arguments ($1, $2): one path, one subtree pattern
    row = await repo.counts(
        res.db, sql_scope(p, "path", 1), sql_scope(p, "a.parent_path", 1), sql_scope(p, "a.org_path", 1)
    )
    return {"orgs": int(row["orgs"]), "pending_orgs": int(row["pending_orgs"]), "admins": int(row["admins"])}
