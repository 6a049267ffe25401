"""Push audiences: person segments from identity (sex, age band, user type), topics, and a fan-out of 20,000
devices whose memory does not grow with the audience."""

from __future__ import annotations

import gc
import secrets
import tracemalloc
import uuid
from typing import Any

import httpx

from core.resources import Resources
from identity import people, segments
from push import delivery, service
from push.models import HmsDevice
from tests import test_push
from tests.push_helpers import drain
from tests.test_push import User, hms_received, hms_token, register, send, status_of

business = test_push.business  # the fixtures of test_push, shared
user = test_push.user


async def _person(res: Resources, gender: str, birth: str) -> uuid.UUID:
    number = f"3205{secrets.randbelow(10**13):013d}X"
    phone = f"139{secrets.randbelow(10**8):08d}"
    async with res.db.acquire() as conn:
        pid, _ = await people.insert(
            res, conn, id_type="resident", id_number=number, name="测试", phone=phone, gender=gender, birth_date=birth
        )
    return uuid.UUID(pid)


async def test_person_segments_by_sex_age_band_and_user_type(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth, sim_url: str
) -> None:
    tag = f"seg{secrets.token_hex(3)}"
    who = {
        "man36": await _person(res, "male", "1990-03-01"),
        "woman26": await _person(res, "female", "2000-06-01"),
        "man76": await _person(res, "male", "1950-01-01"),
        "boss34": await _person(res, "male", "1992-01-01"),
    }
    await res.db.execute(
        "INSERT INTO identity.enterprises (id, uscc, name, representative_id) VALUES ($1, $2, '测试有限公司', $3)",
        uuid.uuid4(),
        f"91320500{secrets.token_hex(5).upper()}",
        who["boss34"],
    )
    tokens = {k: hms_token() for k in who}
    for k, pid in who.items():
        await service.register_device(res, str(pid), HmsDevice(token=tokens[k], tags=[tag]))
    # identity streams person ids: any order of criteria, ascending, in pages.
    pages = [p async for p in segments.person_ids(res, sex="male", age_bands=["30-44"], page=1)]
    assert all(len(p) == 1 for p in pages)
    found = [p[0] for p in pages]
    assert found == sorted(found) and {who["man36"], who["boss34"]} <= set(found) and who["man76"] not in found
    await drain(res)

    def broadcast(**audience: Any) -> str:
        body = {
            "audience": {"type": "segment", "tags": [tag], **audience},
            "content": {"template": "broadcast", "params": {"title": "通知", "body": "分群测试"}},
            "channels": ["hms", "inbox"],
        }
        r = send(http, business, body)
        assert r.status_code == 202, r.text
        mid: str = r.json()["id"]
        return mid

    m1 = broadcast(sex="male", age_bands=["30-44"], user_type="natural")
    m2 = broadcast(user_type="legal")
    m3 = broadcast(age_bands=["18-29", "60+"])
    await drain(res)

    def reached(mid: str) -> set[str]:
        return {
            k for k, t in tokens.items() if any(i["payload"]["data"].find(mid) >= 0 for i in hms_received(sim_url, t))
        }

    assert reached(m1) == {"man36"}
    assert reached(m2) == {"boss34"}
    assert reached(m3) == {"woman26", "man76"}
    assert await service.unread(res, str(who["man76"])) == 1  # the inbox follows the same audience
    bad = send(
        http,
        business,
        {
            "audience": {"type": "segment", "age_bands": ["40-50"]},
            "content": {"template": "broadcast", "params": {"title": "x", "body": "y"}},
        },
    )
    assert bad.status_code == 400 and "age_bands" in bad.json()["errors"][0]["field"]


