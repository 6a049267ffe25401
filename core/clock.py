"""The clock: UTC in storage and on the wire, Beijing time (Asia/Shanghai) for display and calendar days.

China has kept UTC+8 without daylight saving since 1991, so the display zone is a fixed offset named after its
IANA zone: conversions are cheap and give the same wall time as `zoneinfo.ZoneInfo("Asia/Shanghai")` for every
date the product handles. SQL that needs the zone uses `DISPLAY_TZ_NAME` (`AT TIME ZONE 'Asia/Shanghai'`).
"""

from __future__ import annotations

import datetime as dt

DISPLAY_TZ_NAME = "Asia/Shanghai"
SHANGHAI = dt.timezone(dt.timedelta(hours=8), DISPLAY_TZ_NAME)
UTC = dt.UTC


def now() -> dt.datetime:
    """The current instant, timezone-aware UTC (what is stored)."""
    return dt.datetime.now(UTC)


def now_beijing() -> dt.datetime:
    """The current instant as Beijing wall time."""
    return dt.datetime.now(SHANGHAI)


def utc_today() -> dt.date:
    """Today's date in UTC."""
    return dt.datetime.now(UTC).date()


def beijing_today(at: dt.datetime | None = None) -> dt.date:
    """The calendar day in Beijing at `at` (default: now)."""
    return (at or dt.datetime.now(UTC)).astimezone(SHANGHAI).date()


def to_beijing(at: dt.datetime) -> dt.datetime:
    """`at` as Beijing wall time."""
    return at.astimezone(SHANGHAI)


def beijing_text(at: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """`at` formatted in Beijing time ('' for None) — the display form of consoles, exports and notices."""
    return at.astimezone(SHANGHAI).strftime(fmt) if at else ""


def beijing_midnight(day: dt.date) -> dt.datetime:
    """00:00 Beijing time of `day` (aware)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI)
