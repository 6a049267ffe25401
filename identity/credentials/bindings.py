"""Mini-program accounts (WeChat openid, Alipay user id) bound once to a person by a real-name check (name, ID
number and a CTID face capture); afterwards the platform's login alone signs the person in."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Literal

import msgspec

from core import audit
from core.masking import mask_name
from core.redis_client import as_bytes
from core.resources import Resources
from identity import people, sessions
from identity import repo as core_repo
from identity.credentials import repo, sms
from identity.credentials.service import face_check
from identity.errors import conflict, unprocessable
from identity.models import Tokens
from identity.numbers import birth_date_of, gender_of, normalise_id_number, valid_resident_id

Provider = Literal["wechat", "alipay"]
TICKET_TTL = 600
LABELS = {"wechat": "微信小程序", "alipay": "支付宝小程序"}


class ExternalSignIn(msgspec.Struct):
    status: Literal["signed_in", "binding_required"]
    person_id: str = ""
    tokens: Tokens | None = None
    binding_ticket: str = ""
    name_masked: str = ""


class Bound(msgspec.Struct):
    person_id: str
    provider: str
    subject: str
    tokens: Tokens
    name_masked: str
    new_person: bool


def _ticket_key(ticket: str) -> str:
    return "mini:bind:" + hashlib.sha256(ticket.encode()).hexdigest()


def session_key_context(provider: str, subject: str) -> str:
    return f"identity.external.session_key:{provider}:{subject}"


async def sign_in(
    res: Resources,
    *,
    provider: Provider,
    app_id: str,
    subject: str,
    union_id: str = "",
    session_key: str | None = None,
) -> ExternalSignIn:
    """Record the platform login (the WeChat session_key, encrypted) and sign the bound person in, or hand out a
    one-time binding ticket (10 minutes) for the real-name check."""
    key_enc = res.fields.encrypt(session_key, context=session_key_context(provider, subject)) if session_key else None
    row = await repo.upsert_external_account(res.db, uuid.uuid4(), provider, app_id, subject, union_id, key_enc)
    assert row is not None
    if row["person_id"] is None:
        ticket = "bt_" + secrets.token_urlsafe(24)
        await res.redis.set(_ticket_key(ticket), str(row["id"]).encode(), ex=TICKET_TTL)
        return ExternalSignIn(status="binding_required", binding_ticket=ticket)
    person_id = str(row["person_id"])
    person = await people.load(res, person_id)
    tokens = await sessions.create(res, person_id=person_id, device_id=None, acr=provider, label=LABELS[provider])
    return ExternalSignIn(status="signed_in", person_id=person_id, tokens=tokens, name_masked=mask_name(person.name))


async def bind(
    res: Resources,
    *,
    ticket: str,
    name: str,
    id_number: str,
    face_capture: str,
    phone: str | None = None,
    sms_code: str | None = None,
    phone_verified: bool = False,
    ip: str = "",
) -> Bound:
    """Bind the account behind `ticket` to the person named, after the CTID face check. A person not yet known
    to 苏证通 is created; that needs a phone: verified by the platform (`phone_verified`) or by an SMS code."""
    raw = await res.redis.get(_ticket_key(ticket))
    if raw is None:
        raise unprocessable(
            "binding-ticket-invalid",
            "The binding ticket is unknown, used or expired",
            "绑定凭证已失效，请重新登录",
            field="binding_ticket",
        )
    account_id = uuid.UUID(as_bytes(raw).decode())
    number = normalise_id_number(id_number)
    if not valid_resident_id(number):
        raise unprocessable("id-number-invalid", "The ID number is not valid", "证件号码不正确", field="id_number")
    await face_check(res, name=name, id_number=number, capture=face_capture)
    person_id = await core_repo.person_id_by_id_index(res.db, people.id_index(res, "resident", number))
    new_person = person_id is None
    if new_person and phone and not phone_verified:
        if not sms_code:
            raise unprocessable(
                "sms-code-required", "An SMS code for this phone is required", "请输入短信验证码", field="sms_code"
            )
        await sms.check_code(res, phone=phone, purpose="enrol", code=sms_code)
    if new_person and not phone:
        raise unprocessable(
            "phone-required",
            "A phone number is needed to create the 苏证通 account",
            "需要手机号以创建账号",
            "send phone_code (getPhoneNumber) or phone with sms_code",
            field="phone_code",
        )
    async with res.db.acquire() as conn, conn.transaction():
        if person_id is None:
            assert phone is not None
            born = birth_date_of(number)
            try:
                pid, _ = await people.insert(
                    res,
                    conn,
                    id_type="resident",
                    id_number=number,
                    name=name,
                    phone=phone,
                    gender=gender_of(number),
                    birth_date=born.isoformat() if born else "",
                )
            except Exception as exc:
                if type(exc).__name__ == "UniqueViolationError":
                    raise conflict("already-enrolled", "This ID number was just enrolled", "该证件号码已注册") from exc
                raise
            person_id = uuid.UUID(pid)
        bound = await repo.bind_external_account(conn, account_id, person_id)
        if bound is None:
            raise conflict("account-bound", "This account is already bound to another person", "该账号已绑定他人")
        await audit.record(
            conn,
            actor=f"person:{person_id}",
            action="identity.external.bind",
            target=f"{bound['provider']}:{bound['subject']}",
            ip=ip,
            detail={"new_person": new_person},
        )
        tokens = await sessions.create(
            res,
            person_id=str(person_id),
            device_id=None,
            acr=bound["provider"],
            label=LABELS[bound["provider"]],
            conn=conn,
        )
    await res.redis.delete(_ticket_key(ticket))
    return Bound(
        person_id=str(person_id),
        provider=bound["provider"],
        subject=bound["subject"],
        tokens=tokens,
        name_masked=mask_name(name),
        new_person=new_person,
    )


async def phone_matches(res: Resources, person_id: str, phone: str) -> bool:
    person = await people.load(res, person_id)
    return secrets.compare_digest(person.phone, phone)


async def step_up(res: Resources, principal: sessions.Principal, face_capture: str) -> Tokens:
    """A fresh face check of the bound person upgrades a mini-program session (`wechat` → `wechat+face`), for the
    services that need more than the platform's login; the old session ends."""
    if principal.acr not in LABELS:
        raise unprocessable("not-a-mini-session", "Only a mini-program session steps up here", "仅限小程序会话")
    person = await people.load(res, principal.person_id)
    await face_check(res, name=person.name, id_number=person.id_number, capture=face_capture)
    tokens = await sessions.create(
        res, person_id=person.id, device_id=None, acr=f"{principal.acr}+face", label=LABELS[principal.acr]
    )
    await sessions.end(res, person_id=person.id, session_id=principal.session_id, reason="stepped up")
    return tokens
