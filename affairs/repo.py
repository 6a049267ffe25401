"""SQL of the affairs schema, nothing else."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from core.db import Executor, Record
from core.filters import prefix

# ---------------------------------------------------------------- manifests


async def upsert_manifest(db: Executor, m: dict[str, Any]) -> None:
    await db.execute(
        """INSERT INTO affairs.manifests (code, version, kind, category, name, body) VALUES ($1,$2,$3,$4,$5,$6)
           ON CONFLICT (code, version) DO UPDATE SET body = EXCLUDED.body""",
        m["code"],
        m["version"],
        m["kind"],
        m["category"],
        m["name"],
        m,
    )
    await db.execute(
        """INSERT INTO affairs.current_manifest (code, version) VALUES ($1, $2)
           ON CONFLICT (code) DO UPDATE SET version = GREATEST(affairs.current_manifest.version, EXCLUDED.version)""",
        m["code"],
        m["version"],
    )


async def current_manifests(db: Executor) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT m.body FROM affairs.manifests m JOIN affairs.current_manifest c USING (code, version)
               ORDER BY m.code"""
        )
    )


async def manifest_version(db: Executor, code: str, version: int) -> Record | None:
    return await db.fetchrow("SELECT body FROM affairs.manifests WHERE code = $1 AND version = $2", code, version)


# ---------------------------------------------------------------- authorisations, drafts, attachments


async def authorise(db: Executor, person: uuid.UUID, code: str, scopes: list[str]) -> None:
    await db.execute(
        """INSERT INTO affairs.authorisations (person_id, code, scopes) VALUES ($1,$2,$3)
           ON CONFLICT (person_id, code) DO UPDATE SET scopes = EXCLUDED.scopes, created_at = now()""",
        person,
        code,
        scopes,
    )


async def authorised_scopes(db: Executor, person: uuid.UUID, code: str) -> list[str] | None:
    scopes: list[str] | None = await db.fetchval(
        "SELECT scopes FROM affairs.authorisations WHERE person_id = $1 AND code = $2", person, code
    )
    return scopes


async def save_draft(db: Executor, person: uuid.UUID, code: str, form_enc: str, base: int | None) -> Record | None:
    """None when `base` is given and is not the stored revision (saved meanwhile on another device)."""
    if base is None:
        return await db.fetchrow(
            """INSERT INTO affairs.drafts (person_id, code, form_enc) VALUES ($1,$2,$3)
               ON CONFLICT (person_id, code) DO UPDATE SET form_enc = EXCLUDED.form_enc,
                   revision = affairs.drafts.revision + 1, updated_at = now()
               RETURNING revision, updated_at""",
            person,
            code,
            form_enc,
        )
    return await db.fetchrow(
        """UPDATE affairs.drafts SET form_enc = $3, revision = revision + 1, updated_at = now()
           WHERE person_id = $1 AND code = $2 AND revision = $4 RETURNING revision, updated_at""",
        person,
        code,
        form_enc,
        base,
    )


async def get_draft(db: Executor, person: uuid.UUID, code: str) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.drafts WHERE person_id = $1 AND code = $2", person, code)


async def delete_draft(db: Executor, person: uuid.UUID, code: str) -> None:
    await db.execute("DELETE FROM affairs.drafts WHERE person_id = $1 AND code = $2", person, code)


async def insert_attachment(
    db: Executor, id_: uuid.UUID, person: uuid.UUID, mime: str, size: int, digest: str, filename: str
) -> None:
    await db.execute(
        "INSERT INTO affairs.attachments (id, person_id, mime, size, sm3, filename) VALUES ($1,$2,$3,$4,$5,$6)",
        id_,
        person,
        mime,
        size,
        digest,
        filename,
    )


async def attachments_of(db: Executor, person: uuid.UUID, ids: list[uuid.UUID]) -> list[Record]:
    return list(await db.fetch("SELECT * FROM affairs.attachments WHERE person_id = $1 AND id = ANY($2)", person, ids))


# ---------------------------------------------------------------- cases


async def insert_case(db: Executor, **c: Any) -> Record | None:
    """None when this person already submitted with this idempotency key."""
    return await db.fetchrow(
        """WITH made AS (
               INSERT INTO affairs.cases (id, case_no, person_id, enterprise_id, code, manifest_version, system,
                                          org_code, region_code, idempotency_key, form_enc, mailing_enc, status,
                                          deadline_at, created_at, updated_at)
               VALUES ($1, $2 || lpad(nextval('affairs.case_seq')::text, 8, '0'), $3,$4,$5,$6,$7,$8,$9,$10,$11,$12,
                       'submitted', $13, now(), now())
               ON CONFLICT (person_id, idempotency_key) DO NOTHING RETURNING *),
           event AS (
               INSERT INTO affairs.case_events (case_id, status, note, source, at)
               SELECT id, 'submitted', $14, 'applicant', created_at FROM made),
           draft AS (  -- submitted: the draft is done with
               DELETE FROM affairs.drafts WHERE person_id = $3 AND code = $5 AND EXISTS (SELECT 1 FROM made))
           SELECT * FROM made""",
        c["id"],
        c["case_prefix"],
        c["person_id"],
        c["enterprise_id"],
        c["code"],
        c["manifest_version"],
        c["system"],
        c["org_code"],
        c["region_code"],
        c["idempotency_key"],
        c["form_enc"],
        c["mailing_enc"],
        c["deadline_at"],
        c["event_note"],
    )


