"""Push: devices, the send API, delivery through the APNs/HMS/SMS simulators (in-process consumers), inbox."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import httpx
import pytest

from core.resources import Resources
from identity import clients
from push import delivery, repo, service
from push.models import ApnsDevice, HmsDevice
from tests.identity_helpers import bearer, enrol, pick_citizen
from tests.push_helpers import drain


def apns_token() -> str:
    return secrets.token_hex(32)


def hms_token() -> str:
    return "IQAAAACy0" + secrets.token_urlsafe(48)


async def queued_pairs(res: Resources, channel: str) -> int:
    """(message, device) pairs waiting in a channel's stream: an entry holds up to delivery.ENTRY_PAIRS."""
    entries: Any = await res.redis.xrange(delivery.stream(channel))
    return sum(len(delivery.parse_entry(fields)) for _, fields in entries)


@pytest.fixture(scope="module")
async def business(res: Resources) -> httpx.BasicAuth:
    made = await clients.create(res, client_id=f"biz-{uuid.uuid4().hex[:8]}", name="办件系统", kind="business")
    assert made.client_secret
    return httpx.BasicAuth(made.client.client_id, made.client_secret)


class User:
    def __init__(self, headers: dict[str, str], person_id: uuid.UUID) -> None:
        self.headers = headers
        self.person_id = person_id


@pytest.fixture(scope="module")
async def user(res: Resources, http: httpx.Client, sim_url: str) -> User:
    enrolled: Any = enrol(http, sim_url, pick_citizen(sim_url))
    pid = await res.db.fetchval("SELECT id FROM identity.people WHERE wangha = $1", enrolled["wangha"])
    return User(bearer(enrolled["session"]), pid)


