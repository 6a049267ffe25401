"""SQL of e-licences (identity.licence_presentations, identity.verifier_staff), nothing else."""

from __future__ import annotations

import uuid
from datetime import datetime

from core.db import Executor, Record


async def insert_presentation(
    db: Executor, jti: uuid.UUID, person_id: uuid.UUID, kind: str, purpose: str, issued: datetime, exp: int
) -> None:
    """A 亮证 QR shown: `exp` in Unix seconds."""
    await db.execute(
        """INSERT INTO identity.licence_presentations (id, person_id, kind, purpose, issued_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, to_timestamp($6))""",
        jti,
        person_id,
        kind,
        purpose,
        issued,
        exp,
    )


async def use_presentation(db: Executor, jti: uuid.UUID, used_by: str) -> Record | None:
    """Mark an unused, unexpired (5 s grace) presentation used; its `person_id, kind, purpose`, or None."""
    return await db.fetchrow(
        """UPDATE identity.licence_presentations SET used_at = now(), used_by = $2
           WHERE id = $1 AND used_at IS NULL AND expires_at > now() - interval '5 seconds'
           RETURNING person_id, kind, purpose""",
        jti,
        used_by,
    )


async def presentation_used(db: Executor, jti: uuid.UUID) -> bool | None:
    """Whether the presentation was used already; None when there is no such presentation."""
    used: bool | None = await db.fetchval(
        "SELECT used_at IS NOT NULL FROM identity.licence_presentations WHERE id = $1", jti
    )
    return used


async def link_verifier_staff(db: Executor, person_id: uuid.UUID, client_id: str) -> None:
    await db.execute(
        """INSERT INTO identity.verifier_staff (person_id, client_id) VALUES ($1, $2)
           ON CONFLICT (person_id) DO UPDATE SET client_id = EXCLUDED.client_id, added_at = now()""",
        person_id,
        client_id,
    )


async def verifier_client_id(db: Executor, person_id: uuid.UUID) -> str | None:
    client_id: str | None = await db.fetchval(
        "SELECT client_id FROM identity.verifier_staff WHERE person_id = $1", person_id
    )
    return client_id
