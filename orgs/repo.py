"""SQL of organisations, administrators and roles (nothing else lives here)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg

from core.db import Executor

Row = asyncpg.Record
Scope = tuple[str, list[object]]  # the data-scope condition and its arguments (orgs.scope.sql_scope)
After = tuple[datetime, uuid.UUID] | None  # a keyset page starts after this (created_at, id)

ORG_COLS = "id, code, name, level, kind, police_type, region_code, parent_id, path, status, created_at"
ADMIN_COLS = (
    "a.id, a.username, a.display_name, a.phone_enc, a.org_id, a.org_path, a.password_hash, a.status, "
    "a.failed_logins, a.locked_until, a.totp_secret_enc, a.totp_enabled, a.totp_last_step, a.person_sub, "
    "a.review_reason, a.version, a.created_at"
)
ROLE_COLS = "id, code, name, org_id, builtin, data_scope, mask_level, permissions, created_at"


async def org_by_code(db: Executor, code: str) -> Row | None:
    return await db.fetchrow(f"SELECT {ORG_COLS} FROM orgs.orgs WHERE code = $1", code)  # noqa: S608


async def org_by_id(db: Executor, org_id: uuid.UUID) -> Row | None:
    return await db.fetchrow(f"SELECT {ORG_COLS} FROM orgs.orgs WHERE id = $1", org_id)  # noqa: S608


async def org_name(db: Executor, org_id: uuid.UUID) -> str | None:
    name: str | None = await db.fetchval("SELECT name FROM orgs.orgs WHERE id = $1", org_id)
    return name


async def requests_per_minute(db: Executor, since: datetime) -> list[Row]:
    """All interfaces' requests per minute since `since` (the sampled `metric_samples`), oldest first."""
    return await db.fetch(
        "SELECT date_trunc('minute', at) AS at, sum(count) AS n FROM orgs.metric_samples WHERE at >= $1 "
        "GROUP BY 1 ORDER BY 1",
        since,
    )


async def insert_org(
    db: Executor,
    *,
    code: str,
    name: str,
    level: str,
    kind: str,
    police_type: str | None,
    region_code: str,
    parent_id: uuid.UUID | None,
    path: str,
    if_taken: Literal["rename", "skip"] = "rename",
) -> uuid.UUID | None:
    """The new organisation's id. A taken code: "rename" gives the existing one this name and returns its id (the
    seed); "skip" changes nothing and returns None (an approved registration)."""
    on_conflict = (
        "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name" if if_taken == "rename" else "ON CONFLICT DO NOTHING"
    )
    row = await db.fetchrow(
        f"""INSERT INTO orgs.orgs (id, code, name, level, kind, police_type, region_code, parent_id, path)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) {on_conflict} RETURNING id""",  # noqa: S608
        uuid.uuid4(),
        code,
        name,
        level,
        kind,
        police_type,
        region_code,
        parent_id,
        path,
    )
    return None if row is None else row["id"]