def register(http: httpx.Client, u: User, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post("/bff/v1/push/devices", json=body, headers=u.headers)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def send(http: httpx.Client, auth: httpx.BasicAuth, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return http.post("/push/v1/messages", json=body, auth=auth, headers=headers)


def case_message(user_ids: list[uuid.UUID], **kw: Any) -> dict[str, Any]:
    return {
        "audience": {"type": "users", "user_ids": [str(u) for u in user_ids]},
        "content": {"template": "case_status", "params": {"case_no": "SZ2026-0001", "status": "已办结"}},
        **kw,
    }


def apns_received(sim_url: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{sim_url}/apns/_sim/received", params={"token": token}).json()["items"]
    return items


def hms_received(sim_url: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{sim_url}/hms/_sim/received", params={"token": token}).json()["items"]
    return items


def status_of(http: httpx.Client, auth: httpx.BasicAuth, message_id: str) -> dict[str, Any]:
    r = http.get(f"/push/v1/messages/{message_id}", auth=auth)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_devices_register_list_unregister(http: httpx.Client, user: User) -> None:
    token = apns_token()
    dev = register(http, user, {"platform": "apns", "token": token, "app_version": "3.2.1", "region": "320500"})
    assert dev["platform"] == "apns" and dev["token"] == token and dev["active"]
    again = register(http, user, {"platform": "apns", "token": token, "tags": ["elder"]})
    assert again["id"] == dev["id"] and again["tags"] == ["elder"]
    sms = register(http, user, {"platform": "sms", "phone": "13912345678"})
    assert sms["phone"] == "139****5678" and sms["token"] is None
    listed = http.get("/bff/v1/push/devices", headers=user.headers).json()["items"]
    assert {d["id"] for d in listed} >= {dev["id"], sms["id"]}
    assert http.delete(f"/bff/v1/push/devices/{dev['id']}", headers=user.headers).status_code == 204
    assert http.delete(f"/bff/v1/push/devices/{dev['id']}", headers=user.headers).status_code == 404
    listed = http.get("/bff/v1/push/devices", headers=user.headers).json()["items"]
    assert dev["id"] not in {d["id"] for d in listed}
    assert http.delete(f"/bff/v1/push/devices/{sms['id']}", headers=user.headers).status_code == 204


async def test_device_validation_names_the_field(http: httpx.Client, user: User) -> None:
    r = http.post("/bff/v1/push/devices", json={"platform": "apns", "token": "xyz"}, headers=user.headers)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "token" in r.json()["errors"][0]["field"]


async def test_send_is_idempotent_and_delivered_once_per_channel(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth, sim_url: str
) -> None:
    a_token, h_token = apns_token(), hms_token()
    register(http, user, {"platform": "apns", "token": a_token})
    register(http, user, {"platform": "hms", "token": h_token})
    body = case_message([user.person_id], priority="high", collapse_key="case-SZ2026-0001")
    key = uuid.uuid4().hex
    first = send(http, business, body, key)
    assert first.status_code == 202, first.text
    second = send(http, business, body, key)
    assert second.status_code == 202 and second.json()["id"] == first.json()["id"]
    mid = first.json()["id"]
    # Past the Redis replay (a lost reply and a retry after the window): the database unique key answers.
    await res.redis.delete(*[k async for k in res.redis.scan_iter(match="idem:POST:/push/v1/messages:*")])
    third = send(http, business, body, key)
    assert third.status_code == 202 and third.json() == {**first.json(), "duplicate": True}
    assert await res.db.fetchval("SELECT count(*) FROM push.messages WHERE id = $1", uuid.UUID(mid)) == 1

    await drain(res)
    await drain(res)
    got = apns_received(sim_url, a_token)
    assert len(got) == 1
    assert got[0]["priority"] == 10 and got[0]["collapse_id"] == "case-SZ2026-0001"
    assert got[0]["payload"]["aps"]["alert"]["body"] == "您的办件 SZ2026-0001 状态已更新为：已办结。"
    assert len(hms_received(sim_url, h_token)) == 1
    assert delivery.providers(res).apns.http_version == "HTTP/2"  # h2c with prior knowledge to the simulator
    st = status_of(http, business, mid)
    mine = {d["channel"]: d for d in st["deliveries"] if d["person_id"] == str(user.person_id)}
    assert mine["apns"]["status"] == "delivered" and mine["hms"]["status"] == "delivered"
    assert st["status"] == "fanned_out"

    # A duplicate stream entry (a re-run fan-out, a redelivered entry) never reaches the provider again.
    dev = await res.db.fetchval("SELECT id FROM push.devices WHERE token = $1", a_token)
    fields = {"m": mid, "d": str(dev), "p": str(user.person_id)}
    await res.redis.xadd(delivery.stream("apns"), fields)  # type: ignore[arg-type]
    await drain(res)
    assert len(apns_received(sim_url, a_token)) == 1


async def test_send_status_is_private_to_the_sender(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth
) -> None:
    r = send(http, business, case_message([user.person_id], channels=["inbox"]))
    other = await clients.create(res, client_id=f"biz-{uuid.uuid4().hex[:8]}", name="其他系统", kind="business")
    assert other.client_secret
    peek = http.get(f"/push/v1/messages/{r.json()['id']}", auth=(other.client.client_id, other.client_secret))
    assert peek.status_code == 404
    portal = await clients.create(res, client_id=f"p-{uuid.uuid4().hex[:8]}", name="门户", kind="portal")
    assert portal.client_secret
    refused = send(http, httpx.BasicAuth(portal.client.client_id, portal.client_secret), case_message([user.person_id]))
    assert refused.status_code == 403
    assert http.post("/push/v1/messages", json=case_message([user.person_id])).status_code == 401


async def test_transient_failure_is_retried_and_delivered_once(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth, sim_url: str
) -> None:
    token, pid = apns_token(), uuid.uuid4()
    await service.register_device(res, str(pid), ApnsDevice(token=token))
    await drain(res)  # nothing else in flight takes the injected failure
    assert httpx.post(f"{sim_url}/apns/_sim/fail", json={"count": 1, "status": 503}).status_code == 200
    mid = send(http, business, case_message([pid], channels=["apns"])).json()["id"]
    await drain(res)
    dev = await res.db.fetchval("SELECT id FROM push.devices WHERE token = $1", token)
    row = await res.db.fetchrow(
        "SELECT status, attempts FROM push.deliveries WHERE message_id = $1 AND device_id = $2", uuid.UUID(mid), dev
    )
    assert row is not None and row["status"] == "retry" and row["attempts"] == 1
    assert apns_received(sim_url, token) == []
    assert await delivery.move_due(res, now=time.time() + 3600) >= 1
    await drain(res)
    row = await res.db.fetchrow(
        "SELECT status, attempts FROM push.deliveries WHERE message_id = $1 AND device_id = $2", uuid.UUID(mid), dev
    )
    assert row is not None and row["status"] == "delivered" and row["attempts"] == 2
    assert len(apns_received(sim_url, token)) == 1


async def test_throttling_pauses_the_channel_and_is_ridden_out(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth, sim_url: str
) -> None:
    tokens = [hms_token() for _ in range(3)]
    people = [uuid.uuid4() for _ in tokens]
    for pid, tok in zip(people, tokens, strict=True):
        await service.register_device(res, str(pid), HmsDevice(token=tok))
    await drain(res)
    httpx.post(f"{sim_url}/hms/_sim/fail", json={"count": 1, "status": 429, "retry_after": 7})
    mid = send(http, business, case_message(people, channels=["hms"])).json()["id"]
    await drain(res)
    assert 0 < await res.redis.pttl(delivery.pause_key("hms")) <= 7000
    await delivery.move_due(res, now=time.time() + 3600)
    await drain(res)
    got = [hms_received(sim_url, t) for t in tokens]
    assert all(len(g) == 1 for g in got)
    assert len({g[0]["request_id"] for g in got}) == 1  # one batched request for the three tokens
    st = status_of(http, business, mid)
    assert {(c["channel"], c["status"], c["count"]) for c in st["counts"]} == {("hms", "delivered", 3)}
    await res.redis.delete(delivery.pause_key("hms"))


async def test_unregistered_token_deactivates_the_device(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth, sim_url: str
) -> None:
    token = apns_token()
    dev = register(http, user, {"platform": "apns", "token": token})
    httpx.post(f"{sim_url}/apns/_sim/unregister", json={"token": token})
    mid = send(http, business, case_message([user.person_id], channels=["apns"])).json()["id"]
    await drain(res)
    listed = http.get("/bff/v1/push/devices", headers=user.headers).json()["items"]
    assert dev["id"] not in {d["id"] for d in listed}
    mine = [d for d in status_of(http, business, mid)["deliveries"] if d["device_id"] == dev["id"]]
    assert mine[0]["status"] == "failed" and mine[0]["error"] == "Unregistered"

    # HarmonyOS: an illegal token in a batch is deactivated, the others are delivered.
    good, bad = hms_token(), hms_token()
    p1, p2 = uuid.uuid4(), uuid.uuid4()
    await service.register_device(res, str(p1), HmsDevice(token=good))
    await service.register_device(res, str(p2), HmsDevice(token=bad))
    httpx.post(f"{sim_url}/hms/_sim/unregister", json={"token": bad})
    send(http, business, case_message([p1, p2], channels=["hms"]))
    await drain(res)
    assert len(hms_received(sim_url, good)) == 1
    assert await res.db.fetchval("SELECT active FROM push.devices WHERE token = $1", bad) is False


async def test_entries_of_a_crashed_consumer_are_claimed_and_delivered_once(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth, sim_url: str
) -> None:
    token, pid = apns_token(), uuid.uuid4()
    await service.register_device(res, str(pid), ApnsDevice(token=token))
    await drain(res)
    send(http, business, case_message([pid], channels=["apns"]))
    await delivery.read_batch(res, delivery.FANOUT, "fanout-1", block_ms=None)
    # Consumer A reads the entries and dies before handling or acknowledging them.
    taken: Any = await res.redis.xreadgroup(delivery.GROUP, "crashed-A", {delivery.stream("apns"): ">"}, count=1000)
    assert taken and taken[0][1]
    assert await delivery.read_batch(res, "apns", "B", block_ms=None) == 0  # nothing new for B
    assert apns_received(sim_url, token) == []
    # B takes over what A left pending.
    assert await delivery.claim_stale(res, "apns", "B", min_idle_ms=0) >= 1
    assert len(apns_received(sim_url, token)) == 1
    assert await delivery.claim_stale(res, "apns", "B", min_idle_ms=0) == 0
    pending: Any = await res.redis.xpending(delivery.stream("apns"), delivery.GROUP)
    assert pending["pending"] == 0
    assert len(apns_received(sim_url, token)) == 1


async def test_sms_channel_and_dead_letters(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str
) -> None:
    from push.models import SmsDevice

    pid, phone = uuid.uuid4(), "13800138" + f"{secrets.randbelow(1000):03d}"
    await service.register_device(res, str(pid), SmsDevice(phone=phone))
    await drain(res)
    body = {
        "audience": {"type": "users", "user_ids": [str(pid)]},
        "content": {
            "template": "appointment_reminder",
            "params": {"service": "身份证换领", "time": "5月3日 9:30", "place": "苏州市公安局"},
        },
        "channels": ["sms"],
    }
    send(http, business, body)
    await drain(res)
    outbox = httpx.get(f"{sim_url}/sms/_sim/outbox", params={"phone": phone}).json()["items"]
    assert outbox[0]["template"] == "SZT_PUSH_APPOINTMENT_REMINDER" and outbox[0]["params"]["service"] == "身份证换领"

    # An outage longer than every retry: the pair ends in the dead-letter stream, sent never.
    httpx.post(f"{sim_url}/sms/_sim/fail", json={"count": 100, "status": 500, "phone": phone})
    mid = send(http, business, body).json()["id"]
    await drain(res)
    for _ in range(delivery.MAX_ATTEMPTS):
        await delivery.move_due(res, now=time.time() + 86_400)
        await drain(res)
    row = await res.db.fetchrow(
        "SELECT status, attempts, error FROM push.deliveries WHERE message_id = $1", uuid.UUID(mid)
    )
    assert row is not None and row["status"] == "failed" and row["attempts"] == delivery.MAX_ATTEMPTS
    assert "dead-lettered" in row["error"]
    dead: Any = await res.redis.xrevrange(delivery.dead("sms"), count=20)
    assert any(f[b"m"].decode() == mid for _, f in dead)
    httpx.post(f"{sim_url}/sms/_sim/fail", json={"count": 0, "phone": phone})


async def test_segment_broadcast_and_scheduled_send(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str
) -> None:
    tag = f"t{secrets.token_hex(4)}"
    inside, outside = hms_token(), hms_token()
    p_in, p_out = uuid.uuid4(), uuid.uuid4()
    await service.register_device(res, str(p_in), HmsDevice(token=inside, region="320500", tags=[tag]))
    await service.register_device(res, str(p_out), HmsDevice(token=outside, region="320100", tags=[tag]))
    await drain(res)
    body = {
        "audience": {"type": "segment", "region": "320500", "tags": [tag]},
        "content": {"template": "broadcast", "params": {"title": "防诈提醒", "body": "警惕冒充公检法电话诈骗。"}},
        "send_at": "2099-01-01T00:00:00Z",
    }
    r = send(http, business, body)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "send_at"
    body["send_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    mid = send(http, business, body).json()["id"]
    await drain(res)
    assert hms_received(sim_url, inside) == []  # not yet due
    await delivery.move_due(res, now=time.time() + 7200)
    await drain(res)
    assert len(hms_received(sim_url, inside)) == 1
    assert hms_received(sim_url, outside) == []
    assert (
        await res.db.fetchval(
            "SELECT count(*) FROM push.inbox WHERE message_id = $1 AND person_id = $2", uuid.UUID(mid), p_in
        )
        == 1
    )


async def test_inbox_unread_and_mark_read(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth
) -> None:
    mid = send(http, business, case_message([user.person_id], channels=["inbox"])).json()["id"]
    await drain(res)
    page = http.get("/bff/v1/messages", params={"limit": 50}, headers=user.headers).json()
    item = next(i for i in page["items"] if i["id"] == mid)
    assert item["title"] == "办件进度通知" and item["read"] is False
    before = http.get("/bff/v1/messages/unread-count", headers=user.headers).json()["unread"]
    assert before >= 1
    assert http.post(f"/bff/v1/messages/{mid}/read", headers=user.headers).status_code == 204
    after = http.get("/bff/v1/messages/unread-count", headers=user.headers).json()["unread"]
    assert after == before - 1
    assert http.post(f"/bff/v1/messages/{uuid.uuid4()}/read", headers=user.headers).status_code == 404
    # Cursor paging: one at a time reaches every message, newest first, without repeats.
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        p = http.get("/bff/v1/messages", params=params, headers=user.headers).json()
        seen += [i["id"] for i in p["items"]]
        cursor = p["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and mid in seen
    bad = http.get("/bff/v1/messages", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=user.headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cursor"


async def test_send_validation_names_the_field(http: httpx.Client, business: httpx.BasicAuth) -> None:
    too_many = case_message([uuid.uuid4() for _ in range(1001)])
    r = send(http, business, too_many)
    assert r.status_code == 400 and "user_ids" in r.json()["errors"][0]["field"]
    unknown = {**case_message([uuid.uuid4()]), "content": {"template": "nope", "params": {}}}
    r = send(http, business, unknown)
    assert r.status_code == 400 and "content" in r.json()["errors"][0]["field"]
    missing = {**case_message([uuid.uuid4()]), "content": {"template": "case_status", "params": {"case_no": "1"}}}
    r = send(http, business, missing)
    assert r.status_code == 400 and "params" in r.json()["errors"][0]["field"]


async def test_worker_loops_deliver_and_ride_out_an_outage(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str
) -> None:
    """The consumers `szt worker` runs (push.jobs), started in this process, with the delayed-entry mover."""
    import asyncio

    from core.worker import CONSUMERS, SCHEDULED
    from push import jobs

    names = {n for n, _ in CONSUMERS}
    assert {"push-fanout", "push-apns", "push-hms", "push-sms"} <= names
    assert {"push-delayed", "push-sweep"} <= {s.name for s in SCHEDULED}

    await drain(res)
    people = [uuid.uuid4() for _ in range(20)]
    a_tokens, h_tokens = [], []
    for pid in people:
        a_tokens.append(apns_token())
        h_tokens.append(hms_token())
        await service.register_device(res, str(pid), ApnsDevice(token=a_tokens[-1]))
        await service.register_device(res, str(pid), HmsDevice(token=h_tokens[-1]))
    # An APNs outage for the first five sends, HarmonyOS throttling once.
    httpx.post(f"{sim_url}/apns/_sim/fail", json={"count": 5, "status": 503, "retry_after": 1})
    httpx.post(f"{sim_url}/hms/_sim/fail", json={"count": 1, "status": 429, "retry_after": 1})
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(delivery.run_consumer(res, ch, f"loop-{ch}", stop))
        for ch in (delivery.FANOUT, *delivery.PROVIDER_CHANNELS)
    ]

    async def mover() -> None:
        while not stop.is_set():
            await jobs.move_delayed(res)
            await asyncio.sleep(0.2)

    tasks.append(asyncio.create_task(mover()))
    try:
        mid = send(http, business, case_message(people, channels=["apns", "hms"])).json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = status_of(http, business, mid)["counts"]
            if {(c["channel"], c["status"]) for c in counts} == {("apns", "delivered"), ("hms", "delivered")}:
                break
            await asyncio.sleep(0.3)
        assert {(c["channel"], c["status"], c["count"]) for c in counts} == {
            ("apns", "delivered", 20),
            ("hms", "delivered", 20),
        }
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert all(len(apns_received(sim_url, t)) == 1 for t in a_tokens)
    assert all(len(hms_received(sim_url, t)) == 1 for t in h_tokens)


async def test_a_crash_mid_broadcast_loses_and_doubles_nothing(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str
) -> None:
    """1000 users x (APNs + HarmonyOS): consumer A dies holding unacknowledged entries; B finishes the job."""
    n = 1000
    tag = f"crash{secrets.token_hex(3)}"
    await drain(res)
    people = [uuid.uuid4() for _ in range(n)]
    a_tokens = [apns_token() for _ in range(n)]
    h_tokens = [hms_token() for _ in range(n)]
    await res.db.execute(
        """INSERT INTO push.devices (id, person_id, platform, token, region, tags)
           SELECT gen_random_uuid(), p, pl, t, '320500', ARRAY[$4]
           FROM unnest($1::uuid[] || $1::uuid[], $2::text[] || $3::text[],
                       array_fill('apns'::text, ARRAY[$5::int]) || array_fill('hms'::text, ARRAY[$5::int]))
                AS x (p, t, pl)""",
        people,
        a_tokens,
        h_tokens,
        tag,
        n,
    )
    before_a = httpx.get(f"{sim_url}/apns/_sim/received", params={"token": a_tokens[0]}).json()["total"]
    before_h = httpx.get(f"{sim_url}/hms/_sim/received", params={"token": h_tokens[0]}).json()["total"]
    body = {
        "audience": {"type": "segment", "tags": [tag]},
        "content": {"template": "broadcast", "params": {"title": "停电通知", "body": "今晚 22:00 系统维护。"}},
        "channels": ["apns", "hms", "inbox"],
    }
    mid = send(http, business, body).json()["id"]
    await delivery.read_batch(res, delivery.FANOUT, "A", block_ms=None)
    # A delivers one APNs batch (entries of up to ENTRY_PAIRS pairs, a page's worth per channel), then reads more of
    # both channels and dies before handling them.
    assert 0 < await delivery.read_batch(res, "apns", "A", block_ms=None) <= delivery.BATCH["apns"]
    for ch in ("apns", "hms"):
        await res.redis.xreadgroup(delivery.GROUP, "A", {delivery.stream(ch): ">"}, count=3)
    # B starts: takes over what A left pending, then works through the rest.
    for ch in ("apns", "hms"):
        assert await delivery.claim_stale(res, ch, "B", min_idle_ms=0) > 0
    await drain(res)
    after_a = httpx.get(f"{sim_url}/apns/_sim/received", params={"token": a_tokens[0]}).json()["total"]
    after_h = httpx.get(f"{sim_url}/hms/_sim/received", params={"token": h_tokens[0]}).json()["total"]
    assert after_a - before_a == n and after_h - before_h == n  # every device once: nothing lost, nothing doubled
    for i in range(0, n, 97):
        assert len(apns_received(sim_url, a_tokens[i])) == 1 and len(hms_received(sim_url, h_tokens[i])) == 1
    counts = status_of(http, business, mid)["counts"]
    assert {(c["channel"], c["status"], c["count"]) for c in counts} == {
        ("apns", "delivered", n),
        ("hms", "delivered", n),
    }
    assert await res.db.fetchval("SELECT count(*) FROM push.inbox WHERE message_id = $1", uuid.UUID(mid)) == n


async def test_open_app_hears_of_new_messages_by_server_sent_events(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth, base_url: str
) -> None:
    import asyncio
    import json

    async def events() -> list[tuple[str, dict[str, Any]]]:
        got: list[tuple[str, dict[str, Any]]] = []
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=20) as client,
            client.stream("GET", "/bff/v1/messages/events", headers=user.headers) as r,
        ):
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    got.append((event, json.loads(line[5:])))
                    if event == "unread":
                        opened.set()
                    if event == "message":
                        return got
        return got

    opened = asyncio.Event()
    listener = asyncio.create_task(events())
    await asyncio.wait_for(opened.wait(), 10)
    mid = send(http, business, case_message([user.person_id], channels=["inbox"])).json()["id"]
    await drain(res)
    got = await asyncio.wait_for(listener, 10)
    assert got[0][0] == "unread"
    assert got[-1][0] == "message" and got[-1][1]["id"] == mid
    assert got[-1][1]["unread"] == got[0][1]["unread"] + 1


def test_quiet_hours_move_a_send_to_their_end() -> None:
    import datetime as dt

    from push.models import QuietHours

    night = QuietHours(start="22:00", end="07:00")
    at = dt.datetime(2026, 5, 1, 15, 30, tzinfo=dt.UTC)  # 23:30 in Beijing
    assert service.after_quiet_hours(at, night) == dt.datetime(2026, 5, 1, 23, 0, tzinfo=dt.UTC)  # 07:00 next day
    early = dt.datetime(2026, 5, 1, 21, 0, tzinfo=dt.UTC)  # 05:00 in Beijing
    assert service.after_quiet_hours(early, night) == dt.datetime(2026, 5, 1, 23, 0, tzinfo=dt.UTC)
    day = dt.datetime(2026, 5, 1, 4, 0, tzinfo=dt.UTC)  # 12:00 in Beijing
    assert service.after_quiet_hours(day, night) == day
    lunch = QuietHours(start="12:00", end="13:30")
    assert service.after_quiet_hours(day, lunch) == dt.datetime(2026, 5, 1, 5, 30, tzinfo=dt.UTC)


async def test_pairs_left_sending_by_a_dead_worker_are_resent_without_doubling(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str
) -> None:
    """A worker claimed three pairs and died during the provider calls, which did reach APNs and the SMS gateway
    (the worst case). Taken back, the APNs re-send collapses on the device; the SMS one is answered by a lookup."""
    from push.models import SmsDevice
    from push.providers import SmsClient

    pid, live_pid = uuid.uuid4(), uuid.uuid4()
    token, live_token = apns_token(), apns_token()
    phone = f"139{secrets.randbelow(10**8):08d}"
    await service.register_device(res, str(pid), ApnsDevice(token=token))
    await service.register_device(res, str(pid), SmsDevice(phone=phone))
    await service.register_device(res, str(live_pid), ApnsDevice(token=live_token))
    await drain(res)
    mid = uuid.UUID(send(http, business, case_message([pid, live_pid], channels=["apns", "sms"])).json()["id"])
    await delivery.read_batch(res, delivery.FANOUT, "A", block_ms=None)
    devs = {
        r["token"] or "sms": r
        for r in await res.db.fetch("SELECT * FROM push.devices WHERE person_id = ANY($1)", [pid, live_pid])
    }
    # The dead worker's entries were taken over by a live consumer, which skips pairs still 'sending'.
    for ch in ("apns", "sms"):
        await res.redis.xreadgroup(delivery.GROUP, "A", {delivery.stream(ch): ">"}, count=10)
    await repo.claim(res.db, [(mid, devs[token]["id"], pid, "apns"), (mid, devs["sms"]["id"], pid, "sms")], "gone:1")
    await repo.claim(res.db, [(mid, devs[live_token]["id"], live_pid, "apns")], "alive:2")
    await res.redis.set("worker:heartbeat:alive:2", "1", ex=60)
    msg = (await repo.messages_by_id(res.db, [mid]))[0]
    note = delivery._notification(msg)
    p = delivery.providers(res)
    assert (await p.apns.send(token, note, providers_apns_id(mid, devs[token]["id"]))).kind == "delivered"
    sms = SmsClient(res.settings, res.http)
    out_id = providers_apns_id(mid, devs["sms"]["id"]).replace("-", "")
    assert (await sms.send(phone, note, out_id=out_id)).kind == "delivered"
    for ch in ("apns", "sms"):
        assert await delivery.claim_stale(res, ch, "B", min_idle_ms=0) >= 1
    await drain(res)
    assert len(apns_received(sim_url, token)) == 1
    assert await delivery.recover_stale_sending(res, older_than=60) == 0  # not stale yet
    await res.db.execute(
        "UPDATE push.deliveries SET claimed_at = now() - interval '5 minutes' WHERE message_id = $1", mid
    )
    assert await delivery.recover_stale_sending(res, older_than=60) == 2  # the live worker's pair stays its own
    await drain(res)
    assert len(apns_received(sim_url, token)) == 1  # re-sent with the same apns-collapse-id: the device shows one
    outbox = httpx.get(f"{sim_url}/sms/_sim/outbox", params={"phone": phone}).json()["items"]
    assert len(outbox) == 1  # the gateway said it had sent it; not sent again
    rows = {r["device_id"]: r for r in await res.db.fetch("SELECT * FROM push.deliveries WHERE message_id = $1", mid)}
    assert rows[devs[token]["id"]]["status"] == "delivered" and rows[devs["sms"]["id"]]["status"] == "delivered"
    assert rows[devs["sms"]["id"]]["provider_id"] == outbox[0]["message_id"]
    assert rows[devs[live_token]["id"]]["status"] == "sending"
    await res.redis.delete("worker:heartbeat:alive:2")


def providers_apns_id(m: uuid.UUID, d: uuid.UUID) -> str:
    from push.providers import apns_id_for

    return apns_id_for(str(m), str(d))


async def test_fan_out_resumes_where_a_crashed_consumer_stopped(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "FANOUT_PAGE", 2)
    tag = f"resume{secrets.token_hex(3)}"
    tokens = [hms_token() for _ in range(5)]
    for tok in tokens:
        await service.register_device(res, str(uuid.uuid4()), HmsDevice(token=tok, tags=[tag]))
    await drain(res)
    body = {
        "audience": {"type": "segment", "tags": [tag]},
        "content": {"template": "broadcast", "params": {"title": "通知", "body": "续传测试"}},
        "channels": ["hms"],
    }
    mid = uuid.UUID(send(http, business, body).json()["id"])
    taken: Any = await res.redis.xreadgroup(delivery.GROUP, "A", {delivery.stream(delivery.FANOUT): ">"}, count=1)
    assert taken and taken[0][1]

    async def crash() -> None:
        raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        await delivery.fan_out(res, mid, crash)  # A queued one page of two devices, then died
    queued = await queued_pairs(res, "hms")
    assert await delivery.claim_stale(res, delivery.FANOUT, "B", min_idle_ms=0) == 1
    assert await queued_pairs(res, "hms") - queued == 3  # B queued only the rest
    await drain(res)
    assert all(len(hms_received(sim_url, t)) == 1 for t in tokens)


async def test_stopping_a_worker_finishes_the_batch_in_flight(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str
) -> None:
    import asyncio

    people = [uuid.uuid4() for _ in range(30)]
    tokens = [apns_token() for _ in people]
    for pid, tok in zip(people, tokens, strict=True):
        await service.register_device(res, str(pid), ApnsDevice(token=tok))
    await drain(res)
    mid = send(http, business, case_message(people, channels=["apns"])).json()["id"]
    await delivery.read_batch(res, delivery.FANOUT, "A", block_ms=None)
    httpx.post(f"{sim_url}/apns/_sim/fail", json={"count": 30, "status": 0, "delay_ms": 800})  # slow answers
    worker = asyncio.create_task(delivery.run_consumer(res, "apns", "stopping"))
    for _ in range(100):  # until the batch is claimed ('sending'): in flight at APNs, whose answers take 0.8 s
        claimed = "SELECT count(*) FROM push.deliveries WHERE message_id = $1 AND status = 'sending'"
        if await res.db.fetchval(claimed, uuid.UUID(mid)):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    worker.cancel()  # what `szt worker` does on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await worker
    st = status_of(http, business, mid)
    assert {(c["channel"], c["status"], c["count"]) for c in st["counts"]} == {("apns", "delivered", 30)}
    assert all(len(apns_received(sim_url, t)) == 1 for t in tokens)


async def test_notify_reaches_inbox_and_every_device_once_per_key(res: Resources, sim_url: str) -> None:
    """The internal entry point of other domains: inbox at once, APNs + HMS after fan-out; a repeat is a no-op."""
    pid = uuid.uuid4()
    a, h = apns_token(), hms_token()
    await service.register_device(res, str(pid), ApnsDevice(token=a))
    await service.register_device(res, str(pid), HmsDevice(token=h))
    await drain(res)
    args: dict[str, Any] = {
        "template": "appointment_reminder",
        "params": {"service": "护照办理", "time": "5月6日 09:30", "place": "苏州市出入境大厅"},
        "source": "affairs",
        "idempotency_key": f"appt-{pid}",
    }
    await service.notify(res, str(pid), **args)
    assert await service.unread(res, str(pid)) == 1  # in the message centre before any worker ran
    await service.notify(res, str(pid), **args)  # a retried job
    await drain(res)
    assert await service.unread(res, str(pid)) == 1
    got = apns_received(sim_url, a)
    assert len(got) == 1 and "护照办理" in got[0]["payload"]["aps"]["alert"]["body"]
    assert len(hms_received(sim_url, h)) == 1
    page = await service.inbox(res, str(pid), None, 10)
    assert [i.template for i in page.items] == ["appointment_reminder"]
    with pytest.raises(ValueError, match="parameter"):
        await service.notify(res, str(pid), template="case_status", params={}, source="affairs", idempotency_key="x")
    with pytest.raises(ValueError, match="unknown"):
        await service.notify(res, str(pid), template="nope", params={}, source="affairs", idempotency_key="y")


async def test_a_failing_sender_leaves_nothing_sending(
    res: Resources, sim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside a channel's sender (here: the provider key registration times out) makes its pairs
    uncertain retries, re-sent as recovered pairs, instead of leaving them claimed forever."""
    pid, token = uuid.uuid4(), hms_token()
    await service.register_device(res, str(pid), HmsDevice(token=token))
    await drain(res)
    real = delivery.SENDERS["hms"]

    async def broken(r: Resources, targets: list[delivery.Target]) -> list[Any]:
        raise httpx.ConnectTimeout("simulated")

    monkeypatch.setitem(delivery.SENDERS, "hms", broken)
    await service.notify(
        res, str(pid), template="alert", params={"title": "t", "body": "b"}, source="tests", idempotency_key="broken"
    )
    await drain(res)
    row = await res.db.fetchrow("SELECT status, recovered FROM push.deliveries WHERE person_id = $1", pid)
    assert row is not None and row["status"] == "retry" and row["recovered"]
    monkeypatch.setitem(delivery.SENDERS, "hms", real)
    await delivery.move_due(res, now=time.time() + 3600)
    await drain(res)
    assert len(hms_received(sim_url, token)) == 1
    assert await res.db.fetchval("SELECT status FROM push.deliveries WHERE person_id = $1", pid) == "delivered"