async def case_by_key(db: Executor, person: uuid.UUID, key: str) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.cases WHERE person_id = $1 AND idempotency_key = $2", person, key)


async def get_case(db: Executor, case_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.cases WHERE id = $1", case_id)


async def set_ref(db: Executor, case_id: uuid.UUID, ref: str) -> str | None:
    """The case's status now (None when it was set already, by an early callback)."""
    status: str | None = await db.fetchval(
        "UPDATE affairs.cases SET external_ref = $2 WHERE id = $1 AND external_ref IS NULL RETURNING status",
        case_id,
        ref,
    )
    return status


async def case_for_callback(db: Executor, system: str, ref: str, case_no: str) -> Record | None:
    """The case a callback is about; a callback may outrun our record of the reference the submission got back,
    so a case of that number without a reference yet takes this one."""
    return await db.fetchrow(
        """WITH known AS (SELECT * FROM affairs.cases WHERE system = $1 AND external_ref = $2 AND case_no = $3),
           adopted AS (UPDATE affairs.cases SET external_ref = $2
                       WHERE system = $1 AND case_no = $3 AND external_ref IS NULL AND NOT EXISTS (SELECT 1 FROM known)
                       RETURNING *)
           SELECT * FROM known UNION ALL SELECT * FROM adopted""",
        system,
        ref,
        case_no,
    )


async def submission_context(
    db: Executor, person: uuid.UUID, code: str, key: str | None, attachment_ids: list[uuid.UUID]
) -> Record:
    """One round trip before a submission: the case this key made already, the scopes the person authorised for
    this application, and the attachments the form names (the person's own only)."""
    row = await db.fetchrow(
        """SELECT (SELECT id FROM affairs.cases WHERE person_id = $1 AND idempotency_key = $3) AS existing,
                  (SELECT scopes FROM affairs.authorisations WHERE person_id = $1 AND code = $2) AS scopes,
                  (SELECT json_agg(json_build_object('id', id, 'mime', mime, 'size', size, 'sm3', sm3))
                   FROM affairs.attachments WHERE person_id = $1 AND id = ANY($4::uuid[])) AS attachments""",
        person,
        code,
        key,
        attachment_ids,
    )
    assert row is not None
    return row


async def undelivered(db: Executor, limit: int) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT * FROM affairs.cases WHERE external_ref IS NULL AND status = 'submitted'
               AND created_at < now() - interval '30 seconds' ORDER BY created_at LIMIT $1""",
            limit,
        )
    )


async def move_case(
    db: Executor, case_id: uuid.UUID, from_status: str, to_status: str, note: str, source: str, materials: list[str]
) -> datetime | None:
    """Compare-and-set the status and write its event; None when the case was no longer in `from_status`."""
    at: datetime | None = await db.fetchval(
        """WITH moved AS (
               UPDATE affairs.cases SET status = $3, updated_at = now(),
                   materials_requested = CASE WHEN $3 = 'supplement_requested' THEN $6::jsonb
                                              ELSE materials_requested END
               WHERE id = $1 AND status = $2 RETURNING id, updated_at)
           INSERT INTO affairs.case_events (case_id, status, note, source, at)
           SELECT id, $3, $4, $5, updated_at FROM moved RETURNING at""",
        case_id,
        from_status,
        to_status,
        note[:500],
        source,
        materials,
    )
    return at


async def add_event(db: Executor, case_id: uuid.UUID, status: str, note: str, source: str) -> None:
    await db.execute(
        "INSERT INTO affairs.case_events (case_id, status, note, source) VALUES ($1,$2,$3,$4)",
        case_id,
        status,
        note,
        source,
    )


async def update_form(db: Executor, case_id: uuid.UUID, form_enc: str) -> None:
    await db.execute("UPDATE affairs.cases SET form_enc = $2 WHERE id = $1", case_id, form_enc)


async def events(db: Executor, case_id: uuid.UUID) -> list[Record]:
    return list(await db.fetch("SELECT * FROM affairs.case_events WHERE case_id = $1 ORDER BY id", case_id))


async def my_cases(
    db: Executor,
    person: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
    category_codes: list[str] | None,
) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT c.*, r.level AS rating FROM affairs.cases c
               LEFT JOIN affairs.ratings r ON r.subject = 'case:' || c.id::text
               WHERE c.person_id = $1 AND ($2::timestamptz IS NULL OR (c.created_at, c.id) < ($2, $3))
                 AND ($5::text[] IS NULL OR c.code = ANY($5))
               ORDER BY c.created_at DESC, c.id DESC LIMIT $4""",
            person,
            before[0] if before else None,
            before[1] if before else None,
            limit,
            category_codes,
        )
    )


async def latest_case(db: Executor, person: uuid.UUID) -> Record | None:
    return await db.fetchrow(
        "SELECT * FROM affairs.cases WHERE person_id = $1 ORDER BY created_at DESC LIMIT 1", person
    )


async def refuse_callback(db: Executor, system: str, reason: str, body_sm3: str, ip: str) -> None:
    await db.execute(
        "INSERT INTO affairs.refused_callbacks (system, reason, body_sm3, ip) VALUES ($1,$2,$3,$4)",
        system[:32],
        reason,
        body_sm3,
        ip,
    )


