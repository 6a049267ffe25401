"""SQL of legal persons (identity.enterprises, identity.handlers, identity.agents), nothing else."""

from __future__ import annotations

import uuid
from datetime import datetime

from core.db import Executor, Record


async def person_id_by_wangha(db: Executor, wangha: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", wangha)
    return found


async def person_wangha_name(db: Executor, person_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT wangha, name_enc FROM identity.people WHERE id = $1", person_id)


# ---------------------------------------------------------------- enterprises


async def insert_enterprise(
    db: Executor, enterprise_id: uuid.UUID, uscc: str, name: str, representative_id: uuid.UUID
) -> datetime:
    """The new row's created_at; asyncpg.UniqueViolationError when the USCC is registered already."""
    created: datetime = await db.fetchval(
        """INSERT INTO identity.enterprises (id, uscc, name, representative_id) VALUES ($1, $2, $3, $4)
           RETURNING created_at""",
        enterprise_id,
        uscc,
        name,
        representative_id,
    )
    return created


async def enterprises_of(
    db: Executor, person_id: uuid.UUID, after: datetime | None, after_id: uuid.UUID | None, limit: int
) -> list[Record]:
    """Enterprises where the person is the representative or an active handler, newest first, keyset-paged."""
    return await db.fetch(
        """SELECT x.*, p.wangha AS rep_wangha, p.name_enc AS rep_name_enc FROM (
               SELECT e.id, e.uscc, e.name, e.created_at, e.representative_id, 'representative' AS role,
                      NULL::text[] AS scopes, NULL::timestamptz AS valid_until
               FROM identity.enterprises e WHERE e.representative_id = $1
               UNION ALL
               SELECT e.id, e.uscc, e.name, e.created_at, e.representative_id, 'handler', h.scopes, h.valid_until
               FROM identity.handlers h JOIN identity.enterprises e ON e.id = h.enterprise_id
               WHERE h.person_id = $1 AND h.revoked_at IS NULL AND h.valid_until > now()
                 AND e.representative_id <> $1
           ) x JOIN identity.people p ON p.id = x.representative_id
           WHERE $2::timestamptz IS NULL OR (x.created_at, x.id) < ($2, $3)
           ORDER BY x.created_at DESC, x.id DESC LIMIT $4""",
        person_id,
        after,
        after_id,
        limit,
    )


async def representative_of(db: Executor, enterprise_id: uuid.UUID) -> uuid.UUID | None:
    found: uuid.UUID | None = await db.fetchval(
        "SELECT representative_id FROM identity.enterprises WHERE id = $1", enterprise_id
    )
    return found


async def lock_enterprise(db: Executor, enterprise_id: uuid.UUID) -> None:
    await db.execute("SELECT 1 FROM identity.enterprises WHERE id = $1 FOR UPDATE", enterprise_id)


# ---------------------------------------------------------------- handlers (经办人)


async def count_other_active_handlers(db: Executor, enterprise_id: uuid.UUID, person_id: uuid.UUID) -> int:
    count: int = await db.fetchval(
        """SELECT count(*) FROM identity.handlers
           WHERE enterprise_id = $1 AND person_id <> $2 AND revoked_at IS NULL AND valid_until > now()""",
        enterprise_id,
        person_id,
    )
    return count


async def upsert_handler(
    db: Executor,
    handler_id: uuid.UUID,
    enterprise_id: uuid.UUID,
    person_id: uuid.UUID,
    scopes: list[str],
    valid_until: datetime,
) -> Record | None:
    """Grant, or re-grant replacing scopes and validity (and clearing a revocation); the handler's row."""
    return await db.fetchrow(
        """INSERT INTO identity.handlers (id, enterprise_id, person_id, scopes, valid_until)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (enterprise_id, person_id)
           DO UPDATE SET scopes = EXCLUDED.scopes, valid_until = EXCLUDED.valid_until, revoked_at = NULL
           RETURNING *""",
        handler_id,
        enterprise_id,
        person_id,
        scopes,
        valid_until,
    )


async def handlers_of(
    db: Executor, enterprise_id: uuid.UUID, after: datetime | None, after_id: uuid.UUID | None, limit: int
) -> list[Record]:
    return await db.fetch(
        """SELECT h.*, p.wangha, p.name_enc FROM identity.handlers h JOIN identity.people p ON p.id = h.person_id
           WHERE h.enterprise_id = $1 AND ($2::timestamptz IS NULL OR (h.created_at, h.id) < ($2, $3))
           ORDER BY h.created_at DESC, h.id DESC LIMIT $4""",
        enterprise_id,
        after,
        after_id,
        limit,
    )


async def lock_handler(db: Executor, handler_id: uuid.UUID, enterprise_id: uuid.UUID) -> Record | None:
    """The handler's `revoked_at`, row locked for the transaction; None when it is not this enterprise's."""
    return await db.fetchrow(
        "SELECT revoked_at FROM identity.handlers WHERE id = $1 AND enterprise_id = $2 FOR UPDATE",
        handler_id,
        enterprise_id,
    )


async def revoke_handler(db: Executor, handler_id: uuid.UUID) -> None:
    await db.execute("UPDATE identity.handlers SET revoked_at = now() WHERE id = $1", handler_id)


async def may_act_for_enterprise(db: Executor, person_id: uuid.UUID, enterprise_id: uuid.UUID, scope: str) -> bool:
    """The enterprise's representative, or an active handler (not revoked, validity not passed) with the scope."""
    allowed: bool = await db.fetchval(
        """SELECT EXISTS (SELECT 1 FROM identity.enterprises WHERE id = $2 AND representative_id = $1)
               OR EXISTS (SELECT 1 FROM identity.handlers
                          WHERE enterprise_id = $2 AND person_id = $1 AND $3 = ANY (scopes)
                            AND revoked_at IS NULL AND valid_until > now())""",
        person_id,
        enterprise_id,
        scope,
    )
    return allowed


# ---------------------------------------------------------------- agents for citizens aged 60+ (代理人)

_AGENT_SELECT = """SELECT a.*, pe.wangha AS elder_wangha, pe.name_enc AS elder_name_enc,
                          pa.wangha AS agent_wangha, pa.name_enc AS agent_name_enc
                   FROM identity.agents a
                   JOIN identity.people pe ON pe.id = a.elder_id JOIN identity.people pa ON pa.id = a.agent_id"""


async def lock_agents_of(db: Executor, elder_id: str) -> None:
    """Serialise one elder's grants (transaction-level advisory lock) so the cap holds under concurrent requests."""
    await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"agents:{elder_id}")


async def count_active_agents(db: Executor, elder_id: uuid.UUID) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM identity.agents WHERE elder_id = $1 AND revoked_at IS NULL AND valid_until > now()",
        elder_id,
    )
    return count


