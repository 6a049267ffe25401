"""Delivery: fan-out into per-channel Redis streams, consumer groups, retries, throttling, dead letters.

Streams (consumer group `push`):
- `push:stream:fanout` — one entry per message due; the fan-out consumer pages through the audience's devices
  (1000 at a time, never all in memory), fills the inbox and XADDs the page's devices to `push:stream:<channel>`,
  up to ENTRY_PAIRS (message, device) pairs of one message per entry.
- `push:stream:apns|hms|sms` — entries of (message, device) pairs. A consumer reads a batch, claims the pairs in the
  send log (insert-if-absent, or take back from queued/retry: a pair already sending, delivered or failed is
  skipped, so it reaches the provider at most once), calls the provider (HMS: one request per up to 1000 tokens
  of a message), records the outcome, then acknowledges.
- Transient failures go to the sorted set `push:delayed` (score: not-before time, exponential backoff with
  jitter, at least the provider's Retry-After) and are moved back into their stream by a scheduled job; after
  MAX_ATTEMPTS they go to `push:dead:<channel>`. A 429/503 with Retry-After also pauses the channel's consumers.
- Entries left pending by a crashed consumer are taken over with XAUTOCLAIM after SZT_PUSH_CLAIM_IDLE_MS.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import ResponseError

from core.observe import REGISTRY
from core.resources import Resources
from core.worker import heartbeat_key, worker_id
from push import repo
from push.models import phone_context
from push.providers import (
    HMS_BATCH,
    SMS_BATCH,
    ApnsClient,
    HmsClient,
    Notification,
    Outcome,
    SmsClient,
    apns_id_for,
)

log = logging.getLogger("szt.push.delivery")

GROUP = "push"
FANOUT = "fanout"
DELAYED = "push:delayed"
MAX_ATTEMPTS = 6
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
# Both configurable (Settings): a crashed consumer's stream entries are taken over after push_claim_idle_ms; a pair
# left 'sending' by a worker whose heartbeat is gone is taken back after push_sending_timeout seconds.
STUCK_FACTOR = 10
FANOUT_PAGE = 1000
BATCH: dict[str, int] = {"apns": 500, "hms": HMS_BATCH, "sms": 200, FANOUT: 10}
# Pairs per stream entry: the fan-out writes a page's devices of one channel as entries of up to this many pairs,
# so Redis moves (and the consumers parse) one entry per hundred deliveries, not one per delivery. A consumer reads
# BATCH // ENTRY_PAIRS entries at a time.
ENTRY_PAIRS = 100
STREAM_MAXLEN = 10_000_000
DEAD_MAXLEN = 1_000_000

Entry = tuple[bytes, dict[bytes, bytes]]

OUTCOMES = Counter(
    "szt_push_deliveries_total",
    "Push deliveries by channel and outcome (delivered, failed, invalid, retried, dead_lettered)",
    ["channel", "outcome"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "szt_push_delivery_latency_seconds",
    "From a message's send time to the provider accepting it",
    ["channel"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
QUEUE_DEPTH = Gauge(
    "szt_push_queue_depth",
    "Entries waiting: per stream (ready + pending), the delayed set and the dead-letter streams",
    ["queue"],
    registry=REGISTRY,
)
METRICS_KEY = "push:metrics"  # hash "<channel>:<outcome>" -> count, shared by all workers (the admin view reads it)
Job = Callable[[Resources], Coroutine[Any, Any, None]]

# Move due entries from the delayed set back into their streams, atomically (one replica wins each member).
_MOVE_DUE = """
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, raw in ipairs(items) do
  if redis.call('ZREM', KEYS[1], raw) == 1 then
    local e = cjson.decode(raw)
    local args = {}
    for k, v in pairs(e.f) do table.insert(args, k); table.insert(args, v) end
    redis.call('XADD', e.s, '*', unpack(args))
  end