async def insert_notification(
    db: Executor, person: uuid.UUID, template: str, params: dict[str, str], source: str, key: str
) -> bool:
    inserted = await db.fetchval(
        """INSERT INTO affairs.notifications (person_id, template, params, source, idempotency_key)
           VALUES ($1,$2,$3,$4,$5) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id""",
        person,
        template,
        params,
        source,
        key,
    )
    return inserted is not None


async def notifications(db: Executor, person: uuid.UUID, limit: int) -> list[Record]:
    return list(
        await db.fetch(
            "SELECT * FROM affairs.notifications WHERE person_id = $1 ORDER BY id DESC LIMIT $2", person, limit
        )
    )


# ---------------------------------------------------------------- ratings


async def insert_rating(db: Executor, **r: Any) -> bool:
    inserted = await db.fetchval(
        """INSERT INTO affairs.ratings (subject, person_id, org_code, level, tags, comment, automatic,
                                        channel, method, item_code, case_no, comment_masked)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (subject) DO NOTHING RETURNING subject""",
        r["subject"],
        r["person_id"],
        r["org_code"],
        r["level"],
        r["tags"],
        r["comment"],
        r["automatic"],
        r.get("channel", "app"),
        r.get("method", "active"),
        r.get("item_code", ""),
        r.get("case_no", ""),
        r.get("comment_masked", False),
    )
    return inserted is not None


async def open_rectification(
    db: Executor, subject: str, org_code: str, person_id: uuid.UUID | None = None, due_at: datetime | None = None
) -> uuid.UUID | None:
    rid: uuid.UUID | None = await db.fetchval(
        """INSERT INTO affairs.rectifications (id, subject, org_code, person_id, due_at)
           VALUES ($1,$2,$3,$4,COALESCE($5, now() + interval '1 day')) ON CONFLICT DO NOTHING RETURNING id""",
        uuid.uuid4(),
        subject,
        org_code,
        person_id,
        due_at,
    )
    return rid


async def rectifications(
    db: Executor, org_prefix: str, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT x.*, r.level, r.tags FROM affairs.rectifications x JOIN affairs.ratings r USING (subject)
               WHERE (x.org_code = $1 OR x.org_code LIKE $1 || '.%')
                 AND ($2::timestamptz IS NULL OR (x.created_at, x.id) < ($2, $3))
               ORDER BY x.created_at DESC, x.id DESC LIMIT $4""",
            org_prefix,
            before[0] if before else None,
            before[1] if before else None,
            limit,
        )
    )


async def unrated_finished_cases(db: Executor, older_than: datetime, limit: int) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT c.* FROM affairs.cases c
               WHERE c.status IN ('completed', 'returned') AND c.updated_at < $1
                 AND NOT EXISTS (SELECT 1 FROM affairs.ratings r WHERE r.subject = 'case:' || c.id::text)
               ORDER BY c.updated_at LIMIT $2""",
            older_than,
            limit,
        )
    )


# ---------------------------------------------------------------- offices and the map


async def insert_offices(db: Executor, rows: list[tuple[Any, ...]]) -> None:
    await db.executemany(
        """INSERT INTO affairs.offices (id, name, kind, region_code, address, phone, lat, lon, cell, hours, services)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT (id) DO NOTHING""",
        rows,
    )


async def office_count(db: Executor) -> int:
    n: int = await db.fetchval("SELECT count(*) FROM affairs.offices")
    return n


async def offices_of_cells(db: Executor, cells: list[int]) -> list[Record]:
    return list(await db.fetch("SELECT * FROM affairs.offices WHERE cell = ANY($1::int[])", cells))


async def offices_of_kind(db: Executor, kind: str, city_prefix: str | None, limit: int) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT * FROM affairs.offices WHERE kind = $1 AND ($2::text IS NULL OR region_code LIKE $2 ESCAPE '\\')
               ORDER BY region_code, name LIMIT $3""",
            kind,
            prefix(city_prefix) if city_prefix else None,
            limit,
        )
    )


async def get_office(db: Executor, office_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.offices WHERE id = $1", office_id)


# ---------------------------------------------------------------- slots and bookings


async def ensure_slots(db: Executor, office_id: uuid.UUID, code: str, starts: list[datetime], quota: int) -> None:
    await db.executemany(
        """INSERT INTO affairs.slots (id, office_id, code, starts_at, quota) VALUES ($1,$2,$3,$4,$5)
           ON CONFLICT (office_id, code, starts_at) DO NOTHING""",
        [(uuid.uuid4(), office_id, code, s, quota) for s in starts],
    )


async def slots(db: Executor, office_id: uuid.UUID, code: str, after: datetime, until: datetime) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT * FROM affairs.slots WHERE office_id = $1 AND code = $2 AND starts_at > $3 AND starts_at < $4
               ORDER BY starts_at LIMIT 100""",
            office_id,
            code,
            after,
            until,
        )
    )


async def take_slot(db: Executor, slot_id: uuid.UUID, code: str) -> Record | None:
    return await db.fetchrow(
        """UPDATE affairs.slots SET booked = booked + 1
           WHERE id = $1 AND code = $2 AND booked < quota AND starts_at > now() RETURNING *""",
        slot_id,
        code,
    )


