"""SQL of identity's shared core (identity.people and what the top-level modules keep), nothing else."""

from __future__ import annotations

import uuid
from datetime import datetime

from asyncpg.cursor import CursorFactory

from core.db import Connection, Executor, Record

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


async def wangha_taken(db: Executor, wangha: str) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM identity.people WHERE wangha = $1", wangha))


async def insert_person(
    db: Executor,
    *,
    person_id: uuid.UUID,
    wangha: str,
    id_type: str,
    id_index: bytes,
    id_number_enc: str,
    name_enc: str,
    phone_index: bytes,
    phone_enc: str,
    gender: str,
    birth_date_enc: str,
) -> None:
    """asyncpg.UniqueViolationError when the ID number is enrolled already."""
    await db.execute(
        """INSERT INTO identity.people (id, wangha, id_type, id_index, id_number_enc, name_enc, phone_index,
                                        phone_enc, gender, birth_date_enc)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)""",
        person_id,
        wangha,
        id_type,
        id_index,
        id_number_enc,
        name_enc,
        phone_index,
        phone_enc,
        gender,
        birth_date_enc,
    )


async def person(db: Executor, person_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT * FROM identity.people WHERE id = $1", person_id)


async def people_facts_after(db: Executor, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Record]:
    """`id, created_at, gender, id_type, id_number_enc, birth_date_enc` of the next `limit` people enrolled after
    `after` (created_at, id), in enrolment order."""
    if after is None:
        return await db.fetch(
            """SELECT id, created_at, gender, id_type, id_number_enc, birth_date_enc FROM identity.people
               ORDER BY created_at, id LIMIT $1""",
            limit,
        )
    return await db.fetch(
        """SELECT id, created_at, gender, id_type, id_number_enc, birth_date_enc FROM identity.people
           WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT $3""",
        after[0],
        after[1],
        limit,
    )


# A legal-person user acts for an enterprise: its legal representative or a handler it has not revoked.
_SEGMENT = """
SELECT p.id, p.birth_date_enc FROM identity.people p
 WHERE p.id > $1 AND ($2::text IS NULL OR p.gender = $2)
   AND ($3::text IS NULL OR ($3 = 'legal') = (
        EXISTS (SELECT 1 FROM identity.enterprises e WHERE e.representative_id = p.id)
     OR EXISTS (SELECT 1 FROM identity.handlers h
                 WHERE h.person_id = p.id AND h.revoked_at IS NULL AND h.valid_until > now())))
 ORDER BY p.id"""


def segment_cursor(
    conn: Connection, after: uuid.UUID, sex: str | None, user_type: str | None, prefetch: int
) -> CursorFactory[Record]:
    """A server-side cursor (inside the caller's transaction) over `id, birth_date_enc` of the people after `after`
    of this sex and user type (natural/legal; None: any), ascending by id."""
    return conn.cursor(_SEGMENT, after, sex, user_type, prefetch=prefetch)


# ---------------------------------------------------------------- sessions


async def insert_session(
    db: Executor,
    session_id: uuid.UUID,
    person_id: uuid.UUID,
    device_id: uuid.UUID | None,
    label: str,
    acr: str,
    refresh_hash: bytes,
    expires_at: datetime,
) -> None:
    await db.execute(
        """INSERT INTO identity.sessions (id, person_id, device_id, device_label, acr, refresh_hash, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        session_id,
        person_id,
        device_id,
        label,
        acr,
        refresh_hash,
        expires_at,
    )


async def session_of_retired_refresh(db: Executor, refresh_hash: bytes) -> uuid.UUID | None:
    """The session a rotated-out refresh token belonged to."""
    found: uuid.UUID | None = await db.fetchval(
        "SELECT session_id FROM identity.retired_refresh WHERE refresh_hash = $1", refresh_hash
    )
    return found


async def lock_live_session_by_refresh(db: Executor, refresh_hash: bytes) -> Record | None:
    """`id, person_id, device_id, acr` of the live session holding this refresh token, row locked."""
    return await db.fetchrow(
        """SELECT id, person_id, device_id, acr FROM identity.sessions
           WHERE refresh_hash = $1 AND ended_at IS NULL AND expires_at > now() FOR UPDATE""",
        refresh_hash,
    )


async def retire_refresh(db: Executor, refresh_hash: bytes, session_id: uuid.UUID) -> None:
    await db.execute(
        "INSERT INTO identity.retired_refresh (refresh_hash, session_id) VALUES ($1, $2)", refresh_hash, session_id
    )


async def rotate_refresh(db: Executor, session_id: uuid.UUID, refresh_hash: bytes) -> None:
    await db.execute(
        """UPDATE identity.sessions SET refresh_hash = $2, refresh_generation = refresh_generation + 1,
           last_used_at = now() WHERE id = $1""",
        session_id,
        refresh_hash,
    )


async def end_session(db: Executor, session_id: uuid.UUID, reason: str) -> None:
    await db.execute(
        "UPDATE identity.sessions SET ended_at = now(), end_reason = $2 WHERE id = $1 AND ended_at IS NULL",
        session_id,
        reason,
    )


async def live_session_owner(db: Executor, session_id: uuid.UUID) -> uuid.UUID | None:
    owner: uuid.UUID | None = await db.fetchval(
        "SELECT person_id FROM identity.sessions WHERE id = $1 AND ended_at IS NULL", session_id
    )
    return owner


async def live_sessions_of_device(db: Executor, device_id: uuid.UUID) -> list[Record]:
    return await db.fetch("SELECT id FROM identity.sessions WHERE device_id = $1 AND ended_at IS NULL", device_id)


async def live_sessions_of(db: Executor, person_id: uuid.UUID) -> list[Record]:
    """`id, device_label, acr, created_at, last_used_at` of the person's live sessions, most recently used first."""
    return await db.fetch(
        """SELECT id, device_label, acr, created_at, last_used_at FROM identity.sessions
           WHERE person_id = $1 AND ended_at IS NULL AND expires_at > now() ORDER BY last_used_at DESC LIMIT 100""",
        person_id,
    )


# ---------------------------------------------------------------- clients (relying parties)


async def insert_client(
    db: Executor,
    *,
    client_id: str,
    name: str,
    kind: str,
    zone: str,
    secret_hash: str | None,
    auth_method: str,
    redirect_uris: list[str],
    entitlements: list[str],
    sector: str,
    min_acr: str,
    id_token_alg: str,
    post_logout_redirect_uris: list[str],
    backchannel_logout_uri: str | None,
    jwks: dict[str, object] | None,
) -> None:
    await db.execute(
        """INSERT INTO identity.clients (client_id, name, kind, zone, secret_hash, auth_method, redirect_uris,
                                         entitlements, sector, min_acr, id_token_alg, post_logout_redirect_uris,
                                         backchannel_logout_uri, jwks)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)""",
        client_id,
        name,
        kind,
        zone,
        secret_hash,
        auth_method,
        redirect_uris,
        entitlements,
        sector,
        min_acr,
        id_token_alg,
        post_logout_redirect_uris,
        backchannel_logout_uri,
        jwks,
    )


async def client(db: Executor, client_id: str) -> Record | None:
    return await db.fetchrow("SELECT * FROM identity.clients WHERE client_id = $1", client_id)


async def update_client_grants(
    db: Executor, client_id: str, entitlements: list[str], redirect_uris: list[str], zone: str
) -> None:
    await db.execute(
        "UPDATE identity.clients SET entitlements = $2, redirect_uris = $3, zone = $4 WHERE client_id = $1",
        client_id,
        entitlements,
        redirect_uris,
        zone,
    )


async def set_client_redirect_uris(db: Executor, client_id: str, redirect_uris: list[str]) -> None:
    await db.execute("UPDATE identity.clients SET redirect_uris = $2 WHERE client_id = $1", client_id, redirect_uris)


# ---------------------------------------------------------------- issuer keys (SM2)


async def issuer_keys(db: Executor) -> list[Record]:
    """`kid, public_key, private_key_enc, retired_at` of every issuer key, newest first."""
    return await db.fetch(
        "SELECT kid, public_key, private_key_enc, retired_at FROM identity.issuer_keys ORDER BY created_at DESC"
    )


async def lock_issuer_keys(db: Executor) -> None:
    """Serialise key creation (transaction-level advisory lock)."""
    await db.execute("SELECT pg_advisory_xact_lock(7200101)")


async def insert_issuer_key(db: Executor, kid: str, public_key: bytes, private_key_enc: str) -> None:
    await db.execute(
        "INSERT INTO identity.issuer_keys (kid, public_key, private_key_enc) VALUES ($1, $2, $3)",
        kid,
        public_key,
        private_key_enc,
    )


async def retire_issuer_key(db: Executor, kid: str) -> None:
    await db.execute("UPDATE identity.issuer_keys SET retired_at = now() WHERE kid = $1", kid)
