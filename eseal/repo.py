"""SQL of eseal, nothing else."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from core.db import Executor
from core.filters import contains

Row = Any


async def next_key_index(db: Executor) -> int:
    value: int = await db.fetchval("SELECT nextval('eseal.key_index_seq')")
    return value


# -- CAs


async def trust_generation(db: Executor) -> int:
    """The trust material's generation (migration 003: bumped by every change to CAs, CRLs, certificates, seals)."""
    value: int = await db.fetchval("SELECT n FROM eseal.trust_generation")
    return value


async def cas(db: Executor) -> list[Row]:
    return list(await db.fetch("SELECT * FROM eseal.cas ORDER BY priority, id"))


async def ca(db: Executor, ca_id: str) -> Row | None:
    return await db.fetchrow("SELECT * FROM eseal.cas WHERE id = $1", ca_id)


async def insert_ca(
    db: Executor, ca_id: str, algorithm: str, parent: str | None, key_index: int | None, cert: bytes, priority: int
) -> None:
    await db.execute(
        """INSERT INTO eseal.cas (id, algorithm, parent_id, key_index, cert_der, priority)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING""",
        ca_id,
        algorithm,
        parent,
        key_index,
        cert,
        priority,
    )


async def bump_crl_number(db: Executor, ca_id: str) -> int:
    value: int = await db.fetchval(
        "UPDATE eseal.cas SET crl_number = crl_number + 1 WHERE id = $1 RETURNING crl_number", ca_id
    )
    return value


async def set_trust(db: Executor, ca_id: str, trusted: bool, priority: int) -> bool:
    done = await db.execute("UPDATE eseal.cas SET trusted = $2, priority = $3 WHERE id = $1", ca_id, trusted, priority)
    return str(done).endswith("1")


# -- certificates


async def insert_certificate(db: Executor, **values: Any) -> Row:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await db.fetchrow(
        f"INSERT INTO eseal.certificates ({columns}) VALUES ({params}) RETURNING *",  # noqa: S608 - our column names
        *values.values(),
    )
    assert row is not None
    return row


async def certificate(db: Executor, cert_id: uuid.UUID) -> Row | None:
    return await db.fetchrow("SELECT * FROM eseal.certificates WHERE id = $1", cert_id)


async def certificate_by_serial(db: Executor, serial: int) -> Row | None:
    return await db.fetchrow("SELECT * FROM eseal.certificates WHERE serial = $1", serial)


async def certificate_by_applicant(db: Executor, applicant: str) -> Row | None:
    return await db.fetchrow(
        "SELECT * FROM eseal.certificates WHERE applicant = $1 AND status = 'issued' ORDER BY created_at DESC LIMIT 1",
        applicant,
    )


async def update_certificate(db: Executor, cert_id: uuid.UUID, **values: Any) -> Row | None:
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=2))
    return await db.fetchrow(
        f"UPDATE eseal.certificates SET {sets}, updated_at = now() WHERE id = $1 RETURNING *",  # noqa: S608
        cert_id,
        *values.values(),
    )


async def revoked_serials(db: Executor, ca_id: str) -> list[Row]:
    return list(
        await db.fetch(
            """SELECT serial, revoked_at, revoke_reason FROM eseal.certificates
               WHERE ca_id = $1 AND status IN ('revoked', 'suspended') ORDER BY serial""",
            ca_id,
        )
    )


async def list_certificates(
    db: Executor, *, status: str | None, form: str | None, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> list[Row]:
    return list(
        await db.fetch(
            """SELECT * FROM eseal.certificates
               WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR form = $2)
                 AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
               ORDER BY created_at DESC, id DESC LIMIT $5""",
            status,
            form,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
    )


# -- seals


async def insert_seal(db: Executor, **values: Any) -> Row:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await db.fetchrow(
        f"INSERT INTO eseal.seals ({columns}) VALUES ({params}) RETURNING *",  # noqa: S608 - our column names
        *values.values(),
    )
    assert row is not None
    return row


async def seal(db: Executor, seal_id: uuid.UUID) -> Row | None:
    return await db.fetchrow("SELECT * FROM eseal.seals WHERE id = $1", seal_id)


async def seal_by_code(db: Executor, code: str) -> Row | None:
    return await db.fetchrow("SELECT * FROM eseal.seals WHERE code = $1", code)


async def update_seal(db: Executor, seal_id: uuid.UUID, **values: Any) -> Row | None:
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=2))
    return await db.fetchrow(
        f"UPDATE eseal.seals SET {sets}, updated_at = now() WHERE id = $1 RETURNING *",  # noqa: S608
        seal_id,
        *values.values(),
    )