async def insert_agent(
    db: Executor,
    grant_id: uuid.UUID,
    elder_id: uuid.UUID,
    agent_id: uuid.UUID,
    scopes: list[str],
    valid_from: datetime,
    valid_until: datetime,
) -> None:
    await db.execute(
        """INSERT INTO identity.agents (id, elder_id, agent_id, scopes, valid_from, valid_until)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        grant_id,
        elder_id,
        agent_id,
        scopes,
        valid_from,
        valid_until,
    )


async def agent_view_row(db: Executor, grant_id: uuid.UUID) -> Record | None:
    """The grant with both people's 网号 and encrypted names."""
    return await db.fetchrow(_AGENT_SELECT + " WHERE a.id = $1", grant_id)


async def agents_of(
    db: Executor, person_id: uuid.UUID, after: datetime | None, after_id: uuid.UUID | None, limit: int
) -> list[Record]:
    """Grants the person made as elder or received as agent, newest first, keyset-paged."""
    return await db.fetch(
        _AGENT_SELECT
        + """ WHERE (a.elder_id = $1 OR a.agent_id = $1)
                AND ($2::timestamptz IS NULL OR (a.created_at, a.id) < ($2, $3))
              ORDER BY a.created_at DESC, a.id DESC LIMIT $4""",
        person_id,
        after,
        after_id,
        limit,
    )


async def lock_agent(db: Executor, grant_id: uuid.UUID) -> Record | None:
    return await db.fetchrow(
        "SELECT elder_id, agent_id, revoked_at FROM identity.agents WHERE id = $1 FOR UPDATE", grant_id
    )


async def revoke_agent(db: Executor, grant_id: uuid.UUID) -> None:
    await db.execute("UPDATE identity.agents SET revoked_at = now() WHERE id = $1", grant_id)


async def agent_grant(db: Executor, grant_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT * FROM identity.agents WHERE id = $1", grant_id)


async def may_act_for_elder(db: Executor, agent_id: uuid.UUID, elder_id: uuid.UUID, scope: str) -> bool:
    """An active grant (not revoked, within its window) from the elder to the agent with the scope."""
    allowed: bool = await db.fetchval(
        """SELECT EXISTS (SELECT 1 FROM identity.agents
                          WHERE agent_id = $1 AND elder_id = $2 AND $3 = ANY (scopes) AND revoked_at IS NULL
                            AND valid_from <= now() AND valid_until > now())""",
        agent_id,
        elder_id,
        scope,
    )
    return allowed
