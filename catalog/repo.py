"""SQL of the catalog (schema `catalog`), nothing else."""

from __future__ import annotations

import uuid
from typing import Any

from core.db import Connection, Pool
from core.filters import contains

Db = Pool | Connection
Row = Any

# The columns an app and each of its versions both hold, in this order in both inserts.
_VERSION_FIELDS = (
    "name", "category", "kind", "audience", "zone", "entry_path", "icon_digest", "channels", "regions", "scopes",
    "redirect_uris",
)  # fmt: skip
_VERSION_COLS = ", ".join(_VERSION_FIELDS)


async def next_code(db: Db) -> str:
    n = await db.fetchval("SELECT nextval('catalog.app_number')")
    return f"app-{n:02d}"


async def insert_app(db: Db, *, code: str, org_id: uuid.UUID | None, org_path: str, fields: dict[str, Any]) -> None:
    await db.execute(
        """INSERT INTO catalog.apps (code, org_id, org_path, name, category, kind, audience, zone, entry_path,
                                     icon_digest, channels, regions, scopes, redirect_uris, pinyin_full,
                                     pinyin_initials)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)""",
        code,
        org_id,
        org_path,
        *(fields[k] for k in _VERSION_FIELDS),
        fields["pinyin_full"],
        fields["pinyin_initials"],
    )


async def insert_version(
    db: Db, *, app_code: str, status: str, submitted_by: uuid.UUID | None, fields: dict[str, Any]
) -> Row:
    return await db.fetchrow(
        f"""INSERT INTO catalog.app_versions (id, app_code, version, status, submitted_by, {_VERSION_COLS})
            VALUES ($1, $2, (SELECT coalesce(max(version), 0) + 1 FROM catalog.app_versions WHERE app_code = $2),
                    $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            RETURNING *""",  # noqa: S608  (a constant column list)
        uuid.uuid4(),
        app_code,
        status,
        submitted_by,
        *(fields[k] for k in _VERSION_FIELDS),
    )


async def get_app(db: Db, code: str, *, for_update: bool = False) -> Row:
    lock = " FOR UPDATE" if for_update else ""
    return await db.fetchrow(f"SELECT * FROM catalog.apps WHERE code = $1{lock}", code)  # noqa: S608


async def get_version(db: Db, version_id: uuid.UUID) -> Row:
    return await db.fetchrow("SELECT * FROM catalog.app_versions WHERE id = $1", version_id)


async def claim_version(db: Db, version_id: uuid.UUID, *, status: str, reviewer: uuid.UUID, reason: str) -> Row:
    """Decide a pending version; None when another reviewer decided it first (the row is no longer pending)."""
    return await db.fetchrow(
        """UPDATE catalog.app_versions SET status = $2, reviewed_by = $3, reviewed_at = now(), reason = $4
           WHERE id = $1 AND status = 'pending' RETURNING *""",
        version_id,
        status,
        reviewer,
        reason,
    )


async def make_live(db: Db, v: Row, *, client_id: str | None, pinyin_full: str, pinyin_initials: str) -> None:
    """The approved version becomes what the app shows; the first approval also lists it."""
    await db.execute(
        """UPDATE catalog.apps SET name = $2, category = $3, kind = $4, audience = $5, zone = $6, entry_path = $7,
                  icon_digest = $8, channels = $9, regions = $10, scopes = $11, redirect_uris = $12,
                  client_id = $13, listed = CASE WHEN live_version = 0 THEN true ELSE listed END,
                  live_version = $14, pinyin_full = $15, pinyin_initials = $16, updated_at = now()
           WHERE code = $1""",
        v["app_code"],
        v["name"],
        v["category"],
        v["kind"],
        v["audience"],
        v["zone"],
        v["entry_path"],
        v["icon_digest"],
        v["channels"],
        v["regions"],
        v["scopes"],
        v["redirect_uris"],
        client_id,
        v["version"],
        pinyin_full,
        pinyin_initials,
    )


async def set_listed(db: Db, code: str, *, listed: bool, reason: str) -> bool:
    done = await db.execute(
        """UPDATE catalog.apps SET listed = $2, delisted_reason = $3, health_failures = 0, updated_at = now()
           WHERE code = $1 AND live_version > 0""",
        code,
        listed,
        "" if listed else reason,
    )
    return bool(done.endswith(" 1"))


async def set_hidden_cities(db: Db, code: str, cities: list[str]) -> bool:
    done = await db.execute(
        "UPDATE catalog.apps SET hidden_cities = $2, updated_at = now() WHERE code = $1", code, cities
    )
    return bool(done.endswith(" 1"))


async def bump_layout(db: Db) -> int:
    v: int = await db.fetchval("UPDATE catalog.layout_version SET version = version + 1 RETURNING version")
    return v


async def layout_version(db: Db) -> int:
    v: int = await db.fetchval("SELECT version FROM catalog.layout_version")
    return v


async def listed_apps(db: Db) -> list[Row]:
    return list(await db.fetch("SELECT * FROM catalog.apps WHERE listed ORDER BY code"))


async def slots(db: Db, regions: list[str]) -> list[Row]:
    return list(
        await db.fetch(
            """SELECT region_code, module, position, app_code FROM catalog.layout_slots
               WHERE region_code = ANY($1) ORDER BY module, position""",
            regions,
        )
    )


