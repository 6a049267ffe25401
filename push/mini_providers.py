"""The mini-program message channels: WeChat subscribe messages (subscribeMessage.send) and Alipay mini-program
template messages (alipay.open.app.mini.templatemessage.send, RSA2-signed), over the clients in platforms.wechat
and platforms.alipay.

Each send spends what the user granted first — a one-time subscribe consent (WeChat) or a form id (Alipay) — so a
user without one is never called for (nothing to retry). WeChat's 43101 (refused / no quota left) and Alipay's
FORM_ID_ILLEGAL are permanent failures: the consent is cleared and the pair is never retried, so a refusing user
causes exactly one call, not a retry storm. Transient errors (-1 busy, 45011 quota, 20000, unreachable) give the
consent back and retry through the delivery engine's backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from core.resources import Resources
from platforms.alipay import AlipayGateway
from platforms.errors import UNVERIFIED, AlipayError, WechatError
from platforms.wechat import WechatApi
from push import mini_repo
from push.providers import Notification, Outcome

Fill = Callable[[dict[str, str]], dict[str, str]]


def _cut(value: str, n: int) -> str:
    return value if len(value) <= n else value[: n - 1] + "…"


# push template -> (WeChat template id, title, data by WeChat keyword kinds: thing ≤ 20, character_string ≤ 32, ...)
WECHAT_TEMPLATES: dict[str, tuple[str, str, Fill]] = {
    "case_status": (
        "tplCaseStatus01",
        "办件进度通知",
        lambda p: {"character_string1": _cut(p["case_no"], 32), "thing2": _cut(p["status"], 20)},
    ),
    "appointment_reminder": (
        "tplAppointment01",
        "预约提醒",
        lambda p: {"thing1": _cut(p["service"], 20), "time2": _cut(p["time"], 32), "thing3": _cut(p["place"], 20)},
    ),
    "broadcast": (
        "tplNotice01",
        "通知公告",
        lambda p: {"thing1": _cut(p["title"], 20), "thing2": _cut(p["body"], 20)},
    ),
}
ALIPAY_TEMPLATES: dict[str, tuple[str, Fill]] = {
    "case_status": ("tplAliCaseStatus01", lambda p: {"keyword1": p["case_no"], "keyword2": p["status"]}),
    "appointment_reminder": (
        "tplAliAppointment01",
        lambda p: {"keyword1": p["service"], "keyword2": p["time"], "keyword3": p["place"]},
    ),
    "broadcast": ("tplAliNotice01", lambda p: {"keyword1": p["title"], "keyword2": _cut(p["body"], 100)}),
}
PAGE = "pages/messages/detail?id={message_id}"
RETRY_WECHAT = frozenset({-2, -1, 45011, 45009})


async def _wechat(res: Resources, api: WechatApi, n: Notification, device: Any) -> Outcome:
    template_id, _, fill = WECHAT_TEMPLATES[n.template]
    if not await mini_repo.take_consent(res.db, device["id"], template_id):
        return Outcome("failed", "43101 no subscribe consent left (not sent)")
    try:
        msgid = await api.subscribe_send(
            device["token"], template_id, fill(n.params), PAGE.format(message_id=n.message_id)
        )
    except WechatError as exc:
        reason = f"{exc.errcode} {exc.errmsg}"[:200]
        if exc.errcode == 43101:  # WeChat holds no consent either: stop trying until the user taps 允许 again
            await mini_repo.clear_consent(res.db, device["id"], template_id)
            return Outcome("failed", reason)
        if exc.errcode in RETRY_WECHAT:
            await mini_repo.give_back_consent(res.db, device["id"], template_id)
            return Outcome("retry", reason, 60.0 if exc.errcode == 45011 else None)
        if exc.errcode == 40003:
            return Outcome("invalid", reason)
        return Outcome("failed", reason)
    return Outcome("delivered", provider_id=str(msgid))


async def _alipay(res: Resources, api: AlipayGateway, n: Notification, device: Any) -> Outcome:
    template_id, fill = ALIPAY_TEMPLATES[n.template]
    form_id = await mini_repo.take_form_id(res.db, device["id"])
    if form_id is None:
        return Outcome("failed", "no form id left (not sent)")
    try:
        await api.template_send(
            device["token"], form_id, template_id, PAGE.format(message_id=n.message_id), fill(n.params)
        )
    except AlipayError as exc:
        reason = f"{exc.code} {exc.sub_code} {exc.sub_msg}".strip()[:200]
        if exc.sub_code == UNVERIFIED:  # Alipay may have sent it: never again (at most once)
            return Outcome("failed", reason)
        if exc.code in ("-2", "20000"):
            await mini_repo.give_back_form_id(res.db, form_id)
            return Outcome("retry", reason)
        if exc.sub_code == "TO_USER_ID_ILLEGAL":
            return Outcome("invalid", reason)
        return Outcome("failed", reason)
    return Outcome("delivered", provider_id=form_id)


NOT_RESENT = Outcome("failed", "worker died during the call; not re-sent (the platform takes no idempotency key)")
# Calls in flight per batch: each is one HTTPS request (neither platform has a batch API); bounded so a batch of 100
# pairs holds a few keep-alive connections rather than a hundred, and reaches the platform as a steady flow.
CONCURRENT_CALLS = 8


async def _each(targets: list[Any], send: Callable[[Any], Awaitable[Outcome]]) -> list[Outcome]:
    """`send` for every target, at most CONCURRENT_CALLS at a time, outcomes in the targets' order."""
    gate = asyncio.Semaphore(CONCURRENT_CALLS)

    async def one(t: Any) -> Outcome:
        async with gate:
            return NOT_RESENT if t.recovered else await send(t)

    return list(await asyncio.gather(*(one(t) for t in targets)))


async def _send_wechat(res: Resources, targets: list[Any]) -> list[Outcome]:
    # A pair taken back from a worker that died mid-call may have reached WeChat: closed, never sent twice.
    api = WechatApi(res)
    return await _each(targets, lambda t: _wechat(res, api, t.note, t.device))


async def _send_alipay(res: Resources, targets: list[Any]) -> list[Outcome]:
    api = AlipayGateway(res)
    return await _each(targets, lambda t: _alipay(res, api, t.note, t.device))


CHANNELS = ("wechat", "alipay")


def sender(channel: str) -> Callable[[Resources, list[Any]], Awaitable[list[Outcome]]]:
    """This channel as a push.delivery sender (push.delivery registers both at import)."""
    return _send_wechat if channel == "wechat" else _send_alipay
