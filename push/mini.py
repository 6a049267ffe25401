"""Mini-program addresses of a person (a WeChat openid, an Alipay user id) and what the user granted for messages:
WeChat one-time subscribe consents per template, Alipay form ids. Called by the mini-program front door."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Literal

from core.problems import ProblemError
from core.resources import Resources
from push import mini_repo
from push.mini_providers import WECHAT_TEMPLATES

FORM_ID_DAYS = 7


async def register(res: Resources, person_id: str, platform: Literal["wechat", "alipay"], subject: str) -> None:
    """The person is reachable on this platform by `subject` (called at each mini-program sign-in)."""
    await mini_repo.upsert_address(res.db, uuid.UUID(person_id), platform, subject)


async def _address(res: Resources, person_id: str, platform: str) -> uuid.UUID:
    device_id = await mini_repo.address_of(res.db, uuid.UUID(person_id), platform)
    if device_id is None:
        raise ProblemError(
            409, "no-mini-address", "Sign in with this mini program first", "请先登录该小程序", f"no {platform} address"
        )
    return device_id


def wechat_templates() -> list[tuple[str, str, str]]:
    """(template_id, push template, title) the mini program asks consent for."""
    return [(tid, kind, title) for kind, (tid, title, _) in WECHAT_TEMPLATES.items()]


async def record_wechat_consents(res: Resources, person_id: str, results: Mapping[str, str]) -> list[tuple[str, int]]:
    """Each `accept` of wx.requestSubscribeMessage adds one send for that template; other choices add nothing."""
    known = {tid for tid, _, _ in wechat_templates()}
    accepted = sorted(t for t, choice in results.items() if choice == "accept" and t in known)
    device_id = await _address(res, person_id, "wechat")
    if accepted:
        await mini_repo.add_consents(res.db, device_id, accepted)
    return [(r["template_id"], r["remaining"]) for r in await mini_repo.consents(res.db, device_id)]


async def record_form_id(res: Resources, person_id: str, form_id: str) -> int:
    device_id = await _address(res, person_id, "alipay")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=FORM_ID_DAYS)
    return await mini_repo.add_form_id(res.db, device_id, form_id, expires)