end
return #items
"""


def stream(channel: str) -> str:
    return f"push:stream:{channel}"


def dead(channel: str) -> str:
    return f"push:dead:{channel}"


def pause_key(channel: str) -> str:
    return f"push:pause:{channel}"


async def ensure_groups(res: Resources) -> None:
    for channel in (FANOUT, *PROVIDER_CHANNELS):
        try:
            await res.redis.xgroup_create(stream(channel), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def _delay(res: Resources, channel: str, fields: dict[str, str], not_before: float) -> None:
    member = json.dumps({"s": stream(channel), "f": fields}, separators=(",", ":"), sort_keys=True)
    await res.redis.zadd(DELAYED, {member: not_before})


async def enqueue_fanout(res: Resources, message_id: str, at: dt.datetime) -> None:
    if at.timestamp() <= time.time() + 0.5:
        await res.redis.xadd(stream(FANOUT), {"m": message_id}, maxlen=STREAM_MAXLEN, approximate=True)
    else:
        await _delay(res, FANOUT, {"m": message_id}, at.timestamp())


async def move_due(res: Resources, now: float | None = None, limit: int = 5000) -> int:
    """Scheduled: delayed entries whose time has come go back into their streams."""
    moved = await res.redis.eval(_MOVE_DUE, 1, DELAYED, str(now if now is not None else time.time()), str(limit))
    return int(moved)


def person_segment(m: Any) -> bool:
    """Whether a message's audience needs identity's data (sex, age band, user type)."""
    return bool(m["segment_sex"] or m["segment_age_bands"] or m["segment_user_type"])


Page = tuple[uuid.UUID, list[uuid.UUID], list[Any]]  # (resume point, people for the inbox, their devices)


async def _pages(res: Resources, m: Any, after: uuid.UUID) -> AsyncIterator[Page]:
    """The audience of a message a page at a time, from `after` (a device id, or a person id for a person
    segment, whose ids identity streams through a server-side cursor)."""
    if person_segment(m):
        from identity.facade import segments

        async for ids in segments.person_ids(
            res,
            sex=m["segment_sex"],
            age_bands=m["segment_age_bands"] or (),
            user_type=m["segment_user_type"],
            after=after,
            page=FANOUT_PAGE,
        ):
            devs = await repo.devices_of_persons(res.db, ids, m["segment_region"], m["segment_tags"] or [])
            by_device = m["segment_region"] is not None or bool(m["segment_tags"])
            yield ids[-1], (list({r["person_id"] for r in devs}) if by_device else ids), devs
        return
    while True:
        page = await repo.target_devices_page(res.db, m, after, FANOUT_PAGE)
        if not page:
            return
        after = page[-1]["id"]
        persons = [] if m["recipients"] is not None else list({r["person_id"] for r in page})
        yield after, persons, page
        if len(page) < FANOUT_PAGE:
            return


async def fan_out(
    res: Resources, message_id: uuid.UUID, keepalive: Callable[[], Awaitable[object]] | None = None
) -> int:
    """Expand one message to its devices, a page at a time, never the whole audience in memory.

    Safe to repeat and to resume: the inbox and the send log ignore duplicates, and the resume point is saved
    after each page, so a consumer taking over after a crash continues where the first one stopped.
    `keepalive` runs after each page (the consumer refreshes its stream entry, so a long fan-out is not claimed
    by another consumer as abandoned)."""
    m = await repo.get_message(res.db, message_id)
    if m is None or m["status"] == "fanned_out":
        return 0
    channels = set(m["channels"])
    after = m["fanout_after"]
    if "inbox" in channels and m["recipients"] is not None and after is None:
        added = await repo.add_to_inbox(res.db, message_id, m["recipients"], m["send_at"])
        await announce(res, message_id, added)
    queued = 0
    async for resume, persons, page in _pages(res, m, after or uuid.UUID(int=0)):
        if "inbox" in channels and persons:
            added = await repo.add_to_inbox(res.db, message_id, persons, m["send_at"])
            await announce(res, message_id, added)
        by_channel: dict[str, list[tuple[uuid.UUID, uuid.UUID]]] = defaultdict(list)
        for r in page:
            if r["platform"] in channels:
                by_channel[r["platform"]].append((r["id"], r["person_id"]))
        if by_channel:
            # No send-log row yet: the consumer's claim inserts it (one write per pair saved on a broadcast).
            async with res.redis.pipeline(transaction=False) as pipe:
                for ch, pairs in by_channel.items():
                    for fields in entry_fields(message_id, pairs):
                        pipe.xadd(stream(ch), fields, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
                await pipe.execute()
            queued += sum(len(v) for v in by_channel.values())
        await repo.save_fanout_cursor(res.db, message_id, resume)
        if keepalive is not None:
            await keepalive()
    await repo.mark_fanned_out(res.db, message_id)
    return queued


def entry_fields(message_id: uuid.UUID, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> list[dict[str, str]]:
    """Stream entries of one message for (device, person) pairs: up to ENTRY_PAIRS each, ids comma-separated."""
    out = []
    for i in range(0, len(pairs), ENTRY_PAIRS):
        chunk = pairs[i : i + ENTRY_PAIRS]
        out.append(
            {"m": str(message_id), "d": ",".join(d.hex for d, _ in chunk), "p": ",".join(p.hex for _, p in chunk)}
        )
    return out


def parse_entry(fields: dict[bytes, bytes]) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
    """(message, device, person) pairs of one stream entry; ValueError/KeyError when malformed."""
    m = uuid.UUID(fields[b"m"].decode())
    devices = fields[b"d"].decode().split(",")
    persons = fields[b"p"].decode().split(",")
    if len(devices) != len(persons):
        raise ValueError("devices and persons differ in number")
    return [(m, uuid.UUID(d), uuid.UUID(p)) for d, p in zip(devices, persons, strict=True)]


def inbox_channel(person_id: uuid.UUID | str) -> str:
    return f"push:inbox:{person_id}"


async def announce(res: Resources, message_id: uuid.UUID, persons: list[uuid.UUID]) -> None:
    """Tell open apps (any replica) that a message landed in their inbox: Redis pub/sub, one channel per user."""
    if not persons:
        return
    async with res.redis.pipeline(transaction=False) as pipe:
        for pid in persons:
            pipe.publish(inbox_channel(pid), str(message_id))
        await pipe.execute()


class _Providers:
    def __init__(self, res: Resources) -> None:
        self.apns = ApnsClient(res.settings)
        self.hms = HmsClient(res.settings, res.http)
        self.sms = SmsClient(res.settings, res.http)


_providers: dict[int, _Providers] = {}


def providers(res: Resources) -> _Providers:
    found = _providers.get(id(res))
    if found is None:
        found = _providers[id(res)] = _Providers(res)
    return found


async def close_providers(res: Resources) -> None:
    found = _providers.pop(id(res), None)
    if found is not None:
        await found.apns.aclose()


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 2, 4, 8, ... seconds, capped, each drawn from [half, full]."""
    full = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempt - 1))
    return random.uniform(full / 2, full)


