"""SQL of enrolment and credentials (identity.credentials, identity.devices, identity.pins,
identity.external_accounts), nothing else."""

from __future__ import annotations

import uuid
from datetime import datetime

from core.db import Executor, Record

# ---------------------------------------------------------------- 网证 (identity.credentials)


async def credential_status(db: Executor, serial: str) -> str | None:
    status: str | None = await db.fetchval("SELECT status FROM identity.credentials WHERE serial = $1", serial)
    return status


async def insert_credential(
    db: Executor,
    *,
    serial: str,
    person_id: uuid.UUID,
    device_id: uuid.UUID,
    kid: str,
    level: str,
    document: str,
    salts_enc: str,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await db.execute(
        """INSERT INTO identity.credentials (serial, person_id, device_id, kid, level, document, salts_enc,
                                             issued_at, expires_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)""",
        serial,
        person_id,
        device_id,
        kid,
        level,
        document,
        salts_enc,
        issued_at,
        expires_at,
    )


async def credential_for_sign_in(db: Executor, serial: str) -> Record | None:
    """The credential with its device's public key, name and platform."""
    return await db.fetchrow(
        """SELECT c.person_id, c.device_id, c.status, c.expires_at, d.public_key, d.name, d.platform
           FROM identity.credentials c JOIN identity.devices d ON d.id = c.device_id WHERE c.serial = $1""",
        serial,
    )


async def credentials_of(db: Executor, person_id: uuid.UUID) -> list[Record]:
    return await db.fetch(
        """SELECT c.*, p.wangha FROM identity.credentials c JOIN identity.people p ON p.id = c.person_id
           WHERE c.person_id = $1 ORDER BY c.issued_at DESC LIMIT 50""",
        person_id,
    )


async def lock_credential(db: Executor, serial: str) -> Record | None:
    """The credential with its holder's 网号, row locked for the transaction."""
    return await db.fetchrow(
        """SELECT c.*, p.wangha FROM identity.credentials c JOIN identity.people p ON p.id = c.person_id
           WHERE c.serial = $1 FOR UPDATE""",
        serial,
    )


async def set_credential_status(db: Executor, serial: str, status: str, reason: str) -> Record | None:
    return await db.fetchrow(
        """UPDATE identity.credentials SET status = $2, status_reason = $3, status_changed_at = now()
           WHERE serial = $1 RETURNING *""",
        serial,
        status,
        reason,
    )


async def lock_own_credential(db: Executor, serial: str, person_id: uuid.UUID) -> Record | None:
    """The person's credential with its device's public key, row locked for the transaction."""
    return await db.fetchrow(
        """SELECT c.*, d.public_key FROM identity.credentials c JOIN identity.devices d ON d.id = c.device_id
           WHERE c.serial = $1 AND c.person_id = $2 FOR UPDATE""",
        serial,
        person_id,
    )


async def revoke_renewed(db: Executor, serial: str, replaced_by: str) -> None:
    await db.execute(
        """UPDATE identity.credentials SET status = 'revoked', status_reason = 'renewed',
           status_changed_at = now(), replaced_by = $2 WHERE serial = $1""",
        serial,
        replaced_by,
    )


# ---------------------------------------------------------------- devices


async def insert_device(
    db: Executor, device_id: uuid.UUID, person_id: uuid.UUID, public_key: bytes, platform: str, name: str | None
) -> None:
    """asyncpg.UniqueViolationError when the key is already bound to a device."""
    await db.execute(
        "INSERT INTO identity.devices (id, person_id, public_key, platform, name) VALUES ($1,$2,$3,$4,$5)",
        device_id,
        person_id,
        public_key,
        platform,
        name,
    )


async def device_seen(db: Executor, device_id: uuid.UUID) -> None:
    await db.execute("UPDATE identity.devices SET last_seen_at = now() WHERE id = $1", device_id)


# ---------------------------------------------------------------- PINs


async def insert_pin(db: Executor, person_id: uuid.UUID, pin_hash: str) -> None:
    await db.execute("INSERT INTO identity.pins (person_id, hash) VALUES ($1, $2)", person_id, pin_hash)


async def pin_exists(db: Executor, person_id: uuid.UUID) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM identity.pins WHERE person_id = $1", person_id))


async def pin_ok(db: Executor, person_id: uuid.UUID) -> None:
    await db.execute("UPDATE identity.pins SET failures = 0, locked_until = NULL WHERE person_id = $1", person_id)


async def pin_attempt(db: Executor, person_id: uuid.UUID, max_failures: int, lock_minutes: int) -> Record | None:
    """Count one attempt and decide in the same statement: `hash, failures, locked_until` when the attempt may be
    checked (it is counted as a failure until `pin_ok` clears it; the `max_failures`-th locks the PIN), None when the
    PIN is locked (or not set). A lock that ran out starts the count again. A concurrent burst is judged as a
    sequence: the row lock orders the attempts and the one after the last allowed sees the lock."""
    return await db.fetchrow(
        """UPDATE identity.pins p
              SET failures = CASE WHEN p.locked_until IS NULL THEN p.failures + 1 ELSE 1 END,
                  locked_until = CASE WHEN (CASE WHEN p.locked_until IS NULL THEN p.failures + 1 ELSE 1 END) >= $2
                                      THEN now() + make_interval(mins => $3) END
            WHERE p.person_id = $1 AND (p.locked_until IS NULL OR p.locked_until <= now())
        RETURNING p.hash, p.failures, p.locked_until""",
        person_id,
        max_failures,
        lock_minutes,
    )


async def pin_lock(db: Executor, person_id: uuid.UUID) -> Record | None:
    """`locked_until` of the person's PIN; None when no PIN is set."""
    return await db.fetchrow("SELECT locked_until FROM identity.pins WHERE person_id = $1", person_id)


async def upsert_pin(db: Executor, person_id: uuid.UUID, pin_hash: str) -> None:
    await db.execute(
        """INSERT INTO identity.pins (person_id, hash) VALUES ($1, $2)
           ON CONFLICT (person_id) DO UPDATE SET hash = $2, failures = 0, locked_until = NULL, updated_at = now()""",
        person_id,
        pin_hash,
    )


# ---------------------------------------------------------------- mini-program accounts (identity.external_accounts)


async def upsert_external_account(
    db: Executor,
    account_id: uuid.UUID,
    provider: str,
    app_id: str,
    subject: str,
    union_id: str,
    session_key_enc: str | None,
) -> Record | None:
    """Record a platform login (`account_id` for a first one); the account's `id, person_id` (None while unbound)."""
    return await db.fetchrow(
        """INSERT INTO identity.external_accounts (id, provider, app_id, subject, union_id, session_key_enc)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (provider, app_id, subject) DO UPDATE
              SET session_key_enc = coalesce(excluded.session_key_enc, external_accounts.session_key_enc),
                  union_id = excluded.union_id, last_login_at = now()
           RETURNING id, person_id""",
        account_id,
        provider,
        app_id,
        subject,
        union_id,
        session_key_enc,
    )


async def bind_external_account(db: Executor, account_id: uuid.UUID, person_id: uuid.UUID) -> Record | None:
    """Bind an unbound account (or confirm its binding); `provider, subject`, or None when bound to another."""
    return await db.fetchrow(
        """UPDATE identity.external_accounts SET person_id = $2, bound_at = now()
           WHERE id = $1 AND (person_id IS NULL OR person_id = $2) RETURNING provider, subject""",
        account_id,
        person_id,
    )


async def status_changes(db: Executor, after: datetime, serial: str, limit: int) -> list[Record]:
    """The published status list: `serial, status, status_changed_at` after the (time, serial) cursor."""
    return await db.fetch(
        """SELECT serial, status, status_changed_at FROM identity.credentials
           WHERE (status_changed_at, serial) > ($1, $2) ORDER BY status_changed_at, serial LIMIT $3""",
        after,
        serial,
        limit,
    )
