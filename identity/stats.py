"""Non-identifying facts about people for statistics (orgs reads them, never the tables): sex, birth year and
the region of the resident ID number (GB/T 2260, its first six digits), in enrolment order."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from core.resources import Resources
from identity import repo
from identity.people import CTX_BIRTH, CTX_ID


class PersonFacts(msgspec.Struct, frozen=True):
    person_id: uuid.UUID
    created_at: datetime
    gender: str
    birth_year: int | None
    region_code: str


async def facts_after(res: Resources, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[PersonFacts]:
    """The next `limit` people enrolled after `after` (created_at, id), decrypting only what statistics need."""
    rows = await repo.people_facts_after(res.db, after, limit)
    f = res.fields
    out = []
    for r in rows:
        birth = f.decrypt(r["birth_date_enc"], context=CTX_BIRTH)
        region = f.decrypt(r["id_number_enc"], context=CTX_ID)[:6] if r["id_type"] == "resident" else ""
        out.append(
            PersonFacts(
                person_id=r["id"],
                created_at=r["created_at"],
                gender=r["gender"],
                birth_year=int(birth[:4]) if birth[:4].isdigit() else None,
                region_code=region if region.isdigit() else "",
            )
        )
    return out