async def release_slot(db: Executor, slot_id: uuid.UUID) -> None:
    await db.execute("UPDATE affairs.slots SET booked = booked - 1 WHERE id = $1 AND booked > 0", slot_id)


async def insert_booking(
    db: Executor, id_: uuid.UUID, person: uuid.UUID, slot_id: uuid.UUID, code: str, details: dict[str, str]
) -> Record:
    row = await db.fetchrow(
        """INSERT INTO affairs.bookings (id, person_id, slot_id, code, status, details)
           VALUES ($1,$2,$3,$4,'booked',$5) RETURNING *""",
        id_,
        person,
        slot_id,
        code,
        details,
    )
    assert row is not None
    return row


async def get_booking(db: Executor, booking_id: uuid.UUID) -> Record | None:
    return await db.fetchrow(
        """SELECT b.*, s.starts_at, s.office_id FROM affairs.bookings b JOIN affairs.slots s ON s.id = b.slot_id
           WHERE b.id = $1""",
        booking_id,
    )


async def my_bookings(
    db: Executor, person: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT b.*, s.starts_at, s.office_id FROM affairs.bookings b JOIN affairs.slots s ON s.id = b.slot_id
               WHERE b.person_id = $1 AND ($2::timestamptz IS NULL OR (b.created_at, b.id) < ($2, $3))
               ORDER BY b.created_at DESC, b.id DESC LIMIT $4""",
            person,
            before[0] if before else None,
            before[1] if before else None,
            limit,
        )
    )


async def set_booking_status(db: Executor, booking_id: uuid.UUID, from_status: str, to_status: str) -> bool:
    done = await db.fetchval(
        """UPDATE affairs.bookings SET status = $3,
               cancelled_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE cancelled_at END
           WHERE id = $1 AND status = $2 RETURNING id""",
        booking_id,
        from_status,
        to_status,
    )
    return done is not None


async def cancellations_since(db: Executor, person: uuid.UUID, since: datetime) -> int:
    n: int = await db.fetchval(
        "SELECT count(*) FROM affairs.bookings WHERE person_id = $1 AND status = 'cancelled' AND cancelled_at >= $2",
        person,
        since,
    )
    return n


async def blacklisted_until(db: Executor, person: uuid.UUID) -> datetime | None:
    until: datetime | None = await db.fetchval(
        "SELECT max(until) FROM affairs.blacklist WHERE person_id = $1 AND until > now()", person
    )
    return until


async def mark_no_shows(db: Executor, ended_before: datetime) -> list[Record]:
    return list(
        await db.fetch(
            """UPDATE affairs.bookings b SET status = 'no_show' FROM affairs.slots s
               WHERE s.id = b.slot_id AND b.status = 'booked' AND s.starts_at < $1 RETURNING b.person_id""",
            ended_before,
        )
    )


async def no_shows_since(db: Executor, person: uuid.UUID, since: datetime) -> int:
    n: int = await db.fetchval(
        """SELECT count(*) FROM affairs.bookings b JOIN affairs.slots s ON s.id = b.slot_id
           WHERE b.person_id = $1 AND b.status = 'no_show' AND s.starts_at >= $2""",
        person,
        since,
    )
    return n


async def add_blacklist(db: Executor, person: uuid.UUID, reason: str, until: datetime) -> None:
    await db.execute(
        """INSERT INTO affairs.blacklist (person_id, reason, until) SELECT $1, $2, $3
           WHERE NOT EXISTS (SELECT 1 FROM affairs.blacklist WHERE person_id = $1 AND until > now())""",
        person,
        reason,
        until,
    )


async def due_reminders(db: Executor, start: datetime, end: datetime) -> list[Record]:
    return list(
        await db.fetch(
            """UPDATE affairs.bookings b SET reminded_at = now() FROM affairs.slots s, affairs.offices o
               WHERE s.id = b.slot_id AND o.id = s.office_id AND b.status = 'booked' AND b.reminded_at IS NULL
                 AND s.starts_at >= $1 AND s.starts_at < $2
               RETURNING b.id, b.person_id, b.code, s.starts_at, o.name AS office""",
            start,
            end,
        )
    )


# ---------------------------------------------------------------- payments


async def insert_order(db: Executor, **o: Any) -> Record:
    row = await db.fetchrow(
        """INSERT INTO affairs.orders (id, out_trade_no, person_id, code, item, amount_fen, channel, status)
           VALUES ($1,$2,$3,$4,$5,$6,$7,'created') RETURNING *""",
        o["id"],
        o["out_trade_no"],
        o["person_id"],
        o["code"],
        o["item"],
        o["amount_fen"],
        o["channel"],
    )
    assert row is not None
    return row


async def get_order(db: Executor, order_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.orders WHERE id = $1", order_id)


async def order_by_trade_no(db: Executor, out_trade_no: str) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.orders WHERE out_trade_no = $1", out_trade_no)


async def mark_paid(db: Executor, out_trade_no: str, channel_trade_no: str, amount_fen: int) -> Record | None:
    """Paid once, and only for the amount ordered; a different amount is flagged rather than accepted."""
    return await db.fetchrow(
        """UPDATE affairs.orders SET
               status = CASE WHEN amount_fen = $3 THEN 'paid' ELSE status END,
               abnormal = CASE WHEN amount_fen = $3 THEN abnormal ELSE 'amount-mismatch' END,
               channel_trade_no = $2, paid_at = CASE WHEN amount_fen = $3 THEN now() ELSE paid_at END
           WHERE out_trade_no = $1 AND status = 'created' RETURNING *""",
        out_trade_no,
        channel_trade_no,
        amount_fen,
    )


async def mark_refunded(db: Executor, order_id: uuid.UUID, status: str) -> Record | None:
    return await db.fetchrow(
        """UPDATE affairs.orders SET status = $2, refunded_fen = amount_fen WHERE id = $1 AND status = 'paid'
           RETURNING *""",
        order_id,
        status,
    )


async def orders_of_day(db: Executor, channel: str, start: datetime, end: datetime) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT * FROM affairs.orders WHERE channel = $1 AND created_at >= $2 AND created_at < $3""",
            channel,
            start,
            end,
        )
    )


