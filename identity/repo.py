"""SQL of identity's shared core (identity.people and what the top-level modules keep), nothing else."""

from __future__ import annotations

import uuid

from core.db import Executor

# ---------------------------------------------------------------- people


async def person_id_by_id_index(db: Executor, id_index: bytes) -> uuid.UUID | None:
    """The person enrolled with this ID number (its blind index, people.id_index)."""
    found: uuid.UUID | None = await db.fetchval("SELECT id FROM identity.people WHERE id_index = $1", id_index)
    return found


async def person_id_by_phone_index(db: Executor, phone_index: bytes) -> uuid.UUID | None:
    """The person most recently enrolled with this phone (its blind index)."""
    found: uuid.UUID | None = await db.fetchval(
        "SELECT id FROM identity.people WHERE phone_index = $1 ORDER BY created_at DESC LIMIT 1", phone_index
    )
    return found