async def test_topics_subscribe_unsubscribe_and_broadcast(
    res: Resources, http: httpx.Client, user: User, business: httpx.BasicAuth, sim_url: str
) -> None:
    topic = f"traffic.{secrets.token_hex(3)}"
    mine = register(http, user, {"platform": "hms", "token": hms_token()})
    other_pid, other_token = uuid.uuid4(), hms_token()
    other = await service.register_device(res, str(other_pid), HmsDevice(token=other_token))
    url = f"/bff/v1/push/devices/{mine['id']}/topics/{topic}"
    assert http.put(url, headers=user.headers).status_code == 204
    assert http.put(url, headers=user.headers).status_code == 204  # idempotent
    foreign = http.put(f"/bff/v1/push/devices/{other.id}/topics/{topic}", headers=user.headers)
    assert foreign.status_code == 404  # not my device
    assert http.put(f"/bff/v1/push/devices/{mine['id']}/topics/Bad Topic", headers=user.headers).status_code == 400
    await service.subscribe_topic(res, str(other_pid), other.id, topic)
    await drain(res)

    def to_topic(text: str) -> str:
        body = {
            "audience": {"type": "topic", "topic": topic},
            "content": {"template": "broadcast", "params": {"title": "路况", "body": text}},
            "channels": ["hms"],
        }
        mid: str = send(http, business, body).json()["id"]
        return mid

    first = to_topic("G2 苏州段拥堵")
    await drain(res)
    assert len(hms_received(sim_url, mine["token"])) == 1 and len(hms_received(sim_url, other_token)) == 1
    assert http.delete(url, headers=user.headers).status_code == 204
    second = to_topic("已恢复通行")
    await drain(res)
    assert len(hms_received(sim_url, mine["token"])) == 1  # unsubscribed
    assert len(hms_received(sim_url, other_token)) == 2
    assert {c["count"] for c in status_of(http, business, first)["counts"]} == {2}
    assert {c["count"] for c in status_of(http, business, second)["counts"]} == {1}


async def _fan_out_peak(res: Resources, mid: uuid.UUID) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        await delivery.fan_out(res, mid)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


async def test_fan_out_of_20000_devices_streams_in_bounded_memory(
    res: Resources, http: httpx.Client, business: httpx.BasicAuth
) -> None:
    """The fan-out's peak memory is the same for 2,000 and 20,000 recipients: pages, never the audience."""
    small, big = f"s{secrets.token_hex(3)}", f"b{secrets.token_hex(3)}"
    n = 20_000
    async with res.db.acquire() as conn:
        await conn.copy_records_to_table(
            "devices",
            schema_name="push",
            columns=["id", "person_id", "platform", "token", "tags"],
            records=[
                (
                    uuid.uuid4(),
                    uuid.uuid4(),
                    "hms",
                    "IQAAAACy0" + secrets.token_urlsafe(32),
                    [big, small] if i < 2000 else [big],
                )
                for i in range(n)
            ],
        )
    await drain(res)
    mids = []
    for t in (small, big):
        body = {
            "audience": {"type": "segment", "tags": [t]},
            "content": {"template": "broadcast", "params": {"title": "全省通知", "body": "内存测试"}},
            "channels": ["hms", "inbox"],
        }
        mids.append(uuid.UUID(send(http, business, body).json()["id"]))
    # Take the fan-out entries off the stream: this test runs the fan-out itself, under tracemalloc.
    await res.redis.delete(delivery.stream(delivery.FANOUT))
    await delivery.ensure_groups(res)
    peak_small = await _fan_out_peak(res, mids[0])
    peak_big = await _fan_out_peak(res, mids[1])
    assert await test_push.queued_pairs(res, "hms") >= n + 2000
    assert await res.db.fetchval("SELECT count(*) FROM push.inbox WHERE message_id = $1", mids[1]) == n
    assert peak_big < 1.5 * peak_small + 512 * 1024, (peak_small, peak_big)
    assert peak_big < 16 * 1024 * 1024
    await drain(res)
    counts = status_of(http, business, str(mids[1]))["counts"]
    assert counts == [{"channel": "hms", "status": "delivered", "count": n}]