async def flag_order(db: Executor, out_trade_no: str, reason: str) -> None:
    await db.execute("UPDATE affairs.orders SET abnormal = $2 WHERE out_trade_no = $1", out_trade_no, reason)


async def save_reconciliation(
    db: Executor, bill_date: date, channel: str, matched: int, abnormal: int, report: list[dict[str, Any]]
) -> None:
    await db.execute(
        """INSERT INTO affairs.reconciliations (bill_date, channel, matched, abnormal, report) VALUES ($1,$2,$3,$4,$5)
           ON CONFLICT (bill_date, channel) DO UPDATE SET matched = EXCLUDED.matched, abnormal = EXCLUDED.abnormal,
               report = EXCLUDED.report, created_at = now()""",
        bill_date,
        channel,
        matched,
        abnormal,
        report,
    )


async def get_reconciliation(db: Executor, bill_date: date, channel: str) -> Record | None:
    return await db.fetchrow(
        "SELECT * FROM affairs.reconciliations WHERE bill_date = $1 AND channel = $2", bill_date, channel
    )


# ---------------------------------------------------------------- links, awards


async def upsert_city_link(db: Executor, code: str, city: str, url: str, title: str, *, replace: bool = True) -> None:
    """`replace=False` (seeding) keeps a link the city has set."""
    await db.execute(
        """INSERT INTO affairs.city_links (code, city_code, url, title) VALUES ($1,$2,$3,$4)
           ON CONFLICT (code, city_code)
           DO UPDATE SET url = EXCLUDED.url, title = EXCLUDED.title, updated_at = now() WHERE $5""",
        code,
        city,
        url,
        title,
        replace,
    )


async def city_link(db: Executor, code: str, city: str) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.city_links WHERE code = $1 AND city_code = $2", code, city)


async def insert_awards(db: Executor, rows: list[tuple[Any, ...]]) -> None:
    await db.executemany(
        """INSERT INTO affairs.awards (id, code, awardee, region_code, title, year) VALUES ($1,$2,$3,$4,$5,$6)
           ON CONFLICT (id) DO NOTHING""",
        rows,
    )


async def awards(db: Executor, code: str, awardee: str) -> list[Record]:
    return list(
        await db.fetch(
            "SELECT * FROM affairs.awards WHERE code = $1 AND awardee = $2 ORDER BY year DESC LIMIT 20", code, awardee
        )
    )


# ---------------------------------------------------------------- move car


async def person_by_id_index(db: Executor, index: bytes) -> uuid.UUID | None:
    """identity's public blind index: whether the vehicle owner is enrolled (to reach the app too)."""
    found: uuid.UUID | None = await db.fetchval("SELECT id FROM identity.people WHERE id_index = $1", index)
    return found


async def recent_move_car(db: Executor, plate: str, since: datetime) -> int:
    n: int = await db.fetchval(
        "SELECT count(*) FROM affairs.move_car WHERE plate = $1 AND created_at >= $2", plate, since
    )
    return n


async def insert_move_car(db: Executor, **m: Any) -> Record:
    row = await db.fetchrow(
        """INSERT INTO affairs.move_car (id, reporter_id, owner_id, plate, location, status, relay_code)
           VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING *""",
        m["id"],
        m["reporter_id"],
        m["owner_id"],
        m["plate"],
        m["location"],
        m["status"],
        m["relay_code"],
    )
    assert row is not None
    return row


