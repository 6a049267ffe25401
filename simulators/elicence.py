"""Simulator of the provincial e-licence library (江苏省电子证照库): the ID card's validity, the driving licence and
the residence permit of each person of the synthetic population (simulators/population.py).

Records are derived deterministically from the ID number (same answer in every process); a control endpoint lets
tests move a record's expiry date (held in memory) so an expiry reminder can be provoked.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from litestar import Litestar, post, put
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from core.crypto import sm3
from core.problems import not_found
from core.settings import Settings
from simulators import population

Kind = Literal["id_card", "driving_licence", "residence_permit"]
IdNumber = Annotated[str, Meta(min_length=18, max_length=18, pattern=r"^\d{17}[\dX]$")]
_CLASSES = ("C1", "C1", "C1", "C2", "B2", "A1")
_TODAY_ANCHOR = dt.date(2026, 12, 1)  # records are generated relative to a fixed day so they never drift


class LicenceQuery(msgspec.Struct):
    id_number: IdNumber


class LicenceRecord(msgspec.Struct):
    kind: Kind
    number: str
    holder_name: str
    valid_from: str
    valid_until: str | None  # None: 长期
    issuer: str
    status: str  # 正常 | 注销
    facts: dict[str, str]


class LicenceList(msgspec.Struct):
    items: list[LicenceRecord]


class ExpiryChange(msgspec.Struct):
    valid_until: dt.date


def _roll(id_number: str, what: str) -> int:
    return int.from_bytes(sm3(f"elicence|{what}|{id_number}".encode())[:4], "big")


def _years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def records_for(p: population.Person) -> list[LicenceRecord]:
    out: list[LicenceRecord] = []
    age = (_TODAY_ANCHOR - p.birth_date).days // 365
    # ID card: 10 years (16-25), 20 years (26-45), long-term (46+), counted from a renewal some years back.
    span = 10 if age < 26 else 20 if age < 46 else 0
    issued = _TODAY_ANCHOR - dt.timedelta(days=_roll(p.id_number, "id") % (max(span, 10) * 365 - 30))
    out.append(
        LicenceRecord(
            "id_card",
            p.id_number,
            p.name,
            issued.isoformat(),
            _years(issued, span).isoformat() if span else None,
            f"{p.city}市公安局",
            "正常",
            {},
        )
    )
    if age >= 18 and _roll(p.id_number, "dl") % 10 < 7:
        first = _TODAY_ANCHOR - dt.timedelta(days=_roll(p.id_number, "dl-first") % ((age - 17) * 365))
        term = 6 if (_TODAY_ANCHOR - first).days < 6 * 365 else 10
        start = first if term == 6 else _years(first, 6)
        out.append(
            LicenceRecord(
                "driving_licence",
                p.id_number,
                p.name,
                start.isoformat(),
                _years(start, term).isoformat(),
                f"江苏省{p.city}市公安局交通警察支队",
                "正常",
                {"vehicle_class": _CLASSES[_roll(p.id_number, "class") % len(_CLASSES)], "first_issued": str(first)},
            )
        )
    if age >= 16 and _roll(p.id_number, "rp") % 10 < 3:
        cities = [c for c in population.CITIES.values() if c != p.city]
        city = cities[_roll(p.id_number, "rp-city") % len(cities)]
        start = _TODAY_ANCHOR - dt.timedelta(days=_roll(p.id_number, "rp-start") % 360)
        out.append(
            LicenceRecord(
                "residence_permit",
                f"{p.id_number[:6]}JZ{_roll(p.id_number, 'rp-no') % 10**8:08d}",
                p.name,
                start.isoformat(),
                _years(start, 1).isoformat(),
                f"{city}市公安局",
                "正常",
                {"residence_city": city, "address": f"江苏省{city}市人民路{_roll(p.id_number, 'rp-addr') % 900 + 1}号"},
            )
        )
    return out


def _handlers() -> list[object]:
    overrides: dict[tuple[str, str], str] = {}

    def current(id_number: str) -> list[LicenceRecord]:
        person = population.find(id_number)
        if person is None:
            return []
        items = records_for(person)
        for r in items:
            r.valid_until = overrides.get((id_number, r.kind), r.valid_until)
        return items

    @post("/v1/licences/query", status_code=200, summary="The licences held for one ID number", tags=["elicence"])
    async def query(data: JSONBody[LicenceQuery]) -> LicenceList:
        # POST, so ID numbers never land in URLs or access logs.
        return LicenceList(current(data.id_number))

    @put("/_sim/licences/{id_number:str}/{kind:str}", summary="Control: set a record's expiry date", tags=["sim"])
    async def set_expiry(
        id_number: Annotated[str, Parameter(pattern=r"^\d{17}[\dX]$")],
        kind: Annotated[Kind, Parameter()],
        data: JSONBody[ExpiryChange],
    ) -> LicenceRecord:
        record = next((r for r in current(id_number) if r.kind == kind), None)
        if record is None:
            raise not_found("licence")
        overrides[(id_number, kind)] = record.valid_until = data.valid_until.isoformat()
        return record

    return [query, set_expiry]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("elicence", "Jiangsu e-licence library (江苏省电子证照库)", settings, _handlers())
