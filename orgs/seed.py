"""Seed: the organisation tree (province + 13 cities, police types, counties, stations), the built-in roles,
the platform administrator `admin` and the `admin-console` OIDC client used for QR sign-in."""

from __future__ import annotations

import logging
import secrets

from core.resources import Resources
from core.secrets_file import read_or_create
from core.settings import Settings
from identity.facade import clients
from orgs import masks, passwords, permissions, repo, tree

log = logging.getLogger("szt.seed.orgs")
ADMIN = "admin"
CONSOLE_CLIENT = "admin-console"


def admin_password_file(settings: Settings) -> str:
    return str(settings.var_path / "admin-password")


def admin_password(settings: Settings) -> str:
    if settings.admin_password:
        return settings.admin_password
    return read_or_create(settings.var_path / "admin-password", lambda: secrets.token_urlsafe(18))


def console_secret(settings: Settings) -> str:
    return read_or_create(settings.var_path / "admin-console-secret", lambda: secrets.token_urlsafe(32))


async def _seed_tree(res: Resources) -> None:
    if await repo.count_orgs(res.db) > 0:
        return

    async def put(node: tree.Node, parent_id: object, parent_path: str) -> None:
        path = f"{parent_path}.{node.code}" if parent_path else node.code
        org_id = await repo.insert_org(
            res.db,
            code=node.code,
            name=node.name,
            level=node.level,
            kind=node.kind,
            police_type=node.police_type,
            region_code=node.region_code,
            parent_id=parent_id,  # type: ignore[arg-type]
            path=path,
        )
        for child in node.children:
            await put(child, org_id, path)

    await put(tree.build(), None, "")


async def seed(res: Resources) -> None:
    await _seed_tree(res)
    await masks.seed(res)
    for code, (name, scope, mask, perms) in permissions.BUILTIN.items():
        await repo.upsert_builtin_role(
            res.db, code=code, name=name, data_scope=scope, mask_level=mask, permissions=sorted(perms)
        )
    if await repo.admin_by_username(res.db, ADMIN) is None:
        province = await repo.org_by_code(res.db, tree.PROVINCE[0])
        assert province is not None
        fresh = not res.settings.admin_password and not (res.settings.var_path / "admin-password").exists()
        password = admin_password(res.settings)
        admin_id = await repo.insert_admin(
            res.db,
            username=ADMIN,
            display_name="平台管理员",
            phone_enc=None,
            org_id=province["id"],
            org_path=province["path"],
            password_hash=await passwords.hash_password(password),
            status="active",
        )
        platform = await repo.roles_assignable(res.db, ["platform"], [])
        async with res.db.acquire() as conn:
            assert admin_id is not None
            await repo.set_roles(conn, admin_id, [platform[0]["id"]])
        if fresh:  # printed once, on the first start; kept in var/admin-password (0600)
            print(f"platform administrator 'admin' created; password: {password}", flush=True)
        log.info("platform administrator created", extra={"password_file": admin_password_file(res.settings)})
    redirect = f"{res.settings.base_url}/admin/oidc/callback"
    if await clients.get(res, CONSOLE_CLIENT) is None:
        await clients.create(
            res,
            client_id=CONSOLE_CLIENT,
            name="苏证通管理后台 Administrators' console",
            kind="portal",
            zone="government",
            redirect_uris=[redirect],
            entitlements=[],
            secret=console_secret(res.settings),
        )
    else:  # the server's address may have changed since the first start
        await res.db.execute(
            "UPDATE identity.clients SET redirect_uris = $2 WHERE client_id = $1", CONSOLE_CLIENT, [redirect]
        )