async def get_move_car(db: Executor, report_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.move_car WHERE id = $1", report_id)


async def set_move_car_status(db: Executor, report_id: uuid.UUID, status: str) -> None:
    await db.execute("UPDATE affairs.move_car SET status = $2, updated_at = now() WHERE id = $1", report_id, status)


# ---------------------------------------------------------------- enterprise platform


async def insert_enterprise_request(db: Executor, **r: Any) -> Record:
    row = await db.fetchrow(
        """INSERT INTO affairs.enterprise_requests (id, enterprise_id, person_id, service, detail, preferred_at,
                                                   status, progress)
           VALUES ($1,$2,$3,$4,$5,$6,'submitted',$7) RETURNING *""",
        r["id"],
        r["enterprise_id"],
        r["person_id"],
        r["service"],
        r["detail"],
        r["preferred_at"],
        r["progress"],
    )
    assert row is not None
    return row


async def get_enterprise_request(db: Executor, request_id: uuid.UUID) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.enterprise_requests WHERE id = $1", request_id)


async def enterprise_requests(
    db: Executor, enterprise: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT * FROM affairs.enterprise_requests WHERE enterprise_id = $1
                 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
               ORDER BY created_at DESC, id DESC LIMIT $4""",
            enterprise,
            before[0] if before else None,
            before[1] if before else None,
            limit,
        )
    )


async def progress_enterprise_request(
    db: Executor, request_id: uuid.UUID, status: str, entry: dict[str, str]
) -> Record | None:
    return await db.fetchrow(
        """UPDATE affairs.enterprise_requests SET status = $2, progress = progress || jsonb_build_array($3::jsonb)
           WHERE id = $1 AND status <> 'closed' RETURNING *""",
        request_id,
        status,
        entry,
    )


# ---------------------------------------------------------------- no-criminal-record (Ministry platform)


async def insert_ncr(db: Executor, id_: uuid.UUID, apply_no: str, id_enc: str, name_enc: str, purpose: str) -> bool:
    inserted = await db.fetchval(
        """INSERT INTO affairs.ncr_applications (id, mps_apply_no, id_number_enc, name_enc, purpose, status)
           VALUES ($1,$2,$3,$4,$5,'received') ON CONFLICT (mps_apply_no) DO NOTHING RETURNING id""",
        id_,
        apply_no,
        id_enc,
        name_enc,
        purpose,
    )
    return inserted is not None


async def ncr_by_apply_no(db: Executor, apply_no: str) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.ncr_applications WHERE mps_apply_no = $1", apply_no)


async def set_ncr(db: Executor, apply_no: str, status: str, result: str | None, certificate_ref: str | None) -> None:
    await db.execute(
        """UPDATE affairs.ncr_applications SET status = $2, result = COALESCE($3, result),
               certificate_ref = COALESCE($4, certificate_ref),
               fed_back_at = CASE WHEN $2 = 'fed_back' THEN now() ELSE fed_back_at END
           WHERE mps_apply_no = $1""",
        apply_no,
        status,
        result,
        certificate_ref,
    )


# ---------------------------------------------------------------- home reminders


async def bookings_between(db: Executor, person: uuid.UUID, start: datetime, end: datetime) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT b.id, b.code, s.starts_at, o.name AS office
               FROM affairs.bookings b JOIN affairs.slots s ON s.id = b.slot_id
               JOIN affairs.offices o ON o.id = s.office_id
               WHERE b.person_id = $1 AND b.status = 'booked' AND s.starts_at >= $2 AND s.starts_at < $3
               ORDER BY s.starts_at LIMIT 20""",
            person,
            start,
            end,
        )
    )


async def cases_in_status(db: Executor, person: uuid.UUID, status: str) -> list[Record]:
    return list(
        await db.fetch(
            """SELECT id, case_no, code, materials_requested, deadline_at FROM affairs.cases
               WHERE person_id = $1 AND status = $2 ORDER BY created_at DESC, id DESC LIMIT 20""",
            person,
            status,
        )
    )


# ---------------------------------------------------------------- 好差评: the loop, the outbox, statistics (ratings.py)

_RECT = """SELECT x.*, r.level, r.tags, r.comment, r.channel, r.method, r.item_code, r.case_no, r.person_id AS rater,
                  r.created_at AS rated_at, r.appeal_upheld
           FROM affairs.rectifications x JOIN affairs.ratings r USING (subject)"""


async def rating(db: Executor, subject: str) -> Record | None:
    return await db.fetchrow(
        """SELECT r.*, x.id AS rect_id, x.status AS rect_status FROM affairs.ratings r
           LEFT JOIN affairs.rectifications x USING (subject) WHERE r.subject = $1""",
        subject,
    )


async def rectification(db: Executor, rect_id: uuid.UUID, *, lock: bool = False) -> Record | None:
    return await db.fetchrow(_RECT + " WHERE x.id = $1" + (" FOR UPDATE OF x" if lock else ""), rect_id)


async def rectification_of(db: Executor, subject: str, *, lock: bool = False) -> Record | None:
    return await db.fetchrow(_RECT + " WHERE x.subject = $1" + (" FOR UPDATE OF x" if lock else ""), subject)


async def visiting_by_phone(db: Executor, phone_index: bytes) -> Record | None:
    return await db.fetchrow(
        _RECT + " WHERE x.status = 'visiting' AND x.visit_phone_index = $1 ORDER BY x.updated_at DESC LIMIT 1",
        phone_index,
    )


_RECT_COLUMNS = frozenset(
    {"visit_phone_index", "second_level", "second_tags", "second_comment", "second_channel", "second_at"}
)


async def move_rectification(
    db: Executor, rect_id: uuid.UUID, status: str, due_at: datetime | None, event: dict[str, Any], **extra: Any
) -> None:
    assert set(extra) <= _RECT_COLUMNS, extra
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(extra, start=5))
    await db.execute(  # columns from _RECT_COLUMNS only, values bound
        f"""UPDATE affairs.rectifications SET status = $2, due_at = COALESCE($3, due_at),
                   events = events || jsonb_build_array($4::jsonb), updated_at = now(){", " + sets if sets else ""}
            WHERE id = $1""",  # noqa: S608  (columns from _RECT_COLUMNS)
        rect_id,
        status,
        due_at,
        event,
        *extra.values(),
    )