def _scoped_page(
    scope_sql: str,
    scope_args: list[object],
    *,
    prefix: str,
    equals: dict[str, object | None],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[str, list[Any], str]:
    """WHERE text, arguments and the LIMIT placeholder of one keyset page: the data-scope condition, an equality
    per given filter (None = no filter), rows after the cursor's (created_at, id)."""
    params: list[Any] = list(scope_args)
    where = [scope_sql]
    for column, value in equals.items():
        if value is not None:
            params.append(value)
            where.append(f"{prefix}{column} = ${len(params)}")
    if after is not None:
        params.extend(after)
        where.append(f"({prefix}created_at, {prefix}id) > (${len(params) - 1}, ${len(params)})")
    params.append(limit)
    return " AND ".join(where), params, f"${len(params)}"


async def _scoped_rows(
    db: Executor,
    select: str,
    scope: tuple[str, list[object]],
    *,
    prefix: str,
    equals: dict[str, object | None],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    """One keyset page of `select` (its SELECT … FROM …): in scope, filtered, ordered by (created_at, id)."""
    where, params, lim = _scoped_page(*scope, prefix=prefix, equals=equals, after=after, limit=limit)
    return await db.fetch(
        f"{select} WHERE {where} ORDER BY {prefix}created_at, {prefix}id LIMIT {lim}",
        *params,
    )


async def list_orgs(
    db: Executor,
    scope: tuple[str, list[object]],
    *,
    parent_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    select = f"SELECT {ORG_COLS} FROM orgs.orgs"  # noqa: S608
    return await _scoped_rows(db, select, scope, prefix="", equals={"parent_id": parent_id}, after=after, limit=limit)


async def count_orgs(db: Executor) -> int:
    n: int = await db.fetchval("SELECT count(*) FROM orgs.orgs")
    return n


# --- roles -----------------------------------------------------------------------------------------------------


async def upsert_builtin_role(
    db: Executor, *, code: str, name: str, data_scope: str, mask_level: int, permissions: list[str]
) -> None:
    updated = await db.execute(
        """UPDATE orgs.roles SET name = $2, data_scope = $3, mask_level = $4, permissions = $5
           WHERE org_id IS NULL AND code = $1""",
        code,
        name,
        data_scope,
        mask_level,
        permissions,
    )
    if updated == "UPDATE 0":
        await db.execute(
            """INSERT INTO orgs.roles (id, code, name, org_id, builtin, data_scope, mask_level, permissions)
               VALUES ($1,$2,$3,NULL,true,$4,$5,$6)""",
            uuid.uuid4(),
            code,
            name,
            data_scope,
            mask_level,
            permissions,
        )


async def insert_role(
    db: Executor,
    *,
    code: str,
    name: str,
    org_id: uuid.UUID,
    data_scope: str,
    mask_level: int,
    permissions: list[str],
) -> Row | None:
    return await db.fetchrow(
        f"""INSERT INTO orgs.roles (id, code, name, org_id, builtin, data_scope, mask_level, permissions)
            VALUES ($1,$2,$3,$4,false,$5,$6,$7) ON CONFLICT DO NOTHING RETURNING {ROLE_COLS}""",  # noqa: S608
        uuid.uuid4(),
        code,
        name,
        org_id,
        data_scope,
        mask_level,
        permissions,
    )


async def role_by_id(db: Executor, role_id: uuid.UUID) -> Row | None:
    """A role with its organisation's path ('' for a built-in role)."""
    cols = ", ".join(f"r.{c.strip()}" for c in ROLE_COLS.split(","))
    return await db.fetchrow(
        f"""SELECT {cols}, coalesce(o.path, '') AS org_path FROM orgs.roles r LEFT JOIN orgs.orgs o ON o.id = r.org_id
            WHERE r.id = $1""",  # noqa: S608
        role_id,
    )


async def update_role(
    db: Executor, role_id: uuid.UUID, *, name: str, data_scope: str, mask_level: int, permissions: list[str]
) -> Row | None:
    return await db.fetchrow(
        f"""UPDATE orgs.roles SET name = $2, data_scope = $3, mask_level = $4, permissions = $5
            WHERE id = $1 AND NOT builtin RETURNING {ROLE_COLS}""",  # noqa: S608
        role_id,
        name,
        data_scope,
        mask_level,
        permissions,
    )


async def holders_of(db: Executor, role_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await db.fetch("SELECT admin_id FROM orgs.admin_roles WHERE role_id = $1", role_id)
    return [r["admin_id"] for r in rows]


async def roles_of_orgs(db: Executor, org_ids: list[uuid.UUID]) -> list[Row]:
    """Built-in roles and the custom roles of the given organisations."""
    return await db.fetch(
        f"""SELECT {ROLE_COLS} FROM orgs.roles WHERE org_id IS NULL OR org_id = ANY($1)
            ORDER BY builtin DESC, created_at, id""",  # noqa: S608
        org_ids,
    )


async def roles_assignable(db: Executor, codes: list[str], org_ids: list[uuid.UUID]) -> list[Row]:
    """Built-in roles and custom roles of the given organisations (an account's own and its ancestors)."""
    return await db.fetch(
        f"""SELECT {ROLE_COLS} FROM orgs.roles
            WHERE code = ANY($1) AND (org_id IS NULL OR org_id = ANY($2))""",  # noqa: S608
        codes,
        org_ids,
    )


async def list_roles(
    db: Executor, scope: tuple[str, list[object]], after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Row]:
    cond, args = scope
    where, params, lim = _scoped_page(
        f"(r.org_id IS NULL OR {cond})", args, prefix="r.", equals={}, after=after, limit=limit
    )
    cols = ", ".join(f"r.{c.strip()}" for c in ROLE_COLS.split(","))
    return await db.fetch(
        f"""SELECT {cols} FROM orgs.roles r LEFT JOIN orgs.orgs o ON o.id = r.org_id
            WHERE {where} ORDER BY r.created_at, r.id LIMIT {lim}""",  # noqa: S608
        *params,
    )


async def roles_of(db: Executor, admin_id: uuid.UUID) -> list[Row]:
    return await db.fetch(
        f"""SELECT {", ".join(f"r.{c.strip()}" for c in ROLE_COLS.split(","))}
            FROM orgs.admin_roles ar JOIN orgs.roles r ON r.id = ar.role_id WHERE ar.admin_id = $1
            ORDER BY r.code""",  # noqa: S608
        admin_id,
    )


async def role_codes_of(db: Executor, admin_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    rows = await db.fetch(
        """SELECT ar.admin_id, r.code FROM orgs.admin_roles ar JOIN orgs.roles r ON r.id = ar.role_id
           WHERE ar.admin_id = ANY($1) ORDER BY r.code""",
        admin_ids,
    )
    out: dict[uuid.UUID, list[str]] = {}
    for r in rows:
        out.setdefault(r["admin_id"], []).append(r["code"])
    return out


async def set_roles(db: Executor, admin_id: uuid.UUID, role_ids: list[uuid.UUID]) -> None:
    await db.execute("DELETE FROM orgs.admin_roles WHERE admin_id = $1", admin_id)
    await db.executemany(
        "INSERT INTO orgs.admin_roles (admin_id, role_id) VALUES ($1, $2)", [(admin_id, r) for r in role_ids]
    )


# --- administrators --------------------------------------------------------------------------------------------


async def admin_by_username(db: Executor, username: str) -> Row | None:
    return await db.fetchrow(
        f"SELECT {ADMIN_COLS}, o.level AS org_level, o.region_code FROM orgs.admins a "  # noqa: S608
        "JOIN orgs.orgs o ON o.id = a.org_id WHERE a.username = $1",
        username,
    )


async def admin_by_id(db: Executor, admin_id: uuid.UUID) -> Row | None:
    return await db.fetchrow(
        f"SELECT {ADMIN_COLS}, o.level AS org_level, o.region_code FROM orgs.admins a "  # noqa: S608
        "JOIN orgs.orgs o ON o.id = a.org_id WHERE a.id = $1",
        admin_id,
    )


async def admin_by_sub(db: Executor, sub: str) -> Row | None:
    return await db.fetchrow(
        f"SELECT {ADMIN_COLS}, o.level AS org_level, o.region_code FROM orgs.admins a "  # noqa: S608
        "JOIN orgs.orgs o ON o.id = a.org_id WHERE a.person_sub = $1",
        sub,
    )


async def insert_admin(
    db: Executor,
    *,
    username: str,
    display_name: str,
    phone_enc: str | None,
    org_id: uuid.UUID,
    org_path: str,
    password_hash: str,
    status: str,
) -> uuid.UUID | None:
    row = await db.fetchrow(
        """INSERT INTO orgs.admins (id, username, display_name, phone_enc, org_id, org_path, password_hash, status)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (username) DO NOTHING RETURNING id""",
        uuid.uuid4(),
        username,
        display_name,
        phone_enc,
        org_id,
        org_path,
        password_hash,
        status,
    )
    return None if row is None else row["id"]


async def list_admins(db: Executor, scope: Scope, *, status: str | None, after: After, limit: int) -> list[Row]:
    select = f"SELECT {ADMIN_COLS} FROM orgs.admins a"  # noqa: S608
    return await _scoped_rows(db, select, scope, prefix="a.", equals={"status": status}, after=after, limit=limit)


async def count_attempt(db: Executor, admin_id: uuid.UUID, max_failures: int, lock_seconds: int) -> int | None:
    """Count one sign-in attempt and decide in the same statement: the attempt's number when it may be checked (it
    stays counted as a failure until `record_success`; the `max_failures`-th locks the account), None when the
    account is locked. A lock that ran out starts the count again. The row lock orders concurrent attempts, so a
    burst is judged like a sequence."""
    n: int | None = await db.fetchval(
        """UPDATE orgs.admins a
              SET failed_logins = CASE WHEN a.locked_until IS NULL THEN a.failed_logins + 1 ELSE 1 END,
                  locked_until = CASE WHEN (CASE WHEN a.locked_until IS NULL THEN a.failed_logins + 1 ELSE 1 END) >= $2
                                      THEN now() + make_interval(secs => $3) END
            WHERE a.id = $1 AND (a.locked_until IS NULL OR a.locked_until <= now())
        RETURNING a.failed_logins""",
        admin_id,
        max_failures,
        lock_seconds,
    )
    return n


async def record_success(db: Executor, admin_id: uuid.UUID, totp_step: int | None) -> bool:
    """Reset the failure count; with a TOTP step, only if it is newer than the last one used (one use per code)."""
    if totp_step is None:
        await db.execute("UPDATE orgs.admins SET failed_logins = 0, locked_until = NULL WHERE id = $1", admin_id)
        return True
    done = await db.execute(
        """UPDATE orgs.admins SET failed_logins = 0, locked_until = NULL, totp_last_step = $2
           WHERE id = $1 AND totp_last_step < $2""",
        admin_id,
        totp_step,
    )
    return bool(done == "UPDATE 1")


async def review_admin(
    db: Executor, admin_id: uuid.UUID, *, status: str, reviewer: uuid.UUID, reason: str, version: int
) -> bool:
    done = await db.execute(
        """UPDATE orgs.admins SET status = $2, reviewed_by = $3, reviewed_at = now(), review_reason = $4,
               version = version + 1
           WHERE id = $1 AND status = 'pending' AND version = $5""",
        admin_id,
        status,
        reviewer,
        reason,
        version,
    )
    return bool(done == "UPDATE 1")


async def set_status(db: Executor, admin_id: uuid.UUID, status: str) -> None:
    await db.execute("UPDATE orgs.admins SET status = $2, version = version + 1 WHERE id = $1", admin_id, status)


async def set_totp(db: Executor, admin_id: uuid.UUID, secret_enc: str | None, enabled: bool) -> None:
    await db.execute(
        "UPDATE orgs.admins SET totp_secret_enc = $2, totp_enabled = $3 WHERE id = $1", admin_id, secret_enc, enabled
    )


async def bind_sub(db: Executor, admin_id: uuid.UUID, sub: str | None) -> bool:
    try:
        await db.execute("UPDATE orgs.admins SET person_sub = $2 WHERE id = $1", admin_id, sub)
    except asyncpg.UniqueViolationError:
        return False
    return True


# --- organisation applications ---------------------------------------------------------------------------------

APP_COLS = (
    "a.id, a.code, a.name, a.parent_id, a.parent_path, a.level, a.kind, a.police_type, a.region_code, "
    "a.contact_name_enc, a.contact_phone_enc, a.status, a.reason, a.version, a.created_at, p.code AS parent_code, "
    "a.submitted_by, a.submitter_org_path"
)


async def insert_application(db: Executor, **values: Any) -> uuid.UUID | None:
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(2, len(values) + 2))
    app_id = uuid.uuid4()
    try:
        await db.execute(
            f"INSERT INTO orgs.org_applications (id, {cols}) VALUES ($1, {marks})",  # noqa: S608  (our own keys)
            app_id,
            *values.values(),
        )
    except asyncpg.UniqueViolationError:
        return None
    return app_id


async def insert_document(
    db: Executor,
    *,
    doc_id: uuid.UUID,
    application_id: uuid.UUID,
    filename: str,
    content_type: str,
    size: int,
    sm3: str,
    stored_name: str,
) -> None:
    await db.execute(
        # clock_timestamp, not now(): the documents of one application are inserted in one transaction and list
        # in upload order
        """INSERT INTO orgs.org_documents (id, application_id, filename, content_type, size, sm3, stored_name,
                                           created_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7, clock_timestamp())""",
        doc_id,
        application_id,
        filename,
        content_type,
        size,
        sm3,
        stored_name,
    )


async def application(db: Executor, app_id: uuid.UUID) -> Row | None:
    return await db.fetchrow(
        f"SELECT {APP_COLS} FROM orgs.org_applications a JOIN orgs.orgs p ON p.id = a.parent_id WHERE a.id = $1",  # noqa: S608
        app_id,
    )


async def list_applications(db: Executor, scope: Scope, *, status: str | None, after: After, limit: int) -> list[Row]:
    select = f"SELECT {APP_COLS} FROM orgs.org_applications a JOIN orgs.orgs p ON p.id = a.parent_id"  # noqa: S608
    return await _scoped_rows(db, select, scope, prefix="a.", equals={"status": status}, after=after, limit=limit)


async def documents(db: Executor, app_ids: list[uuid.UUID]) -> list[Row]:
    return await db.fetch(
        """SELECT id, application_id, filename, content_type, size, sm3, stored_name, created_at
           FROM orgs.org_documents WHERE application_id = ANY($1) ORDER BY created_at, id""",
        app_ids,
    )


async def decide_application(
    db: Executor, app_id: uuid.UUID, *, status: str, reviewer: uuid.UUID, reason: str, version: int
) -> Row | None:
    """The one reviewer whose decision lands (pending and at the version they saw); others get None."""
    return await db.fetchrow(
        """UPDATE orgs.org_applications SET status = $2, reviewed_by = $3, reviewed_at = now(), reason = $4,
               version = version + 1
           WHERE id = $1 AND status = 'pending' AND version = $5 RETURNING id""",
        app_id,
        status,
        reviewer,
        reason,
        version,
    )


async def link_application_org(db: Executor, app_id: uuid.UUID, org_id: uuid.UUID) -> None:
    await db.execute("UPDATE orgs.org_applications SET org_id = $2 WHERE id = $1", app_id, org_id)


async def counts(
    db: Executor,
    scope_org: tuple[str, list[object]],
    scope_app: tuple[str, list[object]],
    scope_admin: tuple[str, list[object]],
) -> Row:
    """Dashboard numbers in the caller's scope (each condition numbered from $1)."""
    return await db.fetchrow(  # type: ignore[return-value]
        f"""SELECT (SELECT count(*) FROM orgs.orgs WHERE {scope_org[0]}) AS orgs,
                   (SELECT count(*) FROM orgs.org_applications a WHERE a.status = 'pending' AND {scope_app[0]})
                       AS pending_orgs,
                   (SELECT count(*) FROM orgs.admins a WHERE {scope_admin[0]}) AS admins""",  # noqa: S608
        *scope_org[1],
    )


# --- the organisation of each app's client (integration-log scoping) -------------------------------------------


async def set_client_org(db: Executor, client_id: str, org_path: str, region_code: str) -> None:
    await db.execute(
        """INSERT INTO orgs.client_orgs (client_id, org_path, region_code) VALUES ($1, $2, $3)
           ON CONFLICT (client_id) DO UPDATE SET org_path = $2, region_code = $3, updated_at = now()""",
        client_id,
        org_path,
        region_code,
    )


async def client_orgs(db: Executor, client_ids: list[str]) -> dict[str, tuple[str, str]]:
    rows = await db.fetch(
        "SELECT client_id, org_path, region_code FROM orgs.client_orgs WHERE client_id = ANY($1)", client_ids
    )
    return {r["client_id"]: (r["org_path"], r["region_code"]) for r in rows}


async def backfill_integration_org(db: Executor, client_id: str, org_path: str, region_code: str) -> None:
    """Rows of the client written before its organisation was known get it (the log is not hash-chained)."""
    await db.execute(
        """UPDATE orgs.integration_log SET org_path = $2, region_code = CASE WHEN region_code = '' THEN $3
               ELSE region_code END
           WHERE app_code = $1 AND org_path = ''""",
        client_id,
        org_path,
        region_code,
    )


async def org_region_by_path(db: Executor, path: str) -> str | None:
    value = await db.fetchval("SELECT region_code FROM orgs.orgs WHERE path = $1", path)
    return None if value is None else str(value)


async def org_ids_by_paths(db: Executor, paths: list[str]) -> list[uuid.UUID]:
    return [r["id"] for r in await db.fetch("SELECT id FROM orgs.orgs WHERE path = ANY($1)", paths)]