async def replace_module(db: Db, region: str, module: str, codes: list[str]) -> None:
    await db.execute("DELETE FROM catalog.layout_slots WHERE region_code = $1 AND module = $2", region, module)
    await db.executemany(
        "INSERT INTO catalog.layout_slots (region_code, module, position, app_code) VALUES ($1, $2, $3, $4)",
        [(region, module, i, c) for i, c in enumerate(codes)],
    )


async def put_slots(db: Db, region: str, module: str, cells: dict[int, str]) -> None:
    await db.executemany(
        """INSERT INTO catalog.layout_slots (region_code, module, position, app_code) VALUES ($1, $2, $3, $4)
           ON CONFLICT (region_code, module, position) DO UPDATE SET app_code = excluded.app_code""",
        [(region, module, pos, code) for pos, code in cells.items()],
    )


async def existing_codes(db: Db, codes: list[str]) -> set[str]:
    rows = await db.fetch("SELECT code FROM catalog.apps WHERE code = ANY($1)", codes)
    return {r["code"] for r in rows}


async def search(db: Db, needle: str, *, city: str | None, channel: str, after: str | None, limit: int) -> list[Row]:
    """Listed apps visible for the city and channel whose name, full pinyin or initials contain `needle`."""
    like = contains(needle)
    return list(
        await db.fetch(
            """SELECT code, name, category, kind, entry_path, icon_digest FROM catalog.apps
               WHERE listed AND $3 = ANY(channels)
                 AND ('320000' = ANY(regions) OR $2::text = ANY(regions))
                 AND NOT (coalesce($2::text, '') = ANY(hidden_cities))
                 AND (name LIKE $1 ESCAPE '\\' OR pinyin_full LIKE $1 ESCAPE '\\'
                      OR pinyin_initials LIKE $1 ESCAPE '\\')
                 AND ($4::text IS NULL OR code > $4)
               ORDER BY code LIMIT $5""",
            like,
            city,
            channel,
            after,
            limit,
        )
    )


async def versions(
    db: Db,
    *,
    status: str | None,
    scope_sql: str,
    scope_args: list[object],
    after: tuple[Any, uuid.UUID | None],
    limit: int,
) -> list[Row]:
    """Versions, newest first, of apps whose owner org_path satisfies `scope_sql` (its arguments from $5 on)."""
    return list(
        await db.fetch(
            f"""SELECT v.*, v.submitted_at AS created_at FROM catalog.app_versions v
                JOIN catalog.apps a ON a.code = v.app_code
                WHERE ($1::text IS NULL OR v.status = $1)
                  AND ($2::timestamptz IS NULL OR (v.submitted_at, v.id) < ($2, $3::uuid))
                  AND {scope_sql}
                ORDER BY v.submitted_at DESC, v.id DESC LIMIT $4""",  # noqa: S608  (scope_sql built by code)
            status,
            after[0],
            after[1],
            limit,
            *scope_args,
        )
    )


async def health_candidates(db: Db) -> list[Row]:
    """Listed apps and those delisted by the health check (polled to relist them on recovery)."""
    return list(
        await db.fetch(
            """SELECT code, org_id, org_path, name, entry_path, listed, delisted_reason, health_failures
               FROM catalog.apps WHERE live_version > 0 AND (listed OR delisted_reason = 'health') ORDER BY code"""
        )
    )


async def record_health(db: Db, code: str, *, failures: int) -> None:
    await db.execute(
        "UPDATE catalog.apps SET health_failures = $2, health_checked_at = now() WHERE code = $1", code, failures
    )


async def insert_notification(
    db: Db, *, org_path: str, org_id: uuid.UUID | None, app_code: str, kind: str, message: str
) -> None:
    await db.execute(
        """INSERT INTO catalog.notifications (id, org_path, org_id, app_code, kind, message)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        uuid.uuid4(),
        org_path,
        org_id,
        app_code,
        kind,
        message,
    )


async def notifications(db: Db, app_code: str, limit: int) -> list[Row]:
    return list(
        await db.fetch(
            "SELECT * FROM catalog.notifications WHERE app_code = $1 ORDER BY created_at DESC, id LIMIT $2",
            app_code,
            limit,
        )
    )


async def org_notifications(db: Db, org_path: str, limit: int) -> list[Row]:
    return list(
        await db.fetch(
            "SELECT * FROM catalog.notifications WHERE org_path = $1 ORDER BY created_at DESC, id LIMIT $2",
            org_path,
            limit,
        )
    )


async def apps_in_scope(
    db: Db, *, live_only: bool, scope_sql: str, scope_args: list[object], after: str | None, limit: int
) -> list[Row]:
    """Apps by code whose owner org_path satisfies `scope_sql` (its arguments from $4 on); for the console list."""
    return list(
        await db.fetch(
            f"""SELECT * FROM catalog.apps a
                WHERE ($1::text IS NULL OR a.code > $1) AND (NOT $2 OR a.live_version > 0) AND {scope_sql}
                ORDER BY a.code LIMIT $3""",  # noqa: S608  (scope_sql built by code)
            after,
            live_only,
            limit,
            *scope_args,
        )
    )
