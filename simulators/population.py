"""A synthetic population register for the simulators, identical in every process: generated from a fixed seed.

Also the pure GB 11643 helpers (`id_checksum`, `valid_id_number`, `birth_date_of`, `sex_of`) that other code may
import: they depend on nothing but their argument.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from functools import cache
from typing import Literal

import msgspec

from core import regions
from core.crypto import sm3

__all__ = [
    "CITIES",
    "SEED",
    "SIZE",
    "Person",
    "birth_date_of",
    "find",
    "id_checksum",
    "people",
    "population",
    "sex_of",
    "valid_id_number",
]

SEED = 20261122
SIZE = 2000

Sex = Literal["male", "female"]

# ISO 7064 MOD 11-2 as GB 11643 states it: weight of position i (1-based from the left) is 2^(18-i) mod 11.
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)

# One county-level area code in each of the 13 prefecture cities of Jiangsu -> the city (core.regions).
CITIES: dict[str, str] = {c.home_district: c.name for c in regions.CITIES}

# Common surnames, most frequent first; weights fall off roughly like their national shares.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
    "许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹"
    "薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_SURNAME_CUM_WEIGHTS = tuple(itertools.accumulate(1.0 / (i + 8) for i in range(len(_SURNAMES))))
_GIVEN_MALE = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢阳建国峰亮成志新海东晨博文轩睿哲子豪然翔"
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞燕玲丹萍红莉琳婷雪倩颖慧佳欣怡梦璐悦晶瑶琪思雨涵诗琴月嘉彤可馨蕾菲妍岚莹洁薇"
_PHONE_PREFIXES = (
    *"130 131 132 135 136 138 139 150 151 152 157 158 159".split(),
    *"170 173 176 177 180 181 182 186 187 188 189 191 198 199".split(),
)

_FIRST_BIRTH = dt.date(1940, 1, 1)
_LAST_BIRTH = dt.date(2012, 12, 31)


class Person(msgspec.Struct, frozen=True):
    name: str
    id_number: str
    sex: Sex
    birth_date: dt.date
    city: str
    phone: str
    photo_digest: str  # SM3 (hex) of the person's reference photo in the register


def id_checksum(first17: str) -> str:
    """The GB 11643 check character (``0``-``9`` or ``X``) for the first 17 digits of a resident ID number.

    >>> id_checksum("11010519491231002")
    'X'

    Raises ValueError unless ``first17`` is exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("expected 17 digits")
    return _CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def birth_date_of(id_number: str) -> dt.date | None:
    """The birth date encoded in positions 7-14 of an 18-character ID number, or None if it is not a real date."""
    digits = id_number[6:14]
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def sex_of(id_number: str) -> Sex:
    """Sex from the parity of the 17th digit (odd: male). Only meaningful for a `valid_id_number`."""
    return "male" if int(id_number[16]) % 2 else "female"


def valid_id_number(s: str) -> bool:
    """True for a well-formed 18-character resident ID number (GB 11643-1999).

    Checks: 17 ASCII digits then the check character (upper-case ``X`` only: normalise first), a first digit that
    can start a province code (1-8), a real birth date from 1800 on, and the ISO 7064 MOD 11-2 check character.
    Pure: it does not look at today's date or any register.
    """
    if len(s) != 18 or s[0] not in "12345678":
        return False
    first17 = s[:17]
    if not first17.isascii() or not first17.isdigit():
        return False
    born = birth_date_of(s)
    if born is None or born.year < 1800:
        return False
    return id_checksum(first17) == s[17]


def _given_name(rng: random.Random, sex: Sex) -> str:
    pool = _GIVEN_MALE if sex == "male" else _GIVEN_FEMALE
    return "".join(rng.choice(pool) for _ in range(1 if rng.random() < 0.3 else 2))


def _generate() -> tuple[Person, ...]:
    rng = random.Random(SEED)
    codes = list(CITIES)
    span = (_LAST_BIRTH - _FIRST_BIRTH).days
    seen_ids: set[str] = set()
    seen_phones: set[str] = set()
    out: list[Person] = []
    while len(out) < SIZE:
        area = rng.choice(codes)
        born = _FIRST_BIRTH + dt.timedelta(days=rng.randint(0, span))
        sex: Sex = "male" if rng.random() < 0.5 else "female"
        seq = rng.randrange(0, 1000, 2) + (1 if sex == "male" else 0)
        first17 = f"{area}{born:%Y%m%d}{seq:03d}"
        id_number = first17 + id_checksum(first17)
        phone = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        name = rng.choices(_SURNAMES, cum_weights=_SURNAME_CUM_WEIGHTS)[0] + _given_name(rng, sex)
        if id_number in seen_ids or phone in seen_phones:
            continue
        seen_ids.add(id_number)
        seen_phones.add(phone)
        photo = sm3(f"szt-sim-photo|{SEED}|{id_number}|{name}".encode()).hex()
        out.append(Person(name, id_number, sex, born, CITIES[area], phone, photo))
    return tuple(out)


@cache
def population() -> tuple[Person, ...]:
    """Everyone in the register, in a fixed order (generated on first use, once per process)."""
    return _generate()


@cache
def _by_id() -> dict[str, Person]:
    return {p.id_number: p for p in population()}


@cache
def _by_city() -> dict[str, tuple[Person, ...]]:
    return {city: tuple(p for p in population() if p.city == city) for city in CITIES.values()}


def find(id_number: str) -> Person | None:
    """The person with this ID number (``x`` is read as ``X``), or None."""
    return _by_id().get(id_number.upper())


def people(offset: int = 0, limit: int = 100, city: str | None = None) -> tuple[list[Person], int | None]:
    """One page of the register (optionally only one city, e.g. ``"苏州"``) and the offset of the next page or None."""
    pool = population() if city is None else _by_city().get(city, ())
    offset = max(offset, 0)
    page = list(pool[offset : offset + max(limit, 0)])
    following = offset + len(page)
    return page, (following if page and following < len(pool) else None)
