"""Helpers for the mini-program tests: simulated WeChat and Alipay users, sign-in and the one-time binding."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from platforms.alipay import ALIPAY_APP_ID
from platforms.wechat import WECHAT_APPID
from tests.identity_helpers import Citizen, capture, pick_citizen


@dataclass
class MiniUser:
    key: str
    subject: str  # WeChat openid / Alipay user_id
    citizen: Citizen
    headers: dict[str, str]


def wx_code(sim_url: str, user: str, *, risky: bool = False) -> dict[str, str]:
    r = httpx.post(f"{sim_url}/wechat/_sim/codes", json={"appid": WECHAT_APPID, "user": user, "risky": risky})
    assert r.status_code == 201, r.text
    minted: dict[str, str] = r.json()
    return minted


def ali_code(sim_url: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{sim_url}/alipay/_sim/codes", json={"app_id": ALIPAY_APP_ID, "user": user})
    assert r.status_code == 201, r.text
    minted: dict[str, str] = r.json()
    return minted


def phone_code(sim_url: str, openid: str, phone: str) -> str:
    r = httpx.post(f"{sim_url}/wechat/_sim/phone-codes", json={"appid": WECHAT_APPID, "openid": openid, "phone": phone})
    assert r.status_code == 201, r.text
    code: str = r.json()["code"]
    return code


def wechat_fail(sim_url: str, api: str, errcode: int, count: int = 1) -> None:
    r = httpx.post(f"{sim_url}/wechat/_sim/fail", json={"api": api, "errcode": errcode, "count": count})
    assert r.status_code == 200, r.text


def wechat_calls(sim_url: str) -> dict[str, int]:
    calls: dict[str, int] = httpx.get(f"{sim_url}/wechat/_sim/calls").json()
    return calls


def bearer_of(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['session']['access_token']}"}


def bind_body(sim_url: str, ticket: str, c: Citizen, *, same_person: bool = True, **extra: str) -> dict[str, str]:
    return {
        "binding_ticket": ticket,
        "name": c.name,
        "id_number": c.id_number,
        "face_capture": capture(sim_url, c.id_number, same_person=same_person),
        **extra,
    }


def wechat_user(http: httpx.Client, sim_url: str, citizen: Citizen | None = None) -> MiniUser:
    """A WeChat user signed in and bound (new to 苏证通 unless `citizen` already enrolled), phone by getPhoneNumber."""
    c = citizen or pick_citizen(sim_url)
    key = "wx-" + secrets.token_hex(6)
    minted = wx_code(sim_url, key)
    r = http.post("/mini/v1/wechat/sessions", json={"code": minted["code"]})
    assert r.status_code == 200 and r.json()["status"] == "binding_required", r.text
    body = bind_body(sim_url, r.json()["binding_ticket"], c, phone_code=phone_code(sim_url, minted["openid"], c.phone))
    b = http.post("/mini/v1/bindings", json=body)
    assert b.status_code == 200, b.text
    return MiniUser(key, minted["openid"], c, bearer_of(b.json()))


def alipay_user(http: httpx.Client, sim_url: str) -> MiniUser:
    """An Alipay user new to 苏证通, bound with a phone verified by SMS."""
    c = pick_citizen(sim_url)
    key = "ali-" + secrets.token_hex(6)
    minted = ali_code(sim_url, key)
    r = http.post("/mini/v1/alipay/sessions", json={"auth_code": minted["auth_code"]})
    assert r.status_code == 200 and r.json()["status"] == "binding_required", r.text
    assert http.post("/mini/v1/sms-codes", json={"phone": c.phone}).status_code == 202
    outbox = httpx.get(f"{sim_url}/sms/_sim/outbox", params={"phone": c.phone}).json()["items"]
    body = bind_body(sim_url, r.json()["binding_ticket"], c, phone=c.phone, sms_code=outbox[0]["params"]["code"])
    b = http.post("/mini/v1/bindings", json=body)
    assert b.status_code == 200, b.text
    return MiniUser(key, minted["user_id"], c, bearer_of(b.json()))
