"""Rules of push: device addresses, templates, accepting a send, delivery status and the inbox."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from core.clock import SHANGHAI
from core.masking import mask_phone
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources
from push import repo
from push.models import (
    CHANNELS,
    MAX_SEND_AHEAD,
    ApnsDevice,
    ChannelCount,
    ChannelMetrics,
    DeliveryView,
    DeviceRegistration,
    DeviceView,
    HmsDevice,
    InboxItem,
    InboxPage,
    MessageAccepted,
    MessageStatus,
    PushMetrics,
    QuietHours,
    SendRequest,
    phone_context,
)

# The template registry: title and body formats, filled from the typed params of each template.
TEMPLATES: dict[str, tuple[str, str]] = {
    "case_status": ("办件进度通知", "您的办件 {case_no} 状态已更新为：{status}。"),
    "appointment_reminder": ("预约提醒", "您预约的“{service}”将于 {time} 在 {place} 办理，请准时前往。"),
    "broadcast": ("{title}", "{body}"),
    "document_expiry": ("证件到期提醒", "您的{document}将于 {date} 到期，请及时办理换领。"),
    "alert": ("{title}", "{body}"),
}
INTERNAL_CLIENT_PREFIX = "internal:"  # messages of other domains (notify) carry client_id "internal:<source>"
INBOX_PAGE_MAX = 50


def after_quiet_hours(at: dt.datetime, quiet: QuietHours) -> dt.datetime:
    """`at`, or the end of the quiet hours when `at` falls inside them (Beijing time; a window may wrap midnight)."""
    local = at.astimezone(SHANGHAI)
    start = dt.time.fromisoformat(quiet.start)
    end = dt.time.fromisoformat(quiet.end)
    now = local.time()
    inside = start <= now < end if start <= end else (now >= start or now < end)
    if start == end or not inside:
        return at
    end_at = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_at <= local:
        end_at += dt.timedelta(days=1)
    return end_at.astimezone(dt.UTC)


def render(template: str, params: dict[str, str]) -> tuple[str, str]:
    title, body = TEMPLATES[template]
    return title.format(**params), body.format(**params)


def register_template(name: str, title: str, body: str) -> None:
    """Other domains add their own templates (at import time): `{name}` placeholders filled from the params."""
    if not name.replace("_", "").isalnum() or not name.islower():
        raise ValueError(f"template name {name!r}: lower-case letters, digits and _")
    TEMPLATES[name] = (title, body)


async def notify(
    res: Resources,
    person_id: str,
    *,
    template: str,
    params: dict[str, str],
    source: str,
    idempotency_key: str,
) -> None:
    """The internal entry point other domains call: one person, a template, now; inbox and every active device.

    Idempotent on (source, idempotency_key): a repeat (a retried job, a replayed event) is a no-op. The inbox entry
    is written here at once; the device channels go through the same fan-out and streams as any send."""
    from push import delivery

    if template not in TEMPLATES:
        raise ValueError(f"unknown push template {template!r}")
    if not source or not idempotency_key or len(source) > 64 or len(idempotency_key) > 255:
        raise ValueError("source (1..64) and idempotency_key (1..255) are required")
    pid = uuid.UUID(person_id)
    try:
        title, body = render(template, params)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"template {template!r} needs the parameter {exc}") from exc
    now = dt.datetime.now(dt.UTC)
    row = await repo.insert_message(
        res.db,
        id=uuid.uuid4(),
        client_id=INTERNAL_CLIENT_PREFIX + source,
        idempotency_key=idempotency_key,
        template=template,
        params=params,
        title=title,
        body=body,
        priority="high",
        ttl=86_400,
        collapse_key=None,
        send_at=now,
        channels=list(CHANNELS),
        recipients=[pid],
        segment_region=None,
        segment_tags=None,
    )
    if row is None:
        return  # seen before: already in the inbox and queued
    added = await repo.add_to_inbox(res.db, row["id"], [pid], now)
    await delivery.announce(res, row["id"], added)
    await delivery.enqueue_fanout(res, str(row["id"]), now)


def _device_view(res: Resources, row: Any) -> DeviceView:
    phone = None
    if row["phone_enc"]:
        phone = mask_phone(res.fields.decrypt(row["phone_enc"], context=phone_context(row["person_id"])))
    return DeviceView(
        id=row["id"],
        platform=row["platform"],
        token=row["token"],
        phone=phone,
        app_version=row["app_version"],
        locale=row["locale"],
        region=row["region"] or None,
        tags=list(row["tags"]),
        active=row["active"],
        created_at=row["created_at"],
    )


async def register_device(res: Resources, person_id: str, reg: DeviceRegistration) -> DeviceView:
    pid = uuid.UUID(person_id)
    token = reg.token if isinstance(reg, ApnsDevice | HmsDevice) else None
    phone_enc = None if token is not None else res.fields.encrypt(reg.phone, context=phone_context(pid))  # type: ignore[union-attr]
    platform = "apns" if isinstance(reg, ApnsDevice) else "hms" if isinstance(reg, HmsDevice) else "sms"
    row = await repo.upsert_device(
        res.db,
        person_id=pid,
        platform=platform,
        token=token,
        phone_enc=phone_enc,
        app_version=reg.app_version,
        locale=reg.locale,
        region=reg.region,
        tags=sorted(set(reg.tags)),
    )
    return _device_view(res, row)


async def list_devices(res: Resources, person_id: str) -> list[DeviceView]:
    return [_device_view(res, r) for r in await repo.list_devices(res.db, uuid.UUID(person_id))]


async def unregister_device(res: Resources, person_id: str, device_id: uuid.UUID) -> None:
    if not await repo.unregister_device(res.db, uuid.UUID(person_id), device_id):
        raise not_found("device")


async def subscribe_topic(res: Resources, person_id: str, device_id: uuid.UUID, topic: str) -> None:
    if not await repo.subscribe(res.db, uuid.UUID(person_id), device_id, topic):
        raise not_found("device")


async def unsubscribe_topic(res: Resources, person_id: str, device_id: uuid.UUID, topic: str) -> None:
    if not await repo.unsubscribe(res.db, uuid.UUID(person_id), device_id, topic):
        raise not_found("device")


async def send(res: Resources, client_id: str, req: SendRequest, idempotency_key: str | None) -> MessageAccepted:
    """Persist the message (once per client and key) and queue its fan-out for its send time."""
    from push import delivery

    now = dt.datetime.now(dt.UTC)
    send_at = max(req.send_at or now, now)
    if req.quiet_hours is not None:
        send_at = after_quiet_hours(send_at, req.quiet_hours)
    if send_at - now > MAX_SEND_AHEAD:
        raise invalid("send_at", "at most 30 days ahead")
    params: dict[str, str] = msgspec.structs.asdict(req.content.params)
    title, body = render(req.content.__struct_config__.tag, params)  # type: ignore[arg-type]
    users = getattr(req.audience, "user_ids", None)
    row = await repo.insert_message(
        res.db,
        id=uuid.uuid4(),
        client_id=client_id,
        idempotency_key=idempotency_key,
        template=req.content.__struct_config__.tag,
        params=params,
        title=title,
        body=body,
        priority=req.priority,
        ttl=req.ttl,
        collapse_key=req.collapse_key,
        send_at=send_at,
        channels=[c for c in CHANNELS if c in req.channels],
        recipients=sorted(set(users)) if users is not None else None,
        segment_region=getattr(req.audience, "region", None),
        segment_tags=sorted(set(getattr(req.audience, "tags", []))) if users is None else None,
        topic=getattr(req.audience, "topic", None),
        segment_sex=getattr(req.audience, "sex", None),
        segment_age_bands=sorted(set(getattr(req.audience, "age_bands", []))) or None,
        segment_user_type=getattr(req.audience, "user_type", None),
    )
    if row is None:
        assert idempotency_key is not None
        existing = await repo.message_by_key(res.db, client_id, idempotency_key)
        if existing is None:  # pragma: no cover - the conflicting row is committed before ON CONFLICT sees it
            raise ProblemError(409, "conflict", "Conflict", "请求冲突", "retry")
        return MessageAccepted(id=existing["id"], send_at=existing["send_at"], duplicate=True)
    await delivery.enqueue_fanout(res, str(row["id"]), send_at)
    return MessageAccepted(id=row["id"], send_at=row["send_at"])


def _uuid_cursor(cursor: str | None) -> uuid.UUID:
    if not cursor:
        return uuid.UUID(int=0)
    try:
        return uuid.UUID(hex=cursor)
    except ValueError as exc:
        raise invalid("cursor", "not a cursor this list handed out") from exc


async def message_status(
    res: Resources, client_id: str, message_id: uuid.UUID, cursor: str | None, limit: int
) -> MessageStatus:
    m = await repo.get_message(res.db, message_id)
    if m is None or m["client_id"] != client_id:
        raise not_found("message")
    counts = [ChannelCount(r["channel"], r["status"], r["n"]) for r in await repo.delivery_counts(res.db, message_id)]
    rows = await repo.deliveries_page(res.db, message_id, _uuid_cursor(cursor), limit)
    items = [
        DeliveryView(
            person_id=r["person_id"],
            device_id=r["device_id"],
            channel=r["channel"],
            status=r["status"],
            attempts=r["attempts"],
            error=r["error"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]
    return MessageStatus(
        id=m["id"],
        template=m["template"],
        title=m["title"],
        body=m["body"],
        status=m["status"],
        created_at=m["created_at"],
        send_at=m["send_at"],
        counts=counts,
        deliveries=items,
        next_cursor=rows[-1]["device_id"].hex if len(rows) == limit else None,
    )


def _inbox_cursor(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, mid = text.partition("|")
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, uuid.UUID(mid)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid("cursor", "not a cursor this list handed out") from exc


async def inbox(res: Resources, person_id: str, cursor: str | None, limit: int) -> InboxPage:
    limit = min(limit, INBOX_PAGE_MAX)
    rows = await repo.inbox_page(res.db, uuid.UUID(person_id), _inbox_cursor(cursor), limit)
    items = [
        InboxItem(
            id=r["message_id"],
            template=r["template"],
            title=r["title"],
            body=r["body"],
            created_at=r["created_at"],
            read=r["read_at"] is not None,
        )
        for r in rows
    ]
    nxt = None
    if len(rows) == limit:
        last = rows[-1]
        raw = f"{last['created_at'].isoformat()}|{last['message_id']}".encode()
        nxt = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return InboxPage(items=items, next_cursor=nxt)


async def unread(res: Resources, person_id: str) -> int:
    return await repo.unread_count(res.db, uuid.UUID(person_id))


async def mark_read(res: Resources, person_id: str, message_id: uuid.UUID) -> None:
    if not await repo.mark_read(res.db, uuid.UUID(person_id), message_id):
        raise not_found("message")


EVENTS_MAX_SECONDS = 600  # the app reconnects (EventSource does by itself); bounds a connection's lifetime
HEARTBEAT_SECONDS = 15.0


async def inbox_events(res: Resources, person_id: str) -> AsyncIterator[tuple[str, str]]:
    """(event, JSON data) for an open app: `unread` at once, then `message` for each new inbox entry, and a
    heartbeat comment (event "") when idle. Fed by Redis pub/sub, so a message fanned out anywhere reaches it."""
    from push.delivery import inbox_channel

    pubsub = res.redis.pubsub()
    await pubsub.subscribe(inbox_channel(person_id))
    try:
        count = await unread(res, person_id)
        yield "unread", msgspec.json.encode({"unread": count}).decode()
        started = last = time.monotonic()
        while time.monotonic() - started < EVENTS_MAX_SECONDS:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None:
                if time.monotonic() - last > HEARTBEAT_SECONDS:
                    last = time.monotonic()
                    yield "", ""
                await asyncio.sleep(0)
                continue
            raw = msg.get("data")
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            count = await unread(res, person_id)
            yield "message", msgspec.json.encode({"id": text, "unread": count}).decode()
            last = time.monotonic()
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()


async def metrics(res: Resources) -> PushMetrics:
    """Per channel: delivered, failed, invalid, retried and dead-lettered since the counters began (shared by all
    workers in Redis), queue depths now, and the mean latency from send time to provider acceptance."""
    from push import delivery

    raw = await res.redis.hgetall(delivery.METRICS_KEY)
    counts = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
    depths = await delivery.queue_depths(res)
    out = []
    for ch in delivery.PROVIDER_CHANNELS:
        n = counts.get(f"{ch}:latency_count", 0.0)
        out.append(
            ChannelMetrics(
                channel=ch,
                delivered=int(counts.get(f"{ch}:delivered", 0)),
                failed=int(counts.get(f"{ch}:failed", 0)),
                invalid=int(counts.get(f"{ch}:invalid", 0)),
                retried=int(counts.get(f"{ch}:retried", 0)),
                dead_lettered=int(counts.get(f"{ch}:dead_lettered", 0)),
                queued=depths.get(ch, 0),
                dead_letters=depths.get(f"dead:{ch}", 0),
                latency_mean_seconds=round(counts[f"{ch}:latency_sum"] / n, 3) if n else None,
            )
        )
    return PushMetrics(channels=out, fanout_queued=depths.get(delivery.FANOUT, 0), delayed=depths.get("delayed", 0))
