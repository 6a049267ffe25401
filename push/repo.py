"""SQL of push, nothing else."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from core.db import Pool

Row = Any

# Claim a (message, device) pair for a provider call: insert-if-absent, or take it back from 'queued'/'retry'.
# A pair already 'sending', 'delivered' or 'failed' is not returned, so it never reaches the provider twice.
_CLAIM = """
INSERT INTO push.deliveries AS d (message_id, device_id, person_id, channel, status, attempts, claimed_by)
SELECT m, dv, p, c, 'sending', 1, $5 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[]) AS t (m, dv, p, c)
ON CONFLICT (message_id, device_id) DO UPDATE
   SET status = 'sending',
       attempts = d.attempts + 1,
       claimed_by = $5,
       claimed_at = now(), updated_at = now()
 WHERE d.status IN ('queued', 'retry')
RETURNING message_id, device_id, attempts, recovered
"""
# The claim and the claimed pairs' devices in one round trip (a consumer batch needs both).
_CLAIM_WITH_DEVICES = (
    "WITH c AS ("
    + _CLAIM
    + """)
SELECT c.message_id, c.device_id, c.attempts, c.recovered,
       d.id, d.person_id, d.platform, d.token, d.phone_enc, d.active
  FROM c LEFT JOIN push.devices d ON d.id = c.device_id"""
)


_UPSERT = """INSERT INTO push.devices (id, person_id, platform, token, phone_enc, app_version, locale, region, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, ''), $9)
ON CONFLICT {} DO UPDATE
   SET person_id = excluded.person_id, phone_enc = excluded.phone_enc,
       app_version = excluded.app_version, locale = excluded.locale, region = excluded.region,
       tags = excluded.tags, active = true, deactivated_reason = '', updated_at = now()
RETURNING *"""
_UPSERT_TOKEN = _UPSERT.format("(platform, token) WHERE token IS NOT NULL")
_UPSERT_SMS = _UPSERT.format("(person_id) WHERE platform = 'sms'")


async def upsert_device(
    db: Pool,
    *,
    person_id: uuid.UUID,
    platform: str,
    token: str | None,
    phone_enc: str | None,
    app_version: str,
    locale: str,
    region: str | None,
    tags: list[str],
) -> Row:
    return await db.fetchrow(
        _UPSERT_TOKEN if token is not None else _UPSERT_SMS,
        uuid.uuid4(),
        person_id,
        platform,
        token,
        phone_enc,
        app_version,
        locale,
        region,
        tags,
    )


async def list_devices(db: Pool, person_id: uuid.UUID) -> list[Row]:
    return await db.fetch(
        "SELECT * FROM push.devices WHERE person_id = $1 AND active ORDER BY created_at, id LIMIT 100", person_id
    )


async def unregister_device(db: Pool, person_id: uuid.UUID, device_id: uuid.UUID) -> bool:
    status = await db.execute(
        """UPDATE push.devices SET active = false, deactivated_reason = 'unregistered', updated_at = now()
           WHERE id = $1 AND person_id = $2 AND active""",
        device_id,
        person_id,
    )
    return bool(status.endswith(" 1"))


async def deactivate_devices(db: Pool, device_ids: Sequence[uuid.UUID], reason: str) -> None:
    await db.execute(
        """UPDATE push.devices SET active = false, deactivated_reason = $2, updated_at = now()
           WHERE id = ANY($1::uuid[])""",
        list(device_ids),
        reason[:200],
    )


async def devices_by_id(db: Pool, device_ids: Sequence[uuid.UUID]) -> list[Row]:
    return await db.fetch(
        "SELECT id, person_id, platform, token, phone_enc, active FROM push.devices WHERE id = ANY($1::uuid[])",
        list(device_ids),
    )


async def insert_message(db: Pool, **m: Any) -> Row | None:
    """The new message, or None when (client_id, idempotency_key) was seen before."""
    return await db.fetchrow(
        """INSERT INTO push.messages (id, client_id, idempotency_key, template, params, title, body, priority, ttl,
                                      collapse_key, send_at, channels, recipients, segment_region, segment_tags,
                                      topic, segment_sex, segment_age_bands, segment_user_type)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
           ON CONFLICT (client_id, idempotency_key) DO NOTHING
           RETURNING id, send_at""",
        m["id"],
        m["client_id"],
        m["idempotency_key"],
        m["template"],
        json.dumps(m["params"], ensure_ascii=False),
        m["title"],
        m["body"],
        m["priority"],
        m["ttl"],
        m["collapse_key"],
        m["send_at"],
        m["channels"],
        m["recipients"],
        m["segment_region"],
        m["segment_tags"],
        m.get("topic"),
        m.get("segment_sex"),
        m.get("segment_age_bands"),
        m.get("segment_user_type"),
    )


async def message_by_key(db: Pool, client_id: str, key: str) -> Row | None:
    return await db.fetchrow(
        "SELECT id, send_at FROM push.messages WHERE client_id = $1 AND idempotency_key = $2", client_id, key
    )


async def get_message(db: Pool, message_id: uuid.UUID) -> Row | None:
    return await db.fetchrow("SELECT * FROM push.messages WHERE id = $1", message_id)


async def messages_by_id(db: Pool, ids: Sequence[uuid.UUID]) -> list[Row]:
    return await db.fetch(
        """SELECT id, template, params, title, body, priority, ttl, collapse_key, send_at
           FROM push.messages WHERE id = ANY($1::uuid[])""",
        list(ids),
    )


async def save_fanout_cursor(db: Pool, message_id: uuid.UUID, after: uuid.UUID) -> None:
    await db.execute("UPDATE push.messages SET fanout_after = $2 WHERE id = $1", message_id, after)


async def mark_fanned_out(db: Pool, message_id: uuid.UUID) -> None:
    await db.execute("UPDATE push.messages SET status = 'fanned_out' WHERE id = $1", message_id)


async def target_devices_page(db: Pool, message: Row, after: uuid.UUID, limit: int) -> list[Row]:
    """One keyset page of the active devices (any platform) of a message's audience."""
    if message["recipients"] is not None:
        return await db.fetch(
            """SELECT id, person_id, platform FROM push.devices
               WHERE person_id = ANY($1::uuid[]) AND active AND id > $2 ORDER BY id LIMIT $3""",
            message["recipients"],
            after,
            limit,
        )
    if message["topic"] is not None:
        return await db.fetch(
            """SELECT d.id, d.person_id, d.platform
               FROM push.topic_subscriptions s JOIN push.devices d ON d.id = s.device_id
               WHERE s.topic = $1 AND s.device_id > $2 AND d.active ORDER BY s.device_id LIMIT $3""",
            message["topic"],
            after,
            limit,
        )
    # Walk the primary key and filter: the whole fan-out then reads each device once. `array_cat(tags, '{}')` keeps
    # the planner off the tags GIN index, which would find every match and sort it again for each page (a
    # broadcast's pages got slower as it went: quadratic in the audience).
    return await db.fetch(
        """SELECT id, person_id, platform FROM push.devices
           WHERE active AND id > $1 AND ($3::text IS NULL OR region = $3)
             AND array_cat(tags, '{}'::text[]) @> $4::text[]
           ORDER BY id LIMIT $2""",
        after,
        limit,
        message["segment_region"],
        message["segment_tags"] or [],
    )