def _notification(m: Any) -> Notification:
    params = m["params"] if isinstance(m["params"], dict) else json.loads(m["params"])
    expires = int(m["send_at"].timestamp()) + m["ttl"] if m["ttl"] else 0
    return Notification(
        message_id=str(m["id"]),
        title=m["title"],
        body=m["body"],
        priority=m["priority"],
        expires_at=expires,
        ttl=m["ttl"],
        collapse_key=m["collapse_key"],
        template=m["template"],
        params={k: str(v) for k, v in params.items()},
    )


# A message's content never changes after it is accepted, so consumers keep the few recent ones (a broadcast is
# thousands of batches of the same message: one query saved per batch).
_MESSAGE_CACHE: dict[uuid.UUID, Any] = {}
MESSAGE_CACHE_SIZE = 256


async def _messages(res: Resources, ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    missing = [m for m in ids if m not in _MESSAGE_CACHE]
    if missing:
        if len(_MESSAGE_CACHE) + len(missing) > MESSAGE_CACHE_SIZE:
            _MESSAGE_CACHE.clear()
        for r in await repo.messages_by_id(res.db, missing):
            _MESSAGE_CACHE[r["id"]] = r
    return {m: _MESSAGE_CACHE[m] for m in ids if m in _MESSAGE_CACHE}


async def process(res: Resources, channel: str, entries: list[Entry]) -> int:
    """Deliver one batch of stream entries of a provider channel, then acknowledge them. Returns the number of
    (message, device) pairs the entries held (pairs already handled elsewhere are skipped, not sent)."""
    if not entries:
        return 0
    parsed: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
    ids: list[bytes] = []
    for entry_id, fields in entries:
        ids.append(entry_id)
        try:
            parsed.extend(parse_entry(fields))
        except (KeyError, ValueError):
            log.warning("bad push entry", extra={"channel": channel, "entry": entry_id.decode()})
    claimed = await repo.claim(res.db, [(m, d, p, channel) for m, d, p in parsed], worker_id(), with_devices=True)
    attempts = {(r["message_id"], r["device_id"]): r["attempts"] for r in claimed}
    recovered = {(r["message_id"], r["device_id"]) for r in claimed if r["recovered"]}
    work = [(m, d, p) for m, d, p in parsed if (m, d) in attempts]
    outcomes: dict[tuple[uuid.UUID, uuid.UUID], Outcome] = {}
    send_times: dict[uuid.UUID, float] = {}
    if work:
        messages = await _messages(res, {m for m, _, _ in work})
        send_times = {k: v["send_at"].timestamp() for k, v in messages.items()}
        devices = {r["device_id"]: r for r in claimed if r["id"] is not None}
        now = time.time()
        sendable: list[tuple[uuid.UUID, uuid.UUID]] = []
        for m, d, _ in work:
            msg, dev = messages.get(m), devices.get(d)
            if msg is None or dev is None or not dev["active"]:
                outcomes[(m, d)] = Outcome("failed", "device inactive")
            elif msg["ttl"] and now > msg["send_at"].timestamp() + msg["ttl"]:
                outcomes[(m, d)] = Outcome("failed", "expired")
            else:
                sendable.append((m, d))
        outcomes.update(await _send(res, channel, sendable, messages, devices, recovered))
    await _record(res, channel, outcomes, attempts, {(m, d): p for m, d, p in work}, send_times)
    await _done(res, channel, ids)
    return len(parsed)


@dataclass(frozen=True)
class Target:
    """One (message, device) pair a sender delivers: the device row (token, phone_enc, person_id), the rendered
    notification, and whether the pair was taken back from a dead worker (it may have reached the provider)."""

    message_id: uuid.UUID
    device_id: uuid.UUID
    device: Any
    note: Notification
    recovered: bool

    @property
    def ref(self) -> str:
        """The pair's idempotency reference at the provider: APNs apns-id, SMS out_id."""
        return apns_id_for(str(self.message_id), str(self.device_id))


# A channel's sender: delivers a batch of targets (at most BATCH[channel]) and answers one Outcome per target,
# in order. A new channel plugs in with register_channel(); push.jobs starts consumers per channel.
Sender = Callable[[Resources, list[Target]], Awaitable[list[Outcome]]]


async def _send_apns(res: Resources, targets: list[Target]) -> list[Outcome]:
    p = providers(res)
    # A recovered pair is sent again with the same apns-id and apns-collapse-id: if the first call did reach
    # APNs, the device replaces that notification instead of showing a second one.
    return await p.apns.send_many([(t.device["token"], t.note, t.ref) for t in targets])


async def _send_hms(res: Resources, targets: list[Target]) -> list[Outcome]:
    p = providers(res)
    by_message: dict[uuid.UUID, list[Target]] = defaultdict(list)
    for t in targets:
        by_message[t.message_id].append(t)
    calls = []
    for group in by_message.values():
        for i in range(0, len(group), HMS_BATCH):
            chunk = group[i : i + HMS_BATCH]
            calls.append((chunk, p.hms.send([t.device["token"] for t in chunk], chunk[0].note)))
    results = await asyncio.gather(*(c for _, c in calls))
    out: dict[uuid.UUID, Outcome] = {}
    for (chunk, _), per_token in zip(calls, results, strict=True):
        for t in chunk:
            out[t.device_id] = per_token.get(t.device["token"], Outcome("failed", "no answer"))
    return [out[t.device_id] for t in targets]


async def _send_sms(res: Resources, targets: list[Target]) -> list[Outcome]:
    p = providers(res)
    out: list[Outcome | None] = [None] * len(targets)

    async def recovered(i: int, t: Target) -> None:
        # An SMS cannot be taken back from a phone: ask the gateway whether the first call got there.
        try:
            sent = await p.sms.sent_id(t.ref.replace("-", ""))
        except Exception as exc:  # any failure to ask means: ask again later
            out[i] = Outcome("retry", f"query: {type(exc).__name__}")
            return
        if sent is not None:
            out[i] = Outcome("delivered", provider_id=sent)

    await asyncio.gather(*(recovered(i, t) for i, t in enumerate(targets) if t.recovered))
    # The rest in batch calls per message (one template and text each), each number with its own out_id.
    by_message: dict[uuid.UUID, list[int]] = defaultdict(list)
    for i, t in enumerate(targets):
        if out[i] is None:
            by_message[t.message_id].append(i)
    calls: list[tuple[list[int], Awaitable[list[Outcome]]]] = []
    for idx in by_message.values():
        for k in range(0, len(idx), SMS_BATCH):
            chunk = idx[k : k + SMS_BATCH]
            items = [
                (
                    res.fields.decrypt(
                        targets[i].device["phone_enc"], context=phone_context(targets[i].device["person_id"])
                    ),
                    targets[i].ref.replace("-", ""),
                )
                for i in chunk
            ]
            calls.append((chunk, p.sms.send_batch(targets[chunk[0]].note, items)))
    results = await asyncio.gather(*(c for _, c in calls))
    for (chunk, _), got in zip(calls, results, strict=True):
        for i, o in zip(chunk, got, strict=True):
            out[i] = o
    return [o if o is not None else Outcome("failed", "no answer") for o in out]


SENDERS: dict[str, Sender] = {"apns": _send_apns, "hms": _send_hms, "sms": _send_sms}
PROVIDER_CHANNELS: list[str] = list(SENDERS)


def register_channel(channel: str, sender: Sender, batch: int) -> None:
    """Plug a delivery channel in (before `push.jobs` is imported, i.e. at import of push.delivery's caller)."""
    SENDERS[channel] = sender
    BATCH[channel] = batch
    if channel not in PROVIDER_CHANNELS:
        PROVIDER_CHANNELS.append(channel)


async def _send(
    res: Resources,
    channel: str,
    pairs: list[tuple[uuid.UUID, uuid.UUID]],
    messages: dict[uuid.UUID, Any],
    devices: dict[uuid.UUID, Any],
    recovered: set[tuple[uuid.UUID, uuid.UUID]],
) -> dict[tuple[uuid.UUID, uuid.UUID], Outcome]:
    if not pairs:
        return {}
    sender = SENDERS.get(channel)
    if sender is None:
        return dict.fromkeys(pairs, Outcome("failed", f"unknown channel {channel}"))
    notes = {m: _notification(messages[m]) for m in {m for m, _ in pairs}}
    targets = [Target(m, d, devices[d], notes[m], (m, d) in recovered) for m, d in pairs]
    try:
        results = await sender(res, targets)
    except Exception as exc:  # a sender's bug or an unexpected failure must not leave its pairs 'sending'
        log.exception("push sender failed", extra={"channel": channel})
        return dict.fromkeys(pairs, Outcome("retry", f"sender: {type(exc).__name__}", uncertain=True))
    return dict(zip(pairs, results, strict=True))


async def _record(
    res: Resources,
    channel: str,
    outcomes: dict[tuple[uuid.UUID, uuid.UUID], Outcome],
    attempts: dict[tuple[uuid.UUID, uuid.UUID], int],
    persons: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID],
    send_times: dict[uuid.UUID, float],
) -> None:
    delivered, failed, retry, invalid_devices = [], [], [], []
    dead_lettered = 0
    pause = 0.0
    now = time.time()
    for (m, d), o in outcomes.items():
        if o.kind == "delivered":
            delivered.append((m, d, "", o.provider_id))
        elif o.kind == "invalid":
            invalid_devices.append(d)
            failed.append((m, d, o.reason, ""))
        elif o.kind == "retry" and attempts.get((m, d), MAX_ATTEMPTS) < MAX_ATTEMPTS:
            retry.append((m, d, o))
            if o.retry_after:
                pause = max(pause, o.retry_after)
        elif o.kind == "retry":
            failed.append((m, d, f"dead-lettered after {MAX_ATTEMPTS} attempts: {o.reason}", ""))
            dead_lettered += 1
            await res.redis.xadd(
                dead(channel),
                {"m": str(m), "d": str(d), "p": str(persons.get((m, d), "")), "reason": o.reason[:200]},
                maxlen=DEAD_MAXLEN,
                approximate=True,
            )
        else:
            failed.append((m, d, o.reason, ""))
    metric = {
        "delivered": len(delivered),
        "failed": len(failed) - len(invalid_devices) - dead_lettered,
        "invalid": len(invalid_devices),
        "retried": len(retry),
        "dead_lettered": dead_lettered,
    }
    latencies = [max(0.0, now - send_times[m]) for m, _, _, _ in delivered if m in send_times]
    async with res.redis.pipeline(transaction=False) as pipe:
        for outcome, n in metric.items():
            if n:
                OUTCOMES.labels(channel, outcome).inc(n)
                pipe.hincrby(METRICS_KEY, f"{channel}:{outcome}", n)
        if latencies:
            pipe.hincrbyfloat(METRICS_KEY, f"{channel}:latency_sum", sum(latencies))
            pipe.hincrby(METRICS_KEY, f"{channel}:latency_count", len(latencies))
        await pipe.execute()
    for lat in latencies:
        LATENCY.labels(channel).observe(lat)
    await repo.finish(res.db, "delivered", delivered)
    await repo.finish(res.db, "failed", failed)
    if invalid_devices:
        await repo.deactivate_devices(res.db, invalid_devices, f"{channel}: reported invalid by the provider")
    if retry:
        await repo.finish(res.db, "retry", [(m, d, o.reason, "") for m, d, o in retry if not o.uncertain])
        await repo.finish(res.db, "retry", [(m, d, o.reason, "") for m, d, o in retry if o.uncertain], uncertain=True)
        # One delayed entry per message of the batch (its pairs retry together), not one per pair.
        by_message: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]] = defaultdict(list)
        waits: dict[uuid.UUID, float] = {}
        for m, d, o in retry:
            by_message[m].append((d, persons[(m, d)]))
            waits[m] = max(waits.get(m, 0.0), backoff(attempts[(m, d)]), o.retry_after or 0.0)
        for m, pairs in by_message.items():
            for fields in entry_fields(m, pairs):
                await _delay(res, channel, fields, now + waits[m])
    if pause:
        await res.redis.set(pause_key(channel), "1", px=int(pause * 1000))
    if outcomes:
        log.info(
            "push batch",
            extra={
                "channel": channel,
                "delivered": len(delivered),
                "failed": len(failed),
                "retry": len(retry),
                "deactivated": len(invalid_devices),
            },
        )


