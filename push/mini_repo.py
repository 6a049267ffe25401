"""SQL of the mini-program channels: their addresses, WeChat one-time consents and Alipay form ids."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from core.db import Pool

Row = Any

MAX_CONSENTS = 50  # one-time consents kept per template (WeChat keeps no more useful than that either)


async def upsert_address(db: Pool, person_id: uuid.UUID, platform: str, subject: str) -> uuid.UUID:
    device_id: uuid.UUID = await db.fetchval(
        """INSERT INTO push.devices (id, person_id, platform, token) VALUES ($1, $2, $3, $4)
           ON CONFLICT (platform, token) WHERE token IS NOT NULL DO UPDATE
              SET person_id = excluded.person_id, active = true, deactivated_reason = '', updated_at = now()
           RETURNING id""",
        uuid.uuid4(),
        person_id,
        platform,
        subject,
    )
    return device_id


async def address_of(db: Pool, person_id: uuid.UUID, platform: str) -> uuid.UUID | None:
    device_id: uuid.UUID | None = await db.fetchval(
        """SELECT id FROM push.devices WHERE person_id = $1 AND platform = $2 AND active
           ORDER BY updated_at DESC LIMIT 1""",
        person_id,
        platform,
    )
    return device_id


async def add_consents(db: Pool, device_id: uuid.UUID, template_ids: list[str]) -> list[Row]:
    return await db.fetch(
        """INSERT INTO push.mini_consents (device_id, template_id, remaining)
           SELECT $1, t, 1 FROM unnest($2::text[]) AS t
           ON CONFLICT (device_id, template_id) DO UPDATE
              SET remaining = least(mini_consents.remaining + 1, $3), updated_at = now()
           RETURNING template_id, remaining""",
        device_id,
        template_ids,
        MAX_CONSENTS,
    )


async def take_consent(db: Pool, device_id: uuid.UUID, template_id: str) -> bool:
    """Spend one consent; False when none is left (nothing is sent then)."""
    left = await db.fetchval(
        """UPDATE push.mini_consents SET remaining = remaining - 1, updated_at = now()
           WHERE device_id = $1 AND template_id = $2 AND remaining > 0 RETURNING remaining""",
        device_id,
        template_id,
    )
    return left is not None


async def give_back_consent(db: Pool, device_id: uuid.UUID, template_id: str) -> None:
    await db.execute(
        "UPDATE push.mini_consents SET remaining = remaining + 1 WHERE device_id = $1 AND template_id = $2",
        device_id,
        template_id,
    )


async def clear_consent(db: Pool, device_id: uuid.UUID, template_id: str) -> None:
    await db.execute(
        "UPDATE push.mini_consents SET remaining = 0 WHERE device_id = $1 AND template_id = $2", device_id, template_id
    )


async def consents(db: Pool, device_id: uuid.UUID) -> list[Row]:
    return await db.fetch(
        "SELECT template_id, remaining FROM push.mini_consents WHERE device_id = $1 ORDER BY template_id LIMIT 20",
        device_id,
    )


async def add_form_id(db: Pool, device_id: uuid.UUID, form_id: str, expires_at: dt.datetime) -> int:
    await db.execute(
        "INSERT INTO push.mini_form_ids (form_id, device_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        form_id,
        device_id,
        expires_at,
    )
    n: int = await db.fetchval(
        "SELECT count(*) FROM push.mini_form_ids WHERE device_id = $1 AND used_at IS NULL AND expires_at > now()",
        device_id,
    )
    return n


async def take_form_id(db: Pool, device_id: uuid.UUID) -> str | None:
    """The form id closest to expiry, marked used (each allows one message)."""
    form_id: str | None = await db.fetchval(
        """UPDATE push.mini_form_ids SET used_at = now() WHERE form_id = (
               SELECT form_id FROM push.mini_form_ids WHERE device_id = $1 AND used_at IS NULL AND expires_at > now()
               ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING form_id""",
        device_id,
    )
    return form_id


async def give_back_form_id(db: Pool, form_id: str) -> None:
    await db.execute("UPDATE push.mini_form_ids SET used_at = NULL WHERE form_id = $1", form_id)