async def count_seals_with_prefix(db: Executor, prefix: str) -> int:
    value: int = await db.fetchval("SELECT count(*) FROM eseal.seals WHERE code LIKE $1", prefix + "%")
    return value


async def search_seals(
    db: Executor,
    *,
    kind: str | None,
    status: str | None,
    org_name: str | None,
    code: str | None,
    name: str | None,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    return list(
        await db.fetch(
            """SELECT * FROM eseal.seals
               WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR status = $2)
                 AND ($3::text IS NULL OR org_name = $3) AND ($4::text IS NULL OR code = $4)
                 AND ($5::text IS NULL OR name LIKE $5 ESCAPE '\\')
                 AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7))
               ORDER BY created_at DESC, id DESC LIMIT $8""",
            kind,
            status,
            org_name,
            code,
            contains(name) if name is not None else None,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
    )


async def bind_cert(db: Executor, seal_id: uuid.UUID, cert_id: uuid.UUID) -> None:
    await db.execute("INSERT INTO eseal.seal_certs VALUES ($1, $2) ON CONFLICT DO NOTHING", seal_id, cert_id)


async def seal_cert_rows(db: Executor, seal_id: uuid.UUID) -> list[Row]:
    return list(
        await db.fetch(
            """SELECT c.* FROM eseal.seal_certs sc JOIN eseal.certificates c ON c.id = sc.cert_id
               WHERE sc.seal_id = $1 ORDER BY c.created_at""",
            seal_id,
        )
    )


async def grant(db: Executor, seal_id: uuid.UUID, kind: str, grantee: str) -> None:
    await db.execute(
        "INSERT INTO eseal.seal_grants (seal_id, grantee_kind, grantee) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        seal_id,
        kind,
        grantee,
    )


async def ungrant(db: Executor, seal_id: uuid.UUID, kind: str, grantee: str) -> None:
    await db.execute(
        "DELETE FROM eseal.seal_grants WHERE seal_id = $1 AND grantee_kind = $2 AND grantee = $3",
        seal_id,
        kind,
        grantee,
    )


async def granted(db: Executor, seal_id: uuid.UUID, kind: str, grantee: str) -> bool:
    value: bool = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM eseal.seal_grants WHERE seal_id = $1 AND grantee_kind = $2 AND grantee = $3)",
        seal_id,
        kind,
        grantee,
    )
    return value


# -- seal passwords


async def password(db: Executor, user_id: str) -> Row | None:
    return await db.fetchrow("SELECT * FROM eseal.seal_passwords WHERE user_id = $1", user_id)


async def set_password(db: Executor, user_id: str, hashed: str) -> None:
    await db.execute(
        """INSERT INTO eseal.seal_passwords (user_id, hash) VALUES ($1, $2)
           ON CONFLICT (user_id) DO UPDATE SET hash = $2, failures = 0, locked_until = NULL, updated_at = now()""",
        user_id,
        hashed,
    )


async def password_attempt(db: Executor, user_id: str, lock_after: int, lock_for: dt.timedelta) -> Row | None:
    """Count one attempt and decide in the same statement: the row (with `hash` and `failures`) when the attempt may
    be checked — it stays counted as a failure until `password_ok` — and the `lock_after`-th attempt locks; None when
    the password is locked or unset. A lock that ran out starts the count again. Concurrent attempts are ordered by
    the row lock, so a burst is judged like a sequence."""
    return await db.fetchrow(
        """UPDATE eseal.seal_passwords p
              SET failures = CASE WHEN p.locked_until IS NULL THEN p.failures + 1 ELSE 1 END,
                  locked_until = CASE WHEN (CASE WHEN p.locked_until IS NULL THEN p.failures + 1 ELSE 1 END) >= $2
                                      THEN now() + $3 END
            WHERE p.user_id = $1 AND (p.locked_until IS NULL OR p.locked_until <= now())
        RETURNING p.hash, p.failures, p.locked_until""",
        user_id,
        lock_after,
        lock_for,
    )


async def password_ok(db: Executor, user_id: str) -> None:
    await db.execute("UPDATE eseal.seal_passwords SET failures = 0, locked_until = NULL WHERE user_id = $1", user_id)


# -- apps


async def insert_app(db: Executor, code: str, name: str, secret_enc: str) -> None:
    await db.execute(
        """INSERT INTO eseal.apps (code, name, secret_enc) VALUES ($1, $2, $3)
           ON CONFLICT (code) DO UPDATE SET name = $2, secret_enc = $3, active = true""",
        code,
        name,
        secret_enc,
    )


async def app(db: Executor, code: str) -> Row | None:
    return await db.fetchrow("SELECT * FROM eseal.apps WHERE code = $1 AND active", code)