async def read_batch(res: Resources, channel: str, consumer: str, block_ms: int | None = 1000) -> int:
    """XREADGROUP new entries for `consumer` and handle them; returns the number of pairs (fan-out: messages)."""
    reply: Any = await res.redis.xreadgroup(
        GROUP, consumer, {stream(channel): ">"}, count=entries_per_read(channel), block=block_ms
    )
    entries: list[Entry] = reply[0][1] if reply else []
    return await _handle(res, channel, entries, consumer)


async def claim_stale(res: Resources, channel: str, consumer: str, min_idle_ms: int | None = None) -> int:
    """Take over entries another consumer read but never acknowledged (it crashed) and handle them; returns the
    number of pairs (fan-out: messages) they held."""
    if min_idle_ms is None:
        min_idle_ms = res.settings.push_claim_idle_ms
    total = 0
    start = "0-0"
    while True:
        reply: Any = await res.redis.xautoclaim(
            stream(channel), GROUP, consumer, min_idle_time=min_idle_ms, start_id=start, count=entries_per_read(channel)
        )
        start = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        entries: list[Entry] = [e for e in reply[1] if e[1] is not None]
        total += await _handle(res, channel, entries, consumer)
        if start == "0-0" or not entries:
            return total


def entries_per_read(channel: str) -> int:
    """Stream entries a consumer takes at once: about BATCH[channel] pairs when entries are full."""
    return BATCH[channel] if channel == FANOUT else max(1, BATCH[channel] // ENTRY_PAIRS)


async def _done(res: Resources, channel: str, ids: list[bytes]) -> None:
    """Acknowledge handled entries and drop them: a stream holds only work not yet done (one consumer group)."""
    async with res.redis.pipeline(transaction=False) as pipe:
        pipe.xack(stream(channel), GROUP, *ids)
        pipe.xdel(stream(channel), *ids)
        await pipe.execute()


async def _handle(res: Resources, channel: str, entries: list[Entry], consumer: str) -> int:
    """Handle entries read; returns how many items they held (fan-out: messages; else (message, device) pairs)."""
    if not entries:
        return 0
    if channel == FANOUT:
        for entry_id, fields in entries:

            async def keepalive(entry_id: bytes = entry_id) -> object:
                return await res.redis.xclaim(stream(FANOUT), GROUP, consumer, 0, [entry_id], justid=True)

            try:
                await fan_out(res, uuid.UUID(fields[b"m"].decode()), keepalive)
            except (KeyError, ValueError):
                log.warning("bad fan-out entry", extra={"entry": entry_id.decode()})
            await _done(res, FANOUT, [entry_id])
        return len(entries)
    return await process(res, channel, entries)


async def _finish_on_cancel(work: Coroutine[Any, Any, int]) -> int:
    """Run a batch to its end even when the worker is told to stop (SIGTERM cancels the consumer tasks): its pairs
    are already claimed in the send log, and a batch abandoned mid-call could not be sent again."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


async def run_consumer(
    res: Resources, channel: str, consumer: str | None = None, stop: asyncio.Event | None = None, suffix: str = ""
) -> None:
    """The worker loop of one channel: claim stale entries now and then, honour pauses, read and deliver."""
    import socket

    consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{channel}{suffix}"
    await ensure_groups(res)
    last_claim = 0.0
    while stop is None or not stop.is_set():
        try:
            paused = await res.redis.pttl(pause_key(channel))
            if paused and paused > 0:
                await asyncio.sleep(min(paused, 5000) / 1000)
                continue
            if time.monotonic() - last_claim > res.settings.push_claim_idle_ms / 2000:
                last_claim = time.monotonic()
                await _finish_on_cancel(claim_stale(res, channel, consumer))
            await _finish_on_cancel(read_batch(res, channel, consumer, block_ms=1000))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("push consumer error", extra={"channel": channel})
            await asyncio.sleep(1)


async def sweep_unfanned(res: Resources, older_than: float = 300.0) -> int:
    """Messages due for a while but never fanned out (the enqueue was lost in a crash): queue them again."""
    rows = await repo.due_unfanned(res.db, older_than)
    for r in rows:
        await res.redis.xadd(stream(FANOUT), {"m": str(r["id"])}, maxlen=STREAM_MAXLEN, approximate=True)
    return len(rows)


async def recover_stale_sending(res: Resources, older_than: float | None = None, limit: int = 5000) -> int:
    """Pairs left 'sending' by a worker that is gone (claimed longer ago than the timeout, and no heartbeat of the
    claiming worker) go back into their stream, marked recovered. Their re-send cannot double what the user sees:
    APNs and HarmonyOS get the same apns-id/apns-collapse-id or notifyId, so a device that already has the
    notification replaces it; SMS asks the gateway by out_id first. A pair of a live worker is never touched."""
    timeout = res.settings.push_sending_timeout if older_than is None else older_than
    rows = await repo.stale_sending(res.db, timeout, limit)
    if not rows:
        return 0
    workers = sorted({r["claimed_by"] for r in rows})
    alive_flags = await res.redis.mget([heartbeat_key(w) for w in workers]) if workers else []
    alive = {w for w, flag in zip(workers, alive_flags, strict=True) if w and flag is not None}
    # A live worker's pair is left alone, unless stuck far beyond any call (a bug there): the re-send is safe anyway.
    taken = await repo.take_back(
        res.db,
        [
            (r["message_id"], r["device_id"], r["claimed_by"])
            for r in rows
            if r["claimed_by"] not in alive or r["age"] > STUCK_FACTOR * timeout
        ],
    )
    grouped: dict[tuple[str, uuid.UUID], list[tuple[uuid.UUID, uuid.UUID]]] = defaultdict(list)
    for r in taken:
        grouped[(r["channel"], r["message_id"])].append((r["device_id"], r["person_id"]))
    async with res.redis.pipeline(transaction=False) as pipe:
        for (ch, m), pairs in grouped.items():
            for fields in entry_fields(m, pairs):
                pipe.xadd(stream(ch), fields, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()
    if taken:
        OUTCOMES.labels("all", "recovered").inc(len(taken))
        log.warning("push pairs taken back from stopped workers", extra={"pairs": len(taken), "workers": workers})
    return len(taken)


async def queue_depths(res: Resources) -> dict[str, int]:
    """What waits, per queue: each stream's entries (a stream holds only unfinished work), the delayed set, and
    each dead-letter stream."""
    channels = [FANOUT, *PROVIDER_CHANNELS]
    async with res.redis.pipeline(transaction=False) as pipe:
        for ch in channels:
            pipe.xlen(stream(ch))
        pipe.zcard(DELAYED)
        for ch in PROVIDER_CHANNELS:
            pipe.xlen(dead(ch))
        got = await pipe.execute()
    names = [*channels, "delayed", *(f"dead:{ch}" for ch in PROVIDER_CHANNELS)]
    return {n: int(v) for n, v in zip(names, got, strict=True)}


async def watch_queues(res: Resources, every: float = 5.0) -> None:
    """The worker's queue-depth gauge, refreshed every few seconds."""
    while True:
        try:
            for name, n in (await queue_depths(res)).items():
                QUEUE_DEPTH.labels(name).set(n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("push queue depth")
        await asyncio.sleep(every)


def _register_mini_program_channels() -> None:
    from push import mini_providers  # imports no part of this module, so no cycle

    for channel in mini_providers.CHANNELS:
        register_channel(channel, mini_providers.sender(channel), batch=100)


_register_mini_program_channels()