async def add_to_inbox(
    db: Pool, message_id: uuid.UUID, person_ids: Sequence[uuid.UUID], at: dt.datetime
) -> list[uuid.UUID]:
    """Inbox entries for these people; returns those newly added (a repeated fan-out page announces nothing)."""
    rows = await db.fetch(
        """INSERT INTO push.inbox (person_id, message_id, created_at)
           SELECT DISTINCT p, $1::uuid, $3::timestamptz FROM unnest($2::uuid[]) AS p ON CONFLICT DO NOTHING
           RETURNING person_id""",
        message_id,
        list(person_ids),
        at,
    )
    return [r["person_id"] for r in rows]


async def claim(
    db: Pool,
    items: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]],
    worker: str = "",
    *,
    with_devices: bool = False,
) -> list[Row]:
    """Claim pairs for a provider call; `with_devices` adds each claimed pair's device columns (id NULL: gone)."""
    if not items:
        return []
    m, d, p, c = (list(col) for col in zip(*items, strict=True))
    return await db.fetch(_CLAIM_WITH_DEVICES if with_devices else _CLAIM, m, d, p, c, worker)


async def finish(
    db: Pool, status: str, items: Sequence[tuple[uuid.UUID, uuid.UUID, str, str]], *, uncertain: bool = False
) -> None:
    """Set the outcome of claimed pairs: items are (message_id, device_id, error, provider_id). `uncertain`: the
    call may have reached the provider, so the pair's next send is a recovered one (asks or collapses first)."""
    if not items:
        return
    m, d, e, pid = (list(col) for col in zip(*items, strict=True))
    await db.execute(
        """UPDATE push.deliveries AS d SET status = $1, error = t.e, provider_id = t.pid, updated_at = now(),
                  recovered = d.recovered OR $6
           FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[]) AS t (m, dv, e, pid)
           WHERE d.message_id = t.m AND d.device_id = t.dv AND d.status = 'sending'""",
        status,
        m,
        d,
        e,
        pid,
        uncertain,
    )


async def delivery_counts(db: Pool, message_id: uuid.UUID) -> list[Row]:
    return await db.fetch(
        """SELECT channel, status, count(*) AS n FROM push.deliveries WHERE message_id = $1
           GROUP BY channel, status ORDER BY channel, status""",
        message_id,
    )


async def deliveries_page(db: Pool, message_id: uuid.UUID, after: uuid.UUID, limit: int) -> list[Row]:
    return await db.fetch(
        """SELECT person_id, device_id, channel, status, attempts, error, updated_at FROM push.deliveries
           WHERE message_id = $1 AND device_id > $2 ORDER BY device_id LIMIT $3""",
        message_id,
        after,
        limit,
    )


