"""Search filters from user input, the same everywhere: substring and prefix LIKE patterns with the wildcards escaped,
and times parsed strictly.

LIKE: `contains(text)` / `prefix(text)` give the pattern, and the SQL says `… LIKE $n ESCAPE '\\'` (or ILIKE; the
`ESCAPE` constant below): a `%` or `_` someone types matches itself, not "anything".

Times (`since`, `until` and the like): ISO 8601 only —
- a date-time `YYYY-MM-DDTHH:MM[:SS[.fraction]]` with a zone (`Z`, `+08:00`); without a zone it is Beijing time
  (Asia/Shanghai); a space may stand for the `T`;
- a date `YYYY-MM-DD`: midnight Beijing time at its start, or — for an upper bound (`end_of_day=True`, used by
  `until`) — at its end, so `until=2026-03-31` includes the whole of 31 March.
Anything else (`0.5`, a Unix time, `2026-13-01`, a week date) is a 400 problem naming the field.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated

from litestar.params import Parameter

from core.clock import SHANGHAI
from core.problems import ProblemError

ESCAPE = "ESCAPE '\\'"


def escape_like(text: str) -> str:
    """`text` with LIKE's escape character and wildcards escaped (for `ESCAPE '\\'`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(text: str) -> str:
    """The LIKE pattern matching values that contain `text` literally."""
    return f"%{escape_like(text)}%"


def prefix(text: str) -> str:
    """The LIKE pattern matching values that start with `text` literally."""
    return f"{escape_like(text)}%"


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<hm>[0-9]{2}:[0-9]{2})(?P<s>:[0-9]{2})?(?:\.(?P<frac>[0-9]{1,9}))?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
# What the parser reads, for the schema (the calendar — month 13, 30 February — is the parser's to refuse).
TIME_PATTERN = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?)?$"
)
TIME_HELP = (
    "ISO 8601 date-time (`2026-03-01T08:00:00+08:00`, `…Z`; without a zone: Beijing time) or date "
    "(`2026-03-01`, Beijing time)"
)
# The query parameter type of such filters: a string the parser below reads (the schema states the formats).
TimeParam = Annotated[
    str | None,
    Parameter(
        max_length=40,
        description=TIME_HELP,
        schema_extra={"pattern": TIME_PATTERN, "examples": ["2026-03-01T08:00:00+08:00", "2026-03-01"]},
    ),
]


def _refuse(field: str, value: str) -> ProblemError:
    return ProblemError(
        400,
        "invalid-time",
        "Invalid time",
        "时间格式无效",
        f"{field} must be an ISO 8601 date-time or date (YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM]), not {value[:40]!r}",
        field=field,
    )


def parse_time(value: str | None, field: str, *, end_of_day: bool = False) -> datetime | None:
    """`value` as an aware datetime (None when empty); a 400 problem naming `field` when it is not ISO 8601."""
    if not value:
        return None
    text = value
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            return datetime.combine(day, time(), SHANGHAI)
        m = _DATE_TIME.fullmatch(text)
        if m is None:
            raise ValueError(text)
        frac = (m["frac"] or "")[:6].ljust(6, "0") if m["frac"] else ""
        zone = m["zone"] or ""
        iso = f"{m['date']}T{m['hm']}{m['s'] or ':00'}{'.' + frac if frac else ''}"
        iso += "+00:00" if zone in ("Z", "z") else zone
        parsed = datetime.fromisoformat(iso)
    except (ValueError, OverflowError) as exc:
        raise _refuse(field, text) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)


def time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The usual pair: `since` from its start, `until` to its end (a date includes that whole day)."""
    return parse_time(since, "since"), parse_time(until, "until", end_of_day=True)
