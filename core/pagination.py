"""Keyset pagination: an opaque cursor of (created_at, id), and the next cursor of a full page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.problems import invalid

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_PAGE = 100  # every list endpoint caps its page size here unless it has a reason to cap lower


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{row_id.hex}"


def decode_cursor(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    """The (created_at, id) after which the next page starts; any string of the documented pattern decodes."""
    if not cursor:
        return None, None
    micros, _, hex_id = cursor.partition(".")
    try:
        return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id)
    except (ValueError, OverflowError) as exc:
        raise invalid("cursor", "not a cursor from this list") from exc


def next_cursor(rows: Sequence[Any], limit: int) -> str | None:
    """The cursor after the last row when the page is full (rows carry `created_at` and `id`)."""
    if len(rows) < limit:
        return None
    last = rows[-1]
    return encode_cursor(last["created_at"], last["id"])
