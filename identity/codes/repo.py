"""SQL of identity codes (the device's 网证 a code is issued under), nothing else."""

from __future__ import annotations

import uuid

from core.db import Executor


async def active_serial_of_device(db: Executor, device_id: uuid.UUID) -> str | None:
    """The serial of the device's newest active, unexpired 网证."""
    serial: str | None = await db.fetchval(
        """SELECT serial FROM identity.credentials WHERE device_id = $1 AND status = 'active' AND expires_at > now()
           ORDER BY issued_at DESC LIMIT 1""",
        device_id,
    )
    return serial