async def mark_appeal_upheld(db: Executor, subject: str) -> None:
    await db.execute("UPDATE affairs.ratings SET appeal_upheld = true WHERE subject = $1", subject)


async def rectifications_page(
    db: Executor,
    scope_sql: str,
    scope_args: list[object],
    status: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    n = len(scope_args)
    return list(
        await db.fetch(
            _RECT
            + f""" WHERE {scope_sql} AND (${n + 1}::text IS NULL OR x.status = ${n + 1})
                 AND (${n + 2}::timestamptz IS NULL OR (x.created_at, x.id) < (${n + 2}, ${n + 3}))
               ORDER BY x.created_at DESC, x.id DESC LIMIT ${n + 4}""",
            *scope_args,
            status,
            before[0] if before else None,
            before[1] if before else None,
            limit,
        )
    )


async def haocp_enqueue(db: Executor, key: str, kind: str, subject: str, payload: dict[str, Any]) -> bool:
    inserted = await db.fetchval(
        """INSERT INTO affairs.haocp_outbox (key, kind, subject, payload) VALUES ($1,$2,$3,$4)
           ON CONFLICT (key) DO NOTHING RETURNING key""",
        key,
        kind,
        subject,
        payload,
    )
    return inserted is not None


async def haocp_claim(db: Executor, now: datetime, lease_s: int, limit: int) -> list[Record]:
    """Due undelivered reports, taken for `lease_s` (a crashed sender's reports come due again after it)."""
    return list(
        await db.fetch(
            """UPDATE affairs.haocp_outbox o SET leased_until = now() + make_interval(secs => $2),
                      attempts = attempts + 1
               WHERE key IN (SELECT key FROM affairs.haocp_outbox WHERE delivered_at IS NULL AND next_at <= $1
                               AND (leased_until IS NULL OR leased_until < now())
                             ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)
               RETURNING o.*""",
            now,
            lease_s,
            limit,
        )
    )


async def haocp_delivered(db: Executor, key: str) -> None:
    await db.execute(
        """UPDATE affairs.haocp_outbox SET delivered_at = now(), last_error = '', leased_until = NULL
           WHERE key = $1 AND delivered_at IS NULL""",
        key,
    )


async def haocp_failed(db: Executor, key: str, next_at: datetime, error: str) -> None:
    await db.execute(
        """UPDATE affairs.haocp_outbox SET next_at = $2, last_error = $3, leased_until = NULL
           WHERE key = $1 AND delivered_at IS NULL""",
        key,
        next_at,
        error[:300],
    )


async def haocp_backlog(db: Executor) -> Record:
    row = await db.fetchrow(
        """SELECT count(*) FILTER (WHERE delivered_at IS NULL) AS pending,
                  count(*) FILTER (WHERE delivered_at IS NULL AND attempts > 0) AS failing,
                  count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
                  min(created_at) FILTER (WHERE delivered_at IS NULL) AS oldest_pending
           FROM affairs.haocp_outbox"""
    )
    assert row is not None
    return row


async def haocp_outbox_of(db: Executor, subject: str) -> list[Record]:
    return list(
        await db.fetch("SELECT * FROM affairs.haocp_outbox WHERE subject = $1 ORDER BY created_at, key", subject)
    )


async def haocp_reconcilable(db: Executor, since: datetime, limit: int) -> list[Record]:
    """Rated cases (with a case number) since `since` that have no report waiting in the outbox."""
    return list(
        await db.fetch(
            """SELECT r.subject, r.case_no, r.level, x.status AS rect_status, x.second_level, x.second_at
               FROM affairs.ratings r LEFT JOIN affairs.rectifications x USING (subject)
               WHERE r.case_no <> '' AND r.created_at >= $1
                 AND NOT EXISTS (SELECT 1 FROM affairs.haocp_outbox o
                                 WHERE o.subject = r.subject AND o.delivered_at IS NULL)
               ORDER BY r.created_at LIMIT $2""",
            since,
            limit,
        )
    )


async def haocp_repairs(db: Executor, subject: str) -> int:
    n: int = await db.fetchval(
        "SELECT count(*) FROM affairs.haocp_outbox WHERE subject = $1 AND key LIKE 'recon:%'", subject
    )
    return n


_GROUPS = {"org": "r.org_code", "item": "r.item_code", "channel": "r.channel", "level": "r.level::text"}


async def rating_stats(
    db: Executor, group: str, scope_sql: str, scope_args: list[object], since: datetime | None, until: datetime | None
) -> list[Record]:
    """Ratings grouped by organisation, item, channel or level: counts per level, bad ones, second ratings."""
    col = _GROUPS[group]  # a fixed column of the allow-list; values are bound
    n = len(scope_args)
    return list(
        await db.fetch(
            f"""SELECT {col} AS key, count(*) AS total,
                       count(*) FILTER (WHERE r.level = 5) AS l5, count(*) FILTER (WHERE r.level = 4) AS l4,
                       count(*) FILTER (WHERE r.level = 3) AS l3, count(*) FILTER (WHERE r.level = 2) AS l2,
                       count(*) FILTER (WHERE r.level = 1) AS l1,
                       count(*) FILTER (WHERE r.automatic) AS automatic,
                       count(x.id) AS rectifications,
                       count(x.id) FILTER (WHERE x.status = 'closed') AS closed,
                       count(x.second_level) AS second_ratings,
                       round(avg(r.level)::numeric, 2)::float8 AS average
                FROM affairs.ratings r LEFT JOIN affairs.rectifications x USING (subject)
                WHERE NOT r.appeal_upheld AND {scope_sql}
                  AND (${n + 1}::timestamptz IS NULL OR r.created_at >= ${n + 1})
                  AND (${n + 2}::timestamptz IS NULL OR r.created_at < ${n + 2})
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 500""",  # noqa: S608  (an allow-listed column)
            *scope_args,
            since,
            until,
        )
    )


# ---------------------------------------------------------------- the government-service platform (affairs.govservice)

GOV_FEED_LOCK = 0x676F76_66656564  # pg advisory lock key: one drainer of the 办件 feed at a time


async def gov_feed_lock(conn: Executor) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", GOV_FEED_LOCK))


async def gov_feed_unlock(conn: Executor) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", GOV_FEED_LOCK)


async def gov_feed_due(db: Executor, limit: int) -> list[Record]:
    """Due records in id order, with their case; a record waits while an earlier one of its case is not yet due
    (backing off), so each case's states reach the platform in order."""
    return list(
        await db.fetch(
            """SELECT f.id, f.record_key, f.status, f.at, f.attempts, c.case_no, c.code, c.person_id,
                      c.enterprise_id, c.org_code, c.region_code, coalesce(e.note, '') AS note
               FROM affairs.gov_feed f JOIN affairs.cases c ON c.id = f.case_id
               LEFT JOIN affairs.case_events e ON e.id = f.event_id
               WHERE f.delivered_at IS NULL AND f.rejected_code IS NULL AND f.next_at <= now()
                 AND NOT EXISTS (SELECT 1 FROM affairs.gov_feed p
                                 WHERE p.case_id = f.case_id AND p.id < f.id AND p.delivered_at IS NULL
                                   AND p.rejected_code IS NULL AND p.next_at > now())
               ORDER BY f.id LIMIT $1""",
            limit,
        )
    )


async def gov_feed_delivered(db: Executor, ids: list[int]) -> None:
    await db.execute("UPDATE affairs.gov_feed SET delivered_at = now() WHERE id = ANY($1::bigint[])", ids)


async def gov_feed_rejected(db: Executor, rows: list[tuple[int, str]]) -> None:
    await db.executemany("UPDATE affairs.gov_feed SET rejected_code = $2 WHERE id = $1", rows)


async def gov_feed_retry(db: Executor, ids: list[int], error: str, max_backoff_s: int) -> None:
    """Back off exponentially (1 s, 2 s, 4 s … capped) from the record's attempts."""
    await db.execute(
        """UPDATE affairs.gov_feed SET attempts = attempts + 1, last_error = $2,
               next_at = now() + make_interval(secs => least(power(2, attempts), $3))
           WHERE id = ANY($1::bigint[])""",
        ids,
        error[:300],
        max_backoff_s,
    )


async def gov_feed_counts(db: Executor) -> Record:
    row = await db.fetchrow(
        """SELECT count(*) FILTER (WHERE delivered_at IS NULL AND rejected_code IS NULL) AS pending,
                  count(*) FILTER (WHERE rejected_code IS NOT NULL) AS rejected,
                  min(at) FILTER (WHERE delivered_at IS NULL AND rejected_code IS NULL) AS oldest_pending,
                  max(delivered_at) AS last_delivered
           FROM affairs.gov_feed"""
    )
    assert row is not None
    return row


async def gov_settled_cases(db: Executor, since: datetime, after: str, limit: int) -> list[Record]:
    """Cases changed since `since` whose every record was delivered (nothing in flight), by case number."""
    return list(
        await db.fetch(
            """SELECT c.id, c.case_no, c.status, c.updated_at FROM affairs.cases c
               WHERE c.updated_at >= $1 AND c.case_no > $2
                 AND NOT EXISTS (SELECT 1 FROM affairs.gov_feed f WHERE f.case_id = c.id AND f.delivered_at IS NULL
                                 AND f.rejected_code IS NULL)
               ORDER BY c.case_no LIMIT $3""",
            since,
            after,
            limit,
        )
    )


async def gov_feed_resend(db: Executor, case_id: uuid.UUID, record_key: str, status: str, at: datetime) -> None:
    """A reconciliation resend of a case's current state (no event of its own)."""
    await db.execute(
        "INSERT INTO affairs.gov_feed (case_id, event_id, record_key, status, at) VALUES ($1, NULL, $2, $3, $4)",
        case_id,
        record_key,
        status,
        at,
    )


async def gov_save_reconciliation(db: Executor, compared: int, repaired: int, detail: list[Any]) -> None:
    await db.execute(
        "INSERT INTO affairs.gov_reconciliations (compared, repaired, detail) VALUES ($1, $2, $3)",
        compared,
        repaired,
        detail,
    )


async def gov_last_reconciliation(db: Executor) -> Record | None:
    return await db.fetchrow("SELECT * FROM affairs.gov_reconciliations ORDER BY id DESC LIMIT 1")


async def current_manifest(db: Executor, code: str) -> Record | None:
    return await db.fetchrow(
        """SELECT m.body FROM affairs.manifests m JOIN affairs.current_manifest c USING (code, version)
           WHERE m.code = $1""",
        code,
    )