async def inbox_page(
    db: Pool, person_id: uuid.UUID, before: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> list[Row]:
    return await db.fetch(
        """SELECT i.message_id, i.created_at, i.read_at, m.template, m.title, m.body
           FROM push.inbox i JOIN push.messages m ON m.id = i.message_id
           WHERE i.person_id = $1 AND i.created_at <= now()
             AND ($2::timestamptz IS NULL OR (i.created_at, i.message_id) < ($2, $3))
           ORDER BY i.created_at DESC, i.message_id DESC LIMIT $4""",
        person_id,
        before[0] if before else None,
        before[1] if before else uuid.UUID(int=0),
        limit,
    )


async def unread_count(db: Pool, person_id: uuid.UUID) -> int:
    n = await db.fetchval(
        "SELECT count(*) FROM push.inbox WHERE person_id = $1 AND read_at IS NULL AND created_at <= now()", person_id
    )
    return int(n or 0)


async def mark_read(db: Pool, person_id: uuid.UUID, message_id: uuid.UUID) -> bool:
    row = await db.fetchrow(
        """UPDATE push.inbox SET read_at = coalesce(read_at, now())
           WHERE person_id = $1 AND message_id = $2 RETURNING 1""",
        person_id,
        message_id,
    )
    return row is not None


async def due_unfanned(db: Pool, older_than: float) -> list[Row]:
    return await db.fetch(
        """SELECT id FROM push.messages WHERE status = 'scheduled' AND send_at < now() - make_interval(secs => $1)
           ORDER BY send_at LIMIT 1000""",
        older_than,
    )


async def stale_sending(db: Pool, older_than: float, limit: int) -> list[Row]:
    """Pairs claimed for a provider call longer ago than `older_than` seconds, with the worker that claimed them."""
    return await db.fetch(
        """SELECT message_id, device_id, person_id, channel, claimed_by,
                  extract(epoch FROM now() - claimed_at)::float8 AS age FROM push.deliveries
           WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => $1)
           ORDER BY claimed_at LIMIT $2""",
        older_than,
        limit,
    )


async def take_back(db: Pool, pairs: Sequence[tuple[uuid.UUID, uuid.UUID, str]]) -> list[Row]:
    """Pairs of dead workers back to 'retry', marked recovered; only those still 'sending' under that worker."""
    if not pairs:
        return []
    m, d, w = (list(col) for col in zip(*pairs, strict=True))
    return await db.fetch(
        """UPDATE push.deliveries AS d SET status = 'retry', recovered = true, updated_at = now(),
                  error = 'taken back from a stopped worker'
           FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t (m, dv, w)
           WHERE d.message_id = t.m AND d.device_id = t.dv AND d.claimed_by = t.w AND d.status = 'sending'
           RETURNING d.message_id, d.device_id, d.person_id, d.channel""",
        m,
        d,
        w,
    )


async def devices_of_persons(
    db: Pool, person_ids: Sequence[uuid.UUID], region: str | None, tags: Sequence[str]
) -> list[Row]:
    """The active devices of these people (a page of a person segment), filtered by device region and tags."""
    return await db.fetch(
        """SELECT id, person_id, platform FROM push.devices
           WHERE person_id = ANY($1::uuid[]) AND active AND ($2::text IS NULL OR region = $2) AND tags @> $3::text[]
           ORDER BY id""",
        list(person_ids),
        region,
        list(tags),
    )


async def subscribe(db: Pool, person_id: uuid.UUID, device_id: uuid.UUID, topic: str) -> bool:
    """Subscribe one of the person's active devices; False when the device is not theirs."""
    row = await db.fetchrow(
        """WITH d AS (SELECT id FROM push.devices WHERE id = $1 AND person_id = $2 AND active)
           INSERT INTO push.topic_subscriptions (topic, device_id) SELECT $3, id FROM d
           ON CONFLICT DO NOTHING RETURNING 1""",
        device_id,
        person_id,
        topic,
    )
    if row is not None:
        return True
    owned = await db.fetchval(
        "SELECT 1 FROM push.devices WHERE id = $1 AND person_id = $2 AND active", device_id, person_id
    )
    return owned is not None


async def unsubscribe(db: Pool, person_id: uuid.UUID, device_id: uuid.UUID, topic: str) -> bool:
    owned = await db.fetchval("SELECT 1 FROM push.devices WHERE id = $1 AND person_id = $2", device_id, person_id)
    if owned is None:
        return False
    await db.execute("DELETE FROM push.topic_subscriptions WHERE topic = $1 AND device_id = $2", topic, device_id)
    return True


async def device_topics(db: Pool, device_id: uuid.UUID) -> list[str]:
    rows = await db.fetch(
        "SELECT topic FROM push.topic_subscriptions WHERE device_id = $1 ORDER BY topic LIMIT 100", device_id
    )
    return [r["topic"] for r in rows]
