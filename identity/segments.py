"""Audience segments over identity's people, for push broadcasts: person ids streamed, never all in memory.

Sex and user type are filtered in SQL; the age band needs the birth date, which is encrypted at rest, so it is
decrypted row by row as the server-side cursor streams (a few microseconds a row), and only when asked for.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence

from core.resources import Resources
from identity import repo
from identity.people import CTX_BIRTH, age_band, age_on

AGE_BANDS = ("0-13", "14-17", "18-29", "30-44", "45-59", "60+")


async def person_ids(
    res: Resources,
    *,
    sex: str | None = None,
    age_bands: Sequence[str] = (),
    user_type: str | None = None,
    after: uuid.UUID | None = None,
    page: int = 1000,
    today: dt.date | None = None,
) -> AsyncIterator[list[uuid.UUID]]:
    """Pages (at most `page` ids, ascending) of the people matching every given criterion, after `after`.

    One read-only transaction holds a server-side cursor (`prefetch` rows at a time) for the whole walk; a caller
    that saves the last id of each page it finished can resume with `after` after a crash."""
    if user_type not in (None, "natural", "legal"):
        raise ValueError("user_type: natural or legal")
    if sex not in (None, "male", "female"):
        raise ValueError("sex: male or female")
    bands = set(age_bands)
    if not bands <= set(AGE_BANDS):
        raise ValueError(f"age bands: {', '.join(AGE_BANDS)}")
    on = today or dt.datetime.now(dt.UTC).date()
    out: list[uuid.UUID] = []
    async with res.db.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        async for row in repo.segment_cursor(conn, after or uuid.UUID(int=0), sex, user_type, prefetch=page):
            if bands:
                age = age_on(res.fields.decrypt(row["birth_date_enc"], context=CTX_BIRTH), on)
                if age is None or age_band(age) not in bands:
                    continue
            out.append(row["id"])
            if len(out) >= page:
                yield out
                out = []
    if out:
        yield out
