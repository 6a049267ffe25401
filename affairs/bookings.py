"""Appointments (items 2–4, 44, 45): offices, slots with quotas, booking, cancellation rules, no-shows and the
blacklist, and the day-before reminders. Import through affairs.service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from affairs import forms, repo
from affairs import service as svc
from affairs.adapters import BizClient
from affairs.models import BookingIn, BookingList, BookingView, OfficeList, OfficeView, SlotList, SlotView
from affairs.notify import notify
from core import clock
from core.clock import SHANGHAI
from core.pagination import decode_cursor, encode_cursor
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources

OFFICE_KIND = {
    "app-02": "exit_entry",
    "app-03": "exit_entry",
    "app-04": "exit_entry",
    "app-44": "detention",
    "app-45": "detention",
}
SLOT_HOURS = (9, 10, 11, 14, 15, 16)  # Beijing time
SLOT_QUOTA = 5
DAYS_AHEAD = 14
CANCEL_BEFORE = timedelta(hours=2)  # no cancellation in the last two hours: the place cannot be reused
CANCELS_PER_DAY = 3
NO_SHOWS_PER_MONTH = 3
BLACKLIST_FOR = timedelta(days=90)


def office_view(r: Any, distance_m: int | None = None) -> OfficeView:
    return OfficeView(
        id=r["id"],
        name=r["name"],
        kind=r["kind"],
        region_code=r["region_code"],
        address=r["address"],
        phone=r["phone"],
        lat=r["lat"],
        lon=r["lon"],
        hours=r["hours"],
        services=list(r["services"]),
        distance_m=distance_m,
    )


async def list_offices(res: Resources, code: str, region: str | None) -> OfficeList:
    await svc.manifest(res, code, "appointment")
    city = region[:4] if region else None
    return OfficeList([office_view(r) for r in await repo.offices_of_kind(res.db, OFFICE_KIND[code], city, 50)])


def _day_starts(now: datetime) -> list[datetime]:
    today = now.astimezone(SHANGHAI).date()
    return [
        datetime.combine(today + timedelta(days=d), time(h), tzinfo=SHANGHAI).astimezone(UTC)
        for d in range(1, DAYS_AHEAD + 1)
        for h in SLOT_HOURS
    ]


async def list_slots(res: Resources, code: str, office_id: uuid.UUID) -> SlotList:
    await svc.manifest(res, code, "appointment")
    office = await repo.get_office(res.db, office_id)
    if office is None or office["kind"] != OFFICE_KIND[code]:
        raise not_found("office")
    now = datetime.now(UTC)
    await repo.ensure_slots(res.db, office_id, code, _day_starts(now), SLOT_QUOTA)
    rows = await repo.slots(res.db, office_id, code, now, now + timedelta(days=DAYS_AHEAD + 1))
    return SlotList(
        [SlotView(r["id"], r["office_id"], r["starts_at"], r["quota"], r["quota"] - r["booked"]) for r in rows]
    )


def _booking_view(r: Any) -> BookingView:
    return BookingView(r["id"], r["code"], r["slot_id"], r["office_id"], r["starts_at"], r["status"], r["created_at"])


async def book(res: Resources, person_id: str, acr: str, req: BookingIn) -> BookingView:
    m = await svc.manifest(res, req.code, "appointment")
    svc.require_assurance(m, acr)
    pid = uuid.UUID(person_id)
    until = await repo.blacklisted_until(res.db, pid)
    if until is not None:
        raise ProblemError(
            403,
            "booking-blacklisted",
            "Booking suspended after repeated no-shows",
            "因多次爽约暂停预约",
            f"until {until.isoformat()}",
        )
    clean = forms.validate(m.form, dict(req.form), elicence_ok=lambda _: False, today=clock.utc_today())
    if req.code == "app-44":
        found = await BizClient(res, "jianguan").query("lawyer_licence", {"licence": clean["lawyer_licence"]})
        if not found.get("valid"):
            raise invalid("form.lawyer_licence", "not a practising lawyer's licence number in the register")
    details = dict(clean)
    if req.code == "app-45":
        details["declared_at"] = datetime.now(UTC).isoformat()  # the kinship declaration, as made
    async with res.db.acquire() as conn, conn.transaction():
        slot = await repo.take_slot(conn, req.slot_id, req.code)
        if slot is None:
            raise ProblemError(
                409, "slot-unavailable", "This time is full or past", "该时段已约满或已过", field="slot_id"
            )
        try:
            row = await repo.insert_booking(conn, uuid.uuid4(), pid, req.slot_id, req.code, details)
        except Exception as exc:
            if "bookings_one_per_slot" in str(exc):
                raise ProblemError(409, "already-booked", "You hold this time already", "您已预约该时段") from exc
            raise
    office = await repo.get_office(res.db, slot["office_id"])
    await notify(
        res,
        person_id,
        template="appointment_booked",
        params={
            "service": m.name,
            "time": slot["starts_at"].astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
            "place": office["name"] if office else "",
        },
        source="affairs",
        idempotency_key=f"booking:{row['id']}:booked",
    )
    return BookingView(
        row["id"], row["code"], row["slot_id"], slot["office_id"], slot["starts_at"], row["status"], row["created_at"]
    )


async def cancel_booking(res: Resources, person_id: str, booking_id: uuid.UUID) -> BookingView:
    row = await repo.get_booking(res.db, booking_id)
    if row is None or str(row["person_id"]) != person_id:
        raise not_found("booking")
    if row["status"] != "booked":
        raise ProblemError(409, "not-cancellable", "Not a held booking", "该预约不可取消", row["status"])
    now = datetime.now(UTC)
    if row["starts_at"] - now < CANCEL_BEFORE:
        raise ProblemError(409, "cancel-window-closed", "Too late to cancel", "距预约时间不足 2 小时，无法取消")
    day_start = clock.beijing_midnight(clock.beijing_today(now))
    if await repo.cancellations_since(res.db, row["person_id"], day_start) >= CANCELS_PER_DAY:
        raise ProblemError(429, "too-many-cancellations", "At most 3 cancellations a day", "每日最多取消 3 次")
    async with res.db.acquire() as conn, conn.transaction():
        if not await repo.set_booking_status(conn, booking_id, "booked", "cancelled"):
            raise ProblemError(409, "not-cancellable", "Not a held booking", "该预约不可取消")
        await repo.release_slot(conn, row["slot_id"])
    fresh = await repo.get_booking(res.db, booking_id)
    return _booking_view(fresh)


async def my_bookings(res: Resources, person_id: str, *, cursor: str | None, limit: int) -> BookingList:
    at, bid = decode_cursor(cursor)
    rows = await repo.my_bookings(res.db, uuid.UUID(person_id), (at, bid) if at and bid else None, limit)
    nxt = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return BookingList([_booking_view(r) for r in rows], nxt)


async def sweep_no_shows(res: Resources, now: datetime | None = None) -> int:
    """Bookings whose time passed an hour ago without attendance are no-shows; the third in 30 days blacklists."""
    now = now or datetime.now(UTC)
    rows = await repo.mark_no_shows(res.db, now - timedelta(hours=1))
    for person in {r["person_id"] for r in rows}:
        if await repo.no_shows_since(res.db, person, now - timedelta(days=30)) >= NO_SHOWS_PER_MONTH:
            await repo.add_blacklist(res.db, person, "3 no-shows in 30 days", now + BLACKLIST_FOR)
    return len(rows)


async def attend(res: Resources, booking_id: uuid.UUID) -> None:
    """The office checked the person in (business-system API)."""
    if not await repo.set_booking_status(res.db, booking_id, "booked", "attended"):
        raise not_found("booking")


async def remind(res: Resources, now: datetime | None = None) -> int:
    """The day before (Beijing time), once per booking."""
    now = now or datetime.now(UTC)
    start = clock.beijing_midnight(clock.beijing_today(now) + timedelta(days=1))
    rows = await repo.due_reminders(res.db, start, start + timedelta(days=1))
    ms = await svc.manifests(res)
    for r in rows:
        await notify(
            res,
            str(r["person_id"]),
            template="appointment_reminder",
            params={
                "service": ms[r["code"]].name if r["code"] in ms else r["code"],
                "time": r["starts_at"].astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                "place": r["office"],
            },
            source="affairs",
            idempotency_key=f"booking:{r['id']}:reminder",
        )
    return len(rows)
