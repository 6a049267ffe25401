"""Push through the mini-program channels: WeChat subscribe messages spend one-time consents (43101 handled without a
retry storm), Alipay template messages spend form ids; both reach the simulators' outboxes exactly once."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from core.resources import Resources
from identity import clients
from push import delivery
from tests.mini_helpers import MiniUser, alipay_user, wechat_calls, wechat_fail, wechat_user
from tests.push_helpers import drain as drain_all


@pytest.fixture(scope="module")
async def business(res: Resources) -> httpx.BasicAuth:
    made = await clients.create(res, client_id=f"biz-mini-{uuid.uuid4().hex[:8]}", name="办件系统", kind="business")
    assert made.client_secret
    return httpx.BasicAuth(made.client.client_id, made.client_secret)


async def person_of(res: Resources, u: MiniUser) -> uuid.UUID:
    pid: uuid.UUID = await res.db.fetchval(
        "SELECT person_id FROM identity.external_accounts WHERE subject = $1", u.subject
    )
    return pid


def send(http: httpx.Client, auth: httpx.BasicAuth, pid: uuid.UUID, channel: str, case_no: str) -> str:
    body = {
        "audience": {"type": "users", "user_ids": [str(pid)]},
        "content": {"template": "case_status", "params": {"case_no": case_no, "status": "已受理，材料审核中"}},
        "channels": [channel, "inbox"],
    }
    r = http.post("/push/v1/messages", json=body, auth=auth)
    assert r.status_code in (200, 201, 202), r.text
    mid: str = r.json()["id"]
    return mid


async def delivery_of(res: Resources, mid: str, channel: str) -> Any:
    return await res.db.fetchrow(
        "SELECT status, attempts, error FROM push.deliveries WHERE message_id = $1 AND channel = $2",
        uuid.UUID(mid),
        channel,
    )


async def scheduled_retries(res: Resources, mid: str) -> list[str]:
    members: list[Any] = await res.redis.zrange(delivery.DELAYED, 0, -1)
    return [str(m) for m in members if mid in str(m)]


def wechat_outbox(sim_url: str, openid: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{sim_url}/wechat/_sim/outbox", params={"openid": openid}).json()["items"]
    return items


def consent(http: httpx.Client, sim_url: str, u: MiniUser, template_id: str, *, at_wechat: bool = True) -> None:
    """The user taps 允许: WeChat records the quota, the page reports the choice to us."""
    if at_wechat:
        grant = {"openid": u.subject, "template_id": template_id, "count": 1}
        assert httpx.post(f"{sim_url}/wechat/_sim/subscriptions", json=grant).status_code == 200
    r = http.post("/mini/v1/wechat/subscriptions", json={"results": {template_id: "accept"}}, headers=u.headers)
    assert r.status_code == 200, r.text


async def test_a_wechat_subscribe_message_is_delivered_once_per_consent(
    res: Resources, http: httpx.Client, sim_url: str, business: httpx.BasicAuth
) -> None:
    u = wechat_user(http, sim_url)
    pid = await person_of(res, u)
    consent(http, sim_url, u, "tplCaseStatus01")
    await drain(res)
    first = send(http, business, pid, "wechat", "SZ2026-0101")
    await drain(res)
    row = await delivery_of(res, first, "wechat")
    assert row["status"] == "delivered", row
    box = wechat_outbox(sim_url, u.subject)
    assert len(box) == 1
    assert box[0]["template_id"] == "tplCaseStatus01"
    assert box[0]["data"] == {"character_string1": "SZ2026-0101", "thing2": "已受理，材料审核中"}
    assert box[0]["page"] == f"pages/messages/detail?id={first}"
    # The one-time consent is spent: the next message is not sent to WeChat at all (no call, no retry).
    calls = wechat_calls(sim_url).get("subscribe", 0)
    second = send(http, business, pid, "wechat", "SZ2026-0102")
    await drain(res)
    row = await delivery_of(res, second, "wechat")
    assert row["status"] == "failed" and "no subscribe consent" in row["error"]
    assert wechat_calls(sim_url).get("subscribe", 0) == calls
    assert len(wechat_outbox(sim_url, u.subject)) == 1
    inbox = http.get("/bff/v1/messages", headers=u.headers).json()["items"]  # the message centre has both
    assert {i["id"] for i in inbox} >= {first, second}


async def test_43101_is_a_refusal_not_a_retry_storm(
    res: Resources, http: httpx.Client, sim_url: str, business: httpx.BasicAuth
) -> None:
    u = wechat_user(http, sim_url)
    pid = await person_of(res, u)
    consent(http, sim_url, u, "tplCaseStatus01", at_wechat=False)  # we think we may; WeChat holds no quota
    await drain(res)
    calls = wechat_calls(sim_url).get("subscribe", 0)
    mid = send(http, business, pid, "wechat", "SZ2026-0201")
    await drain(res)
    assert not await scheduled_retries(res, mid)
    row = await delivery_of(res, mid, "wechat")
    assert row["status"] == "failed" and row["attempts"] == 1 and row["error"].startswith("43101")
    assert wechat_calls(sim_url)["subscribe"] == calls + 1  # exactly one call
    left = await res.db.fetchval(
        """SELECT remaining FROM push.mini_consents c JOIN push.devices d ON d.id = c.device_id
           WHERE d.token = $1 AND c.template_id = 'tplCaseStatus01'""",
        u.subject,
    )
    assert left == 0  # cleared: the next message is not even tried
    send(http, business, pid, "wechat", "SZ2026-0202")
    await drain(res)
    assert wechat_calls(sim_url)["subscribe"] == calls + 1
    assert wechat_outbox(sim_url, u.subject) == []


async def test_a_busy_wechat_is_retried_with_the_consent_kept(
    res: Resources, http: httpx.Client, sim_url: str, business: httpx.BasicAuth
) -> None:
    u = wechat_user(http, sim_url)
    pid = await person_of(res, u)
    consent(http, sim_url, u, "tplCaseStatus01")
    await drain(res)
    wechat_fail(sim_url, "subscribe", -1)
    mid = send(http, business, pid, "wechat", "SZ2026-0301")
    await drain(res)
    assert (await delivery_of(res, mid, "wechat"))["status"] == "retry"
    assert await delivery.move_due(res, now=time.time() + 3600) >= 1
    await drain(res)
    row = await delivery_of(res, mid, "wechat")
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert len(wechat_outbox(sim_url, u.subject)) == 1


async def test_an_alipay_template_message_spends_one_form_id(
    res: Resources, http: httpx.Client, sim_url: str, business: httpx.BasicAuth
) -> None:
    u = alipay_user(http, sim_url)
    pid = await person_of(res, u)
    form_id = httpx.post(f"{sim_url}/alipay/_sim/form-ids", json={"user_id": u.subject}).json()["form_id"]
    stored = http.post("/mini/v1/alipay/form-ids", json={"form_id": form_id}, headers=u.headers)
    assert stored.status_code == 200 and stored.json() == {"available": 1}
    await drain(res)
    accepted = httpx.get(f"{sim_url}/alipay/_sim/counts").json()["total"]
    mid = send(http, business, pid, "alipay", "SZ2026-0401")
    await drain(res)
    row = await delivery_of(res, mid, "alipay")
    assert row["status"] == "delivered", row
    box = httpx.get(f"{sim_url}/alipay/_sim/outbox", params={"user_id": u.subject}).json()["items"]
    assert len(box) == 1
    assert box[0]["user_template_id"] == "tplAliCaseStatus01"
    assert box[0]["data"] == {"keyword1": {"value": "SZ2026-0401"}, "keyword2": {"value": "已受理，材料审核中"}}
    again = send(http, business, pid, "alipay", "SZ2026-0402")  # the form id is spent
    await drain(res)
    assert (await delivery_of(res, again, "alipay"))["status"] == "failed"
    assert len(httpx.get(f"{sim_url}/alipay/_sim/outbox", params={"user_id": u.subject}).json()["items"]) == 1
    assert httpx.get(f"{sim_url}/alipay/_sim/counts").json()["total"] == accepted + 1  # the platform took one


async def test_a_tampered_alipay_answer_is_never_resent(
    res: Resources, http: httpx.Client, sim_url: str, business: httpx.BasicAuth
) -> None:
    u = alipay_user(http, sim_url)
    pid = await person_of(res, u)
    form_id = httpx.post(f"{sim_url}/alipay/_sim/form-ids", json={"user_id": u.subject}).json()["form_id"]
    http.post("/mini/v1/alipay/form-ids", json={"form_id": form_id}, headers=u.headers)
    await drain(res)
    assert httpx.post(f"{sim_url}/alipay/_sim/fail", json={"count": 1, "mode": "tamper"}).status_code == 200
    mid = send(http, business, pid, "alipay", "SZ2026-0501")
    await drain(res)
    row = await delivery_of(res, mid, "alipay")
    assert row["status"] == "failed" and "unverified" in row["error"]  # Alipay may have sent it: at most once
    assert not await scheduled_retries(res, mid)


async def test_a_retried_consent_report_counts_once(http: httpx.Client, sim_url: str, res: Resources) -> None:
    u = wechat_user(http, sim_url)
    headers = {**u.headers, "Idempotency-Key": "consent-" + u.subject}
    body = {"results": {"tplAppointment01": "accept", "tplNotice01": "reject", "tplOther": "accept"}}
    first = http.post("/mini/v1/wechat/subscriptions", json=body, headers=headers)
    again = http.post("/mini/v1/wechat/subscriptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"items": [{"template_id": "tplAppointment01", "remaining": 1}]}


async def drain(res: Resources) -> None:
    await drain_all(res, (delivery.FANOUT, "wechat", "alipay"), "mini-test")
