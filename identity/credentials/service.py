"""Identity rules: enrolment, device challenges, 网证 lifecycle, PINs, sign-in."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from core import audit
from core.crypto import CryptoError, SM2PublicKey, raw_to_der
from core.db import Executor
from core.masking import mask_name
from core.problems import ProblemError, invalid, not_found
from core.redis_client import as_bytes
from core.resources import Resources
from core.signed import b64u_decode
from identity import people, sessions
from identity import repo as core_repo
from identity.credentials import document as wz
from identity.credentials import pin, repo, sms
from identity.errors import FACE_RESULTS, conflict, forbidden, unprocessable
from identity.externals import CtidClient
from identity.keys import issuer_keys
from identity.models import (
    ChallengeIssued,
    CredentialSignIn,
    CredentialView,
    DeviceInfo,
    Enrolled,
    EnrolmentRequest,
    NewCredentialRequest,
    SmsSignIn,
    Tokens,
)
from identity.numbers import birth_date_of, gender_of, normalise_id_number, valid_exit_entry_number, valid_resident_id

CREDENTIAL_DAYS = 365
CHALLENGE_TTL = 120
STATUS_HASH = "identity:credential-status"  # Redis mirror of credential status, read on every code verification


# ---------------------------------------------------------------- helpers


def parse_device_key(b64: str, field: str = "device.public_key") -> SM2PublicKey:
    try:
        return SM2PublicKey.from_uncompressed(b64u_decode(b64))
    except (CryptoError, ValueError) as exc:
        raise invalid(field, "not an SM2 public key (base64url of 04||X||Y)") from exc


def _signature_der(sig_b64: str) -> bytes:
    try:
        raw = b64u_decode(sig_b64)
    except ValueError as exc:
        raise invalid("signature", "not base64url") from exc
    return raw_to_der(raw) if len(raw) == 64 else raw


async def face_check(res: Resources, *, name: str, id_number: str, capture: str) -> None:
    check = await CtidClient(res.http, res.settings.simulators_url).verify(
        name=name, id_number=id_number, capture=capture
    )
    if check.result != "pass":
        raise FACE_RESULTS.get(check.result) or unprocessable("face-failed", "Face check failed", "人脸核验未通过")


def _view(r: Any, salts: dict[str, str] | None = None) -> CredentialView:
    return CredentialView(
        serial=r["serial"],
        wangha=r["wangha"],
        level=r["level"],
        status=r["status"],
        issued_at=r["issued_at"].isoformat(),
        expires_at=r["expires_at"].isoformat(),
        document=r["document"],
        salts=salts,
    )


async def _set_status_mirror(res: Resources, serial: str, status: str) -> None:
    await res.redis.hset(STATUS_HASH, serial, status)


async def credential_status(res: Resources, serial: str) -> str | None:
    raw = await res.redis.hget(STATUS_HASH, serial)
    if raw is not None:
        return as_bytes(raw).decode()
    status = await repo.credential_status(res.db, serial)
    if status is not None:
        await _set_status_mirror(res, serial, status)
    return status


# ---------------------------------------------------------------- 网证 issue


async def _issue_credential(
    res: Resources, conn: Executor, *, person: people.Person, device_id: str, device_key: SM2PublicKey, level: str
) -> tuple[CredentialView, dict[str, str]]:
    keys = await issuer_keys(res)
    serial = "WZ" + secrets.token_hex(12).upper()
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(days=CREDENTIAL_DAYS)
    salts = wz.new_salts()
    attrs = {
        "name": person.name,
        "id_number": person.id_number,
        "birth_date": person.birth_date,
        "gender": person.gender,
    }
    document = wz.build(
        key=keys.private,
        kid=keys.kid,
        issuer=res.settings.issuer_url,
        serial=serial,
        wangha=person.wangha,
        level=level,
        device_key=device_key,
        attributes=attrs,
        salts=salts,
        issued_at=now,
        expires_at=expires,
    )
    await repo.insert_credential(
        conn,
        serial=serial,
        person_id=uuid.UUID(person.id),
        device_id=uuid.UUID(device_id),
        kid=keys.kid,
        level=level,
        document=document,
        salts_enc=res.fields.encrypt(msgspec.json.encode(salts).decode(), context="identity.credential_salts"),
        issued_at=now,
        expires_at=expires,
    )
    await _set_status_mirror(res, serial, "active")
    view = CredentialView(serial, person.wangha, level, "active", now.isoformat(), expires.isoformat(), document, salts)
    return view, salts


async def _insert_device(conn: Executor, person_id: str, device: DeviceInfo, key: SM2PublicKey) -> str:
    device_id = str(uuid.uuid4())
    try:
        await repo.insert_device(
            conn, uuid.UUID(device_id), uuid.UUID(person_id), key.to_uncompressed(), device.platform, device.name
        )
    except Exception as exc:  # asyncpg.UniqueViolationError: the key is already bound to a device
        if type(exc).__name__ == "UniqueViolationError":
            raise conflict("device-key-in-use", "This device key is already bound", "该设备密钥已被绑定") from exc
        raise
    return device_id


# ---------------------------------------------------------------- enrolment


def _check_id(id_type: str, id_number: str) -> None:
    ok = valid_resident_id(id_number) if id_type == "resident" else valid_exit_entry_number(id_number)
    if not ok:
        raise unprocessable(
            "id-number-invalid",
            "The ID number is not valid",
            "证件号码不正确",
            "checksum, birth date or format does not match the document type",
            field="id_number",
        )


async def enrol(res: Resources, req: EnrolmentRequest, *, ip: str) -> Enrolled:
    id_number = normalise_id_number(req.id_number)
    _check_id(req.id_type, id_number)
    device_key = parse_device_key(req.device.public_key)
    if req.pin is not None and (why := pin.weakness(req.pin)):
        raise unprocessable("pin-weak", "The PIN is too easy to guess", "口令过于简单", why, field="pin")
    if await core_repo.person_id_by_id_index(res.db, people.id_index(res, req.id_type, id_number)) is not None:
        raise conflict(
            "already-enrolled",
            "This ID number is already enrolled",
            "该证件号码已注册",
            "sign in with your phone instead; one person has one 网号",
        )
    # The code is checked now but spent only on success: a failed face check need not cost the citizen a new SMS.
    await sms.check_code(res, phone=req.phone, purpose="enrol", code=req.sms_code, consume=False)
    await face_check(res, name=req.name, id_number=id_number, capture=req.face_capture)
    born = birth_date_of(id_number) if req.id_type == "resident" else None
    pin_hash = await pin.hash_pin(req.pin) if req.pin else None
    async with res.db.acquire() as conn, conn.transaction():
        try:
            person_id, wangha = await people.insert(
                res,
                conn,
                id_type=req.id_type,
                id_number=id_number,
                name=req.name,
                phone=req.phone,
                gender=gender_of(id_number),
                birth_date=born.isoformat() if born else "",
            )
        except Exception as exc:
            if type(exc).__name__ == "UniqueViolationError":  # a concurrent enrolment of the same number won
                raise conflict("already-enrolled", "This ID number is already enrolled", "该证件号码已注册") from exc
            raise
        device_id = await _insert_device(conn, person_id, req.device, device_key)
        person = await people.load(res, person_id, conn)
        view, _ = await _issue_credential(
            res, conn, person=person, device_id=device_id, device_key=device_key, level="L3"
        )
        if pin_hash:
            await repo.insert_pin(conn, uuid.UUID(person_id), pin_hash)
        acr = "wz+face"
        tokens = await sessions.create(
            res,
            person_id=person_id,
            device_id=device_id,
            acr=acr,
            label=req.device.name or req.device.platform,
            conn=conn,
        )
        await sms.consume_code(res, phone=req.phone, purpose="enrol")
        await audit.record(
            conn,
            actor=f"person:{person_id}",
            action="identity.enrol",
            target=wangha,
            ip=ip,
            detail={"credential": view.serial, "device": device_id},
        )
    return Enrolled(wangha=wangha, credential=view, session=tokens, name_masked=mask_name(req.name))


# ---------------------------------------------------------------- challenges and sign-in


async def new_challenge(res: Resources) -> ChallengeIssued:
    challenge_id = secrets.token_hex(16)
    challenge = "szt-challenge:" + secrets.token_urlsafe(24)
    await res.redis.set(f"chal:{challenge_id}", challenge.encode(), ex=CHALLENGE_TTL)
    return ChallengeIssued(challenge_id, challenge, CHALLENGE_TTL)


async def _consume_challenge(res: Resources, challenge_id: str) -> bytes:
    key = f"chal:{challenge_id}"
    async with res.redis.pipeline(transaction=True) as pipe:
        pipe.get(key)
        pipe.delete(key)
        value, _ = await pipe.execute()
    if value is None:
        raise unprocessable(
            "challenge-expired", "The challenge is unknown, used or expired", "挑战码已失效", field="challenge_id"
        )
    return bytes(value)


async def sign_in_sms(res: Resources, req: SmsSignIn) -> Tokens:
    await sms.check_code(res, phone=req.phone, purpose="sign_in", code=req.sms_code)
    found = await core_repo.person_id_by_phone_index(
        res.db, res.fields.blind_index(req.phone, context="identity.phone")
    )
    if found is None:
        raise ProblemError(
            404, "not-enrolled", "No enrolled person has this phone", "该手机号未注册", "enrol first", field="phone"
        )
    return await sessions.create(
        res, person_id=str(found), device_id=None, acr="sms", label=req.device_name or "new device"
    )


async def _check_pin(res: Resources, person_id: str, given: str) -> None:
    """Counts the attempt and decides on the lock in one statement before the PIN is compared, so a concurrent
    burst of guesses is judged like the same guesses in sequence (DESIGN: attempt counters)."""
    pid = uuid.UUID(person_id)
    row = await repo.pin_attempt(res.db, pid, pin.MAX_FAILURES, pin.LOCK_MINUTES)
    if row is None:
        lock = await repo.pin_lock(res.db, pid)
        if lock is None:
            raise unprocessable("pin-not-set", "No PIN is set", "尚未设置口令", field="pin")
        until = lock["locked_until"]
        raise forbidden(
            "pin-locked",
            "Too many wrong PINs: locked for a while",
            "口令错误次数过多，已锁定",
            f"locked until {until.isoformat()}" if until else "locked",
        )
    if await pin.check_pin(given, row["hash"]):
        await repo.pin_ok(res.db, pid)
        return
    failures = row["failures"]
    raise unprocessable(
        "pin-wrong",
        "The PIN is wrong",
        "口令错误",
        f"locked for {pin.LOCK_MINUTES} minutes"
        if failures >= pin.MAX_FAILURES
        else f"{pin.MAX_FAILURES - failures} tries left",
        field="pin",
    )


async def sign_in_credential(res: Resources, req: CredentialSignIn) -> Tokens:
    challenge = await _consume_challenge(res, req.challenge_id)
    row = await repo.credential_for_sign_in(res.db, req.serial)
    if row is None:
        raise not_found("credential")
    if row["status"] != "active" or row["expires_at"] <= datetime.now(UTC):
        raise forbidden(
            f"credential-{row['status'] if row['status'] != 'active' else 'expired'}",
            "The 网证 is not usable",
            "网证不可用",
            f"status: {row['status']}",
        )
    device_key = SM2PublicKey.from_uncompressed(bytes(row["public_key"]))
    if not device_key.verify(_signature_der(req.signature), challenge):
        raise unprocessable(
            "device-proof-failed", "The device signature does not verify", "设备签名验证失败", field="signature"
        )
    person_id = str(row["person_id"])
    factors = ["wz"]
    if req.pin is not None:
        await _check_pin(res, person_id, req.pin)
        factors.append("pin")
    if req.face_capture is not None:
        person = await people.load(res, person_id)
        await face_check(res, name=person.name, id_number=person.id_number, capture=req.face_capture)
        factors.append("face")
    await repo.device_seen(res.db, row["device_id"])
    return await sessions.create(
        res,
        person_id=person_id,
        device_id=str(row["device_id"]),
        acr="+".join(factors),
        label=row["name"] or row["platform"],
    )


# ---------------------------------------------------------------- 网证 lifecycle


async def issue_for_new_device(
    res: Resources, principal: sessions.Principal, req: NewCredentialRequest, *, ip: str
) -> CredentialView:
    """A signed-in person binds this device: proof of the device key plus a fresh face check."""
    device_key = parse_device_key(req.device.public_key)
    challenge = await _consume_challenge(res, req.challenge_id)
    if not device_key.verify(_signature_der(req.signature), challenge):
        raise unprocessable(
            "device-proof-failed", "The device signature does not verify", "设备签名验证失败", field="signature"
        )
    person = await people.load(res, principal.person_id)
    await face_check(res, name=person.name, id_number=person.id_number, capture=req.face_capture)
    async with res.db.acquire() as conn, conn.transaction():
        device_id = await _insert_device(conn, person.id, req.device, device_key)
        view, _ = await _issue_credential(
            res, conn, person=person, device_id=device_id, device_key=device_key, level="L3"
        )
        await audit.record(
            conn,
            actor=f"person:{person.id}",
            action="identity.credential.issue",
            target=view.serial,
            ip=ip,
            detail={"device": device_id},
        )
    return view


async def my_credentials(res: Resources, person_id: str) -> list[CredentialView]:
    rows = await repo.credentials_of(res.db, uuid.UUID(person_id))
    return [_view(r) for r in rows]


_TRANSITIONS = {"suspend": ("active", "suspended"), "resume": ("suspended", "active"), "revoke": (None, "revoked")}


def has_face(acr: str) -> bool:
    return "face" in acr.split("+")


async def _face_for_resume(res: Resources, person_id: str, acr: str | None, capture: str | None) -> str:
    """How the holder proved their face for a resume: `session` (signed in with face) or `capture` (checked now).
    An SMS or plain 网证 session is not enough: with a stolen phone and its SIM, that is the thief."""
    if acr is not None and has_face(acr):
        return "session"
    if capture is None:
        raise forbidden(
            "step-up-required",
            "Resuming a 网证 needs a face check",
            "恢复网证需要人脸核验",
            "sign in with face, or send face_capture",
        )
    person = await people.load(res, person_id)
    await face_check(res, name=person.name, id_number=person.id_number, capture=capture)
    return "capture"


async def change_status(
    res: Resources,
    *,
    serial: str,
    action: str,
    actor: str,
    person_id: str | None,
    reason: str,
    ip: str,
    acr: str | None = None,
    face_capture: str | None = None,
) -> CredentialView:
    """Suspend (lost phone), resume or revoke a 网证. `person_id` limits it to the holder's own credentials; the holder
    resumes only with a face check (`acr` with face, or `face_capture` checked now)."""
    source, target = _TRANSITIONS[action]
    detail: dict[str, str] = {"reason": reason}
    if action == "resume" and person_id is not None:
        row = await repo.credential_for_sign_in(res.db, serial)  # checked again under the row lock below
        if row is None or str(row["person_id"]) != person_id:
            raise not_found("credential")
        if row["status"] != source:
            raise conflict("credential-state", f"Cannot {action} a {row['status']} 网证", "网证当前状态不允许该操作")
        detail["face"] = await _face_for_resume(res, person_id, acr, face_capture)
        detail["acr"] = acr or ""
    async with res.db.acquire() as conn, conn.transaction():
        row = await repo.lock_credential(conn, serial)
        if row is None or (person_id is not None and str(row["person_id"]) != person_id):
            raise not_found("credential")
        if row["status"] == "revoked" or (source is not None and row["status"] != source):
            raise conflict("credential-state", f"Cannot {action} a {row['status']} 网证", "网证当前状态不允许该操作")
        updated = await repo.set_credential_status(conn, serial, target, reason)
        await audit.record(
            conn, actor=actor, action=f"identity.credential.{action}", target=serial, ip=ip, detail=detail
        )
    await _set_status_mirror(res, serial, target)
    if target != "active":
        await sessions.end_for_device(res, str(row["device_id"]), f"credential {target}")
    assert updated is not None
    return _view({**dict(updated.items()), "wangha": row["wangha"]})


async def renew(res: Resources, principal: sessions.Principal, serial: str, *, ip: str) -> CredentialView:
    """A fresh 网证 for the same device (new serial and validity); the old one is revoked as replaced."""
    async with res.db.acquire() as conn, conn.transaction():
        row = await repo.lock_own_credential(conn, serial, uuid.UUID(principal.person_id))
        if row is None:
            raise not_found("credential")
        if row["status"] != "active":
            raise conflict("credential-state", "Only an active 网证 can be renewed", "只有有效的网证可以续期")
        person = await people.load(res, principal.person_id, conn)
        view, _ = await _issue_credential(
            res,
            conn,
            person=person,
            device_id=str(row["device_id"]),
            device_key=SM2PublicKey.from_uncompressed(bytes(row["public_key"])),
            level=row["level"],
        )
        await repo.revoke_renewed(conn, serial, view.serial)
        await audit.record(
            conn,
            actor=f"person:{person.id}",
            action="identity.credential.renew",
            target=serial,
            ip=ip,
            detail={"replaced_by": view.serial},
        )
    await _set_status_mirror(res, serial, "revoked")
    return view


async def set_pin(res: Resources, principal: sessions.Principal, new_pin: str, old_pin: str | None, *, ip: str) -> None:
    if why := pin.weakness(new_pin):
        raise unprocessable("pin-weak", "The PIN is too easy to guess", "口令过于简单", why, field="pin")
    exists = await repo.pin_exists(res.db, uuid.UUID(principal.person_id))
    if exists:
        if old_pin is None:
            raise invalid("old_pin", "give the current PIN to change it")
        await _check_pin(res, principal.person_id, old_pin)
    hashed = await pin.hash_pin(new_pin)
    await repo.upsert_pin(res.db, uuid.UUID(principal.person_id), hashed)
    await audit.record(res.db, actor=f"person:{principal.person_id}", action="identity.pin.set", ip=ip)
