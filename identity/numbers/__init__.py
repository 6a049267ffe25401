"""Checksums of Chinese identity numbers: resident ID (GB 11643), exit-entry documents, and the unified social
credit code of organisations (GB 32100)."""

from __future__ import annotations

import re
from datetime import date

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_RESIDENT = re.compile(r"^\d{17}[\dX]$")
# Exit-entry permits and foreigners' permanent residence cards: a letter prefix then digits (no public checksum).
_EXIT_ENTRY = re.compile(r"^(?:[CHMT]\d{8,10}|[A-Z]{3}\d{12}|9\d{17})$")

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def normalise_id_number(value: str) -> str:
    return value.strip().upper()


def resident_id_check(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def birth_date_of(id_number: str) -> date | None:
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def valid_resident_id(value: str) -> bool:
    """GB 11643: 17 digits, a real birth date, and the ISO 7064 MOD 11-2 check character."""
    if not _RESIDENT.match(value):
        return False
    born = birth_date_of(value)
    if born is None or not (date(1900, 1, 1) <= born <= date.today()):
        return False
    return resident_id_check(value[:17]) == value[17]


def valid_exit_entry_number(value: str) -> bool:
    return bool(_EXIT_ENTRY.match(value))


def gender_of(id_number: str) -> str:
    """The 17th digit of a resident ID is odd for men and even for women."""
    if _RESIDENT.match(id_number):
        return "male" if int(id_number[16]) % 2 else "female"
    return "unknown"


def uscc_check(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def valid_uscc(value: str) -> bool:
    """GB 32100: 18 characters of the code's alphabet, and the MOD 31 check character."""
    return bool(_USCC.match(value)) and uscc_check(value[:17]) == value[17]