# -- logs


async def log_head_for_update(db: Executor) -> Row:
    row = await db.fetchrow("UPDATE eseal.log_head SET seq = seq + 1 RETURNING seq, hash")
    assert row is not None
    return row


async def insert_log(db: Executor, values: Sequence[Any]) -> None:
    await db.execute(
        """INSERT INTO eseal.logs (seq, at, kind, action, actor, seal_code, cert_serial, doc_name, doc_hash, result,
                                   ip, detail, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        *values,
    )


async def log_head_reserve(db: Executor, n: int) -> Row:
    """Lock the head and take `n` sequence numbers: returns the last one and the hash before them."""
    row = await db.fetchrow("UPDATE eseal.log_head SET seq = seq + $1 RETURNING seq, hash", n)
    assert row is not None
    return row


async def insert_logs(db: Executor, rows: Sequence[Sequence[Any]]) -> None:
    await db.executemany(
        """INSERT INTO eseal.logs (seq, at, kind, action, actor, seal_code, cert_serial, doc_name, doc_hash, result,
                                   ip, detail, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        rows,
    )


async def set_log_head(db: Executor, digest: bytes) -> None:
    await db.execute("UPDATE eseal.log_head SET hash = $1", digest)


_LOG_FILTERS = (
    ("kind", "kind = ${}"),
    ("actor", "actor = ${}"),
    ("action", "action = ${}"),
    ("seal_code", "seal_code = ${}"),
    ("cert_serial", "cert_serial = ${}"),
    ("doc_hash", "doc_hash = ${}"),
    ("result", "result = ${}"),
    ("ip", "ip = ${}"),
    ("doc_name", "doc_name LIKE ${} ESCAPE '\\'"),
    ("since", "at >= ${}"),
    ("until", "at < ${}"),
    ("before_seq", "seq < ${}"),
)


async def search_logs(db: Executor, filters: dict[str, Any], limit: int) -> list[Row]:
    """Newest first. Filters are ANDed; `before_seq` is the keyset cursor."""
    where: list[str] = []
    args: list[Any] = []
    for key, clause in _LOG_FILTERS:
        if filters.get(key) is not None:
            args.append(contains(filters[key]) if key == "doc_name" else filters[key])
            where.append(clause.format(len(args)))
    args.append(limit)
    sql = "SELECT * FROM eseal.logs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY seq DESC LIMIT ${len(args)}"
    return list(await db.fetch(sql, *args))


async def all_logs(db: Executor) -> Any:
    return db.cursor("SELECT * FROM eseal.logs ORDER BY seq", prefetch=5000)  # type: ignore[union-attr]


# -- statistics


async def stats(db: Executor, since: dt.datetime) -> dict[str, list[Row]]:
    return {
        "seals_by_kind": list(await db.fetch("SELECT kind AS k, count(*) AS n FROM eseal.seals GROUP BY kind")),
        "seals_by_status": list(await db.fetch("SELECT status AS k, count(*) AS n FROM eseal.seals GROUP BY status")),
        "certs_by_form": list(await db.fetch("SELECT form AS k, count(*) AS n FROM eseal.certificates GROUP BY form")),
        "certs_by_status": list(
            await db.fetch("SELECT status AS k, count(*) AS n FROM eseal.certificates GROUP BY status")
        ),
        "signs_by_day": list(
            await db.fetch(
                """SELECT to_char(date_trunc('day', at), 'YYYY-MM-DD') AS k, count(*) AS n FROM eseal.logs
                   WHERE kind = 'sign' AND action = 'sign' AND at >= $1 GROUP BY 1 ORDER BY 1""",
                since,
            )
        ),
        "verifications": list(
            await db.fetch("SELECT 'all' AS k, count(*) AS n FROM eseal.logs WHERE kind = 'verify' AND at >= $1", since)
        ),
    }


# -- legacy import


async def import_done(db: Executor, source: str) -> set[int]:
    return {r["line"] for r in await db.fetch("SELECT line FROM eseal.import_rows WHERE source = $1", source)}


async def import_mark(
    db: Executor, source: str, line: int, outcome: str, reason: str, seal_id: uuid.UUID | None
) -> None:
    await db.execute(
        """INSERT INTO eseal.import_rows (source, line, outcome, reason, seal_id) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (source, line) DO NOTHING""",
        source,
        line,
        outcome,
        reason,
        seal_id,
    )


async def import_rejects(db: Executor, source: str) -> list[Row]:
    return list(
        await db.fetch(
            "SELECT line, reason FROM eseal.import_rows WHERE source = $1 AND outcome = 'rejected' ORDER BY line",
            source,
        )
    )


async def next_seal_number(db: Executor) -> int:
    value: int = await db.fetchval("SELECT nextval('eseal.seal_code_seq')")
    return value


async def seal_ids_for_cert(db: Executor, cert_id: uuid.UUID) -> list[uuid.UUID]:
    return [r["seal_id"] for r in await db.fetch("SELECT seal_id FROM eseal.seal_certs WHERE cert_id = $1", cert_id)]


# -- the seal platform's outbox (eseal.sealplatform)


async def outbox_add(db: Executor, key: str, kind: str, seal_id: uuid.UUID, payload: dict[str, Any]) -> Row:
    """The message, once per key (a second add of the same key returns the first)."""
    row = await db.fetchrow(
        """INSERT INTO eseal.platform_outbox (key, kind, seal_id, payload) VALUES ($1, $2, $3, $4)
           ON CONFLICT (key) DO NOTHING RETURNING *""",
        key,
        kind,
        seal_id,
        payload,
    )
    if row is None:
        row = await db.fetchrow("SELECT * FROM eseal.platform_outbox WHERE key = $1", key)
    assert row is not None
    return row


async def outbox_due(db: Executor, limit: int, seal_id: uuid.UUID | None = None) -> list[Row]:
    """Undelivered messages whose time has come, oldest first; the earliest of each seal only (a seal's messages
    go in order: its filing before its status changes)."""
    return list(
        await db.fetch(
            """SELECT o.* FROM eseal.platform_outbox o
               WHERE o.delivered_at IS NULL AND o.next_at <= now() AND ($2::uuid IS NULL OR o.seal_id = $2)
                 AND NOT EXISTS (SELECT 1 FROM eseal.platform_outbox p
                                 WHERE p.seal_id = o.seal_id AND p.delivered_at IS NULL AND p.id < o.id)
               ORDER BY o.id LIMIT $1""",
            limit,
            seal_id,
        )
    )


async def outbox_claim(db: Executor, msg_id: int) -> Row | None:
    """Lock one undelivered message for this delivery (another worker holding it: None)."""
    return await db.fetchrow(
        "SELECT * FROM eseal.platform_outbox WHERE id = $1 AND delivered_at IS NULL FOR UPDATE SKIP LOCKED", msg_id
    )


async def outbox_delivered(db: Executor, msg_id: int) -> None:
    await db.execute(
        "UPDATE eseal.platform_outbox SET delivered_at = now(), attempts = attempts + 1, last_error = '' WHERE id = $1",
        msg_id,
    )


async def outbox_failed(db: Executor, msg_id: int, error: str, backoff_max: int) -> None:
    """One more attempt counted; the next after 2^attempts seconds (capped)."""
    await db.execute(
        """UPDATE eseal.platform_outbox SET attempts = attempts + 1, last_error = $2,
                  next_at = now() + make_interval(secs => least($3::int, power(2, least(attempts, 20))::int))
           WHERE id = $1""",
        msg_id,
        error[:500],
        backoff_max,
    )


async def outbox_pending(db: Executor) -> int:
    value: int = await db.fetchval("SELECT count(*) FROM eseal.platform_outbox WHERE delivered_at IS NULL")
    return value


async def outbox_pending_for(db: Executor, seal_id: uuid.UUID) -> int:
    value: int = await db.fetchval(
        "SELECT count(*) FROM eseal.platform_outbox WHERE seal_id = $1 AND delivered_at IS NULL", seal_id
    )
    return value


async def filed_seals(db: Executor, after: str, limit: int) -> list[Row]:
    """Our seals the platform should know (filed or being filed), by code, for reconciliation."""
    return list(
        await db.fetch(
            """SELECT * FROM eseal.seals WHERE code > $1
                 AND status IN ('filing', 'registered', 'published', 'suspended', 'revoked', 'destroyed')
               ORDER BY code LIMIT $2""",
            after,
            limit,
        )
    )


async def sealing_logs_after(db: Executor, limit: int) -> tuple[int, list[Row]]:
    """The platform's cursor and the sealing (sign) log rows after it."""
    cursor: int = await db.fetchval("SELECT seq FROM eseal.platform_log_cursor")
    rows = await db.fetch(
        """SELECT seq, at, actor, action, seal_code, cert_serial, doc_name, doc_hash, result FROM eseal.logs
           WHERE seq > $1 AND kind = 'sign' AND seal_code <> '' ORDER BY seq LIMIT $2""",
        cursor,
        limit,
    )
    return cursor, list(rows)


async def move_log_cursor(db: Executor, seq: int) -> None:
    await db.execute("UPDATE eseal.platform_log_cursor SET seq = greatest(seq, $1)", seq)
