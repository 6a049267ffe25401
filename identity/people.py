"""People: the encrypted record of a natural person and what may be derived from it (masked or disclosed)."""

from __future__ import annotations

import uuid
from datetime import date

import msgspec

from core.db import Executor
from core.masking import mask_id_number, mask_name
from core.resources import Resources
from identity import repo
from identity.numbers import wangha as wh

CTX_NAME, CTX_ID, CTX_PHONE, CTX_BIRTH = "person.name", "person.id_number", "person.phone", "person.birth_date"


class Person(msgspec.Struct):
    id: str
    wangha: str
    id_type: str
    name: str
    id_number: str
    phone: str
    gender: str
    birth_date: str


def id_index(res: Resources, id_type: str, id_number: str) -> bytes:
    return res.fields.blind_index(f"{id_type}:{id_number}", context="identity.id_number")


async def derive_wangha(res: Resources, conn: Executor, id_type: str, id_number: str) -> str:
    """Stable per identity; on the (astronomically rare) collision with another person, the counter moves on."""
    for counter in range(100):
        candidate = wh.from_digest(
            res.fields.blind_index(f"{id_type}:{id_number}:{counter}", context="identity.wangha")
        )
        if not await repo.wangha_taken(conn, candidate):
            return candidate
    raise RuntimeError("no free 网号 after 100 candidates")


async def insert(
    res: Resources, conn: Executor, *, id_type: str, id_number: str, name: str, phone: str, gender: str, birth_date: str
) -> tuple[str, str]:
    person_id = str(uuid.uuid4())
    wangha = await derive_wangha(res, conn, id_type, id_number)
    f = res.fields
    await repo.insert_person(
        conn,
        person_id=uuid.UUID(person_id),
        wangha=wangha,
        id_type=id_type,
        id_index=id_index(res, id_type, id_number),
        id_number_enc=f.encrypt(id_number, context=CTX_ID),
        name_enc=f.encrypt(name, context=CTX_NAME),
        phone_index=f.blind_index(phone, context="identity.phone"),
        phone_enc=f.encrypt(phone, context=CTX_PHONE),
        gender=gender,
        birth_date_enc=f.encrypt(birth_date, context=CTX_BIRTH),
    )
    return person_id, wangha


async def load(res: Resources, person_id: str, conn: Executor | None = None) -> Person:
    db = conn if conn is not None else res.db
    r = await repo.person(db, uuid.UUID(person_id))
    if r is None:
        raise LookupError(person_id)
    f = res.fields
    return Person(
        id=person_id,
        wangha=r["wangha"],
        id_type=r["id_type"],
        gender=r["gender"],
        name=f.decrypt(r["name_enc"], context=CTX_NAME),
        id_number=f.decrypt(r["id_number_enc"], context=CTX_ID),
        phone=f.decrypt(r["phone_enc"], context=CTX_PHONE),
        birth_date=f.decrypt(r["birth_date_enc"], context=CTX_BIRTH),
    )


def age_on(birth: str, today: date) -> int | None:
    if not birth:
        return None
    b = date.fromisoformat(birth)
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def age_band(age: int) -> str:
    for upper, band in ((14, "0-13"), (18, "14-17"), (30, "18-29"), (45, "30-44"), (60, "45-59")):
        if age < upper:
            return band
    return "60+"


def disclose(person: Person, attributes: list[str] | tuple[str, ...], today: date) -> dict[str, str | bool]:
    """The values of the requested attributes; unknown ones are left out."""
    age = age_on(person.birth_date, today)
    out: dict[str, str | bool] = {}
    for a in attributes:
        if a == "age_band" and age is not None:
            out[a] = age_band(age)
        elif a == "over_18" and age is not None:
            out[a] = age >= 18
        elif a == "gender":
            out[a] = person.gender
        elif a == "name_masked":
            out[a] = mask_name(person.name)
        elif a == "name":
            out[a] = person.name
        elif a == "id_number_masked":
            out[a] = mask_id_number(person.id_number)
        elif a == "id_number":
            out[a] = person.id_number
        elif a == "phone":
            out[a] = person.phone
    return out


UNMASKED = frozenset({"name", "id_number", "phone"})
