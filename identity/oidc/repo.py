"""SQL of the OpenID provider's consents as the app shows them to the person (list, withdraw)."""

from __future__ import annotations

import uuid

from core.db import Executor, Record


async def consents_of(db: Executor, person_id: str) -> list[Record]:
    """The person's live consents, newest first, with the client's name (`client_id, scopes, granted_at, name`)."""
    return await db.fetch(
        """SELECT c.client_id, c.scopes, c.granted_at, k.name FROM identity.consents c
           JOIN identity.clients k ON k.client_id = c.client_id
           WHERE c.person_id = $1 AND c.withdrawn_at IS NULL ORDER BY c.granted_at DESC LIMIT 200""",
        uuid.UUID(person_id),
    )


async def withdraw_consent(db: Executor, person_id: str, client_id: str) -> bool:
    """Mark the live consent withdrawn; False when there was none."""
    done = await db.fetchval(
        """UPDATE identity.consents SET withdrawn_at = now() WHERE person_id = $1 AND client_id = $2
           AND withdrawn_at IS NULL RETURNING 1""",
        uuid.UUID(person_id),
        client_id,
    )
    return bool(done)
