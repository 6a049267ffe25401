"""Seals: application → review → making → registration → published; suspend/resume, revoke, destroy; who may use them.

Making assigns the unique code (region code + kind digit + 7-digit number + GB/T 17710 MOD 11-2 check character,
e.g. 3205001000004X), draws the impression from the template (or keeps the cleaned upload) and builds the GB/T 38540
SES_Seal listing the bound certificates, signed by the seal-maker's SM2 certificate in the signing server.
Registration files it (the code becomes usable); publishing makes it visible to verifiers and signers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from core import audit, regions
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources
from eseal import ca, impression, keys, logs, repo, sealplatform, ses
from eseal.models import Seal, SealKind, Shape
from identity.facade import check_pin, hash_pin

KIND_DIGIT = {"official": "1", "contract": "2", "finance": "3", "personal": "4"}
PURPOSE = {"official": "", "contract": "合同专用章", "finance": "财务专用章", "personal": ""}
PASSWORD_MIN = 6
LOCK_AFTER = 5
LOCK_FOR = dt.timedelta(minutes=30)
USABLE = ("published",)


def check_char(body: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643's last character."""
    total = sum(int(ch) * (2 ** (len(body) - i) % 11) for i, ch in enumerate(body))
    return "10X98765432"[total % 11]


async def to_model(res: Resources, r: Any) -> Seal:
    certs = await repo.seal_cert_rows(res.db, r["id"])
    return Seal(
        id=r["id"],
        code=r["code"],
        kind=r["kind"],
        name=r["name"],
        org_name=r["org_name"],
        shape=r["shape"],
        status=r["status"],
        valid_from=r["valid_from"],
        valid_to=r["valid_to"],
        cert_serials=[str(c["serial"]) for c in certs if c["serial"] is not None],
        created_at=r["created_at"],
    )


async def _row(res: Resources, seal_id: uuid.UUID) -> Any:
    row = await repo.seal(res.db, seal_id)
    if row is None:
        raise not_found("seal")
    return row


def _not_filing(row: Any) -> None:
    if row["status"] == "filing":
        raise ProblemError(
            409,
            "seal-filing",
            "Seal waiting for filing at the seal platform",
            "印章正在备案，备案完成前不能使用",
            f"{row['code']} is filing: the seal platform has not confirmed its code and filing yet",
            field="seal_code",
        )


def _state(row: Any, *allowed: str) -> None:
    if row["status"] not in allowed:
        raise ProblemError(
            409, "seal-state", "Not allowed in this state", "印章当前状态不允许此操作", f"status {row['status']}"
        )


async def apply(
    res: Resources,
    *,
    kind: SealKind,
    name: str,
    org_name: str,
    shape: Shape = "round",
    upload: bytes | None = None,
    cert_ids: list[uuid.UUID] | None = None,
    region_code: str = regions.PROVINCE_CODE,
    org_path: str = "",
    valid_days: int = 365 * 5,
    applicant: str = "",
    imported: bool = False,
) -> Seal:
    if not name.strip() or len(name) > 40:
        raise invalid("name", "1-40 characters")
    if not org_name.strip() or len(org_name) > 40:
        raise invalid("org_name", "1-40 characters")
    if not (len(region_code) == 6 and region_code.isdigit()):
        raise invalid("region_code", "six digits (GB/T 2260)")
    image = None
    if upload is not None:
        try:
            image = impression.clean_upload(upload)
        except (ValueError, OSError) as exc:
            raise invalid("image", str(exc)) from exc
        shape = "upload"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # whole seconds, as signing times are
    row = await repo.insert_seal(
        res.db,
        id=uuid.uuid4(),
        kind=kind,
        name=name.strip(),
        org_name=org_name.strip(),
        org_path=org_path,
        region_code=region_code,
        shape=shape,
        status="applied",
        image_png=image,
        valid_from=now,
        valid_to=now + dt.timedelta(days=valid_days),
        applicant=applicant,
        imported=imported,
    )
    for cert_id in cert_ids or []:
        await ca.get(res, cert_id)  # 404 for an unknown certificate
        await repo.bind_cert(res.db, row["id"], cert_id)
    await logs.append(res.db, "seal", "apply", actor=applicant, detail={"id": str(row["id"]), "kind": kind})
    return await to_model(res, row)


async def review(res: Resources, seal_id: uuid.UUID, *, approve: bool, reviewer: str, note: str = "") -> Seal:
    row = await _row(res, seal_id)
    _state(row, "applied")
    if row["applicant"] and row["applicant"] == reviewer:  # four-eyes: the applicant never reviews it
        raise ProblemError(
            403, "own-submission", "You cannot review what you submitted", "不能审核本人提交的申请", "four-eyes"
        )
    updated = await repo.update_seal(res.db, seal_id, status="approved" if approve else "rejected")
    await audit.record(
        res.db,
        actor=reviewer,
        action="eseal.seal.review",
        target=str(seal_id),
        detail={"approve": approve, "note": note},
    )
    await logs.append(res.db, "seal", "review", actor=reviewer, detail={"id": str(seal_id), "approve": approve})
    return await to_model(res, updated)


async def make(res: Resources, seal_id: uuid.UUID, *, actor: str = "maker") -> Seal:
    """Code, impression and the signed SES_Seal."""
    row = await _row(res, seal_id)
    _state(row, "approved")
    certs = await repo.seal_cert_rows(res.db, seal_id)
    if not any(c["status"] == "issued" and c["algorithm"] == "SM2" for c in certs):
        raise invalid("cert_ids", "bind at least one issued SM2 signing certificate before making the seal")
    code = row["code"]
    if code is None:
        body = f"{row['region_code']}{KIND_DIGIT[row['kind']]}{await repo.next_seal_number(res.db):07d}"
        code = body + check_char(body)
    image = row["image_png"]
    if image is None or row["shape"] != "upload":
        image = _draw(row, code)
    maker = await _maker(res)
    seal_der = await build_ses_seal(res, row, code, image, certs, maker=maker)
    updated = await repo.update_seal(
        res.db,
        seal_id,
        code=code,
        image_png=image,
        ses_seal=seal_der,
        status="made",
        maker_cert_id=maker["id"],
    )
    await logs.append(res.db, "seal", "make", actor=actor, seal_code=code)
    return await to_model(res, updated)


def _draw(row: Any, code: str) -> bytes:
    if row["kind"] == "personal":
        return impression.render(row["name"], shape="square")
    shape = "oval" if row["shape"] == "oval" else "round"
    return impression.render(row["org_name"], code, shape=shape, purpose=PURPOSE[row["kind"]])


async def _maker(res: Resources) -> Any:
    await ca.ensure_cas(res)
    maker = await repo.certificate_by_applicant(res.db, ca.MAKER)
    assert maker is not None
    return maker


async def build_ses_seal(
    res: Resources, row: Any, code: str, image: bytes, certs: list[Any], *, maker: Any = None
) -> bytes:
    maker = maker if maker is not None else await _maker(res)
    maker_der = bytes(maker["cert_der"])
    size_mm = 20 if row["kind"] == "personal" else 42
    info = ses.seal_info(
        es_id=code,
        kind=row["kind"],
        name=row["name"],
        signer_certs=[bytes(c["cert_der"]) for c in certs if c["cert_der"] is not None],
        picture_png=image,
        width_mm=size_mm,
        height_mm=size_mm if row["shape"] != "oval" else 30,
        valid_start=row["valid_from"],
        valid_end=row["valid_to"],
    )
    signature = await keys.signer(res).sign(maker["key_index"], ses.seal_to_be_signed(info))
    return ses.assemble_seal(info, maker_der, signature)


async def standard_seal(res: Resources, row: Any) -> bytes:
    """The seal's SES_Seal in the GB/T 38540 form. One made before 2026-12-07 (maker's signature in our legacy
    form, see eseal/ses.py) is re-made now — same code, impression and certificates, a fresh maker signature — and
    stored, so every signature from here on carries a seal that outside verifiers accept."""
    der = bytes(row["ses_seal"])
    if not ses.is_legacy_seal(der):
        return der
    certs = await repo.seal_cert_rows(res.db, row["id"])
    der = await build_ses_seal(res, row, row["code"], bytes(row["image_png"]), certs)
    await repo.update_seal(res.db, row["id"], ses_seal=der)
    await logs.append(res.db, "seal", "remake-standard", actor="system", seal_code=row["code"])
    return der


async def register(res: Resources, seal_id: uuid.UUID, *, actor: str) -> Seal:
    """赋码 and 备案 at the seal platform: the seal waits in 'filing' until the platform confirms (at once when it
    answers; else the worker delivers the filing later) and is 'registered' then."""
    row = await _row(res, seal_id)
    _state(row, "made")
    async with res.db.acquire() as conn, conn.transaction():
        updated = await repo.update_seal(conn, seal_id, status="filing")
        await sealplatform.enqueue_filing(conn, updated)  # same key on a retry: filed once
        await logs.append(conn, "seal", "register", actor=actor, seal_code=row["code"])
    await sealplatform.deliver_soon(res, seal_id)
    return await to_model(res, await _row(res, seal_id))


async def publish(res: Resources, seal_id: uuid.UUID, *, actor: str) -> Seal:
    row = await _row(res, seal_id)
    _not_filing(row)
    _state(row, "registered")
    updated = await repo.update_seal(res.db, seal_id, status="published")
    await logs.append(res.db, "seal", "publish", actor=actor, seal_code=row["code"])
    return await to_model(res, updated)


async def _change(res: Resources, seal_id: uuid.UUID, action: str, actor: str, to: str, *allowed: str) -> Seal:
    row = await _row(res, seal_id)
    _state(row, *allowed)
    async with res.db.acquire() as conn, conn.transaction():
        updated = await repo.update_seal(conn, seal_id, status=to)
        seq = await logs.append(conn, "seal", action, actor=actor, seal_code=row["code"] or "")
        filed = row["status"] in ("filing", "registered", "published", "suspended", "revoked")
        if filed:  # the platform hears of it (in order, after the filing)
            await sealplatform.enqueue_status(conn, updated, to, ref=str(seq), reason=action)
    await audit.record(res.db, actor=actor, action=f"eseal.seal.{action}", target=row["code"] or str(seal_id))
    if filed:
        await sealplatform.deliver_soon(res, seal_id)
    return await to_model(res, updated)


async def suspend(res: Resources, seal_id: uuid.UUID, *, actor: str) -> Seal:
    return await _change(res, seal_id, "suspend", actor, "suspended", "published", "registered")


async def resume(res: Resources, seal_id: uuid.UUID, *, actor: str) -> Seal:
    return await _change(res, seal_id, "resume", actor, "published", "suspended")


async def revoke(res: Resources, seal_id: uuid.UUID, *, actor: str) -> Seal:
    return await _change(
        res, seal_id, "revoke", actor, "revoked", "made", "filing", "registered", "published", "suspended"
    )


async def destroy(res: Resources, seal_id: uuid.UUID, *, actor: str) -> Seal:
    """Destroyed seals keep their row (verifiers must still name them) but lose the impression."""
    seal = await _change(res, seal_id, "destroy", actor, "destroyed", "revoked", "suspended", "rejected")
    await repo.update_seal(res.db, seal_id, image_png=None)
    return seal


async def change_impression(res: Resources, seal_id: uuid.UUID, *, upload: bytes | None, actor: str) -> Seal:
    """A new impression (upload, or redrawn from the template) and a re-signed SES_Seal."""
    row = await _row(res, seal_id)
    _state(row, "made", "registered", "published", "suspended")
    if upload is not None:
        try:
            image = impression.clean_upload(upload)
        except (ValueError, OSError) as exc:
            raise invalid("image", str(exc)) from exc
    else:
        image = _draw(row, row["code"])
    seal_der = await build_ses_seal(res, row, row["code"], image, await repo.seal_cert_rows(res.db, seal_id))
    updated = await repo.update_seal(
        res.db, seal_id, image_png=image, ses_seal=seal_der, shape="upload" if upload is not None else row["shape"]
    )
    await logs.append(res.db, "seal", "change-impression", actor=actor, seal_code=row["code"])
    return await to_model(res, updated)


async def bind_certificate(res: Resources, seal_id: uuid.UUID, cert_id: uuid.UUID, *, actor: str) -> Seal:
    row = await _row(res, seal_id)
    await ca.get(res, cert_id)
    await repo.bind_cert(res.db, seal_id, cert_id)
    if row["ses_seal"] is not None:
        certs = await repo.seal_cert_rows(res.db, seal_id)
        await repo.update_seal(
            res.db, seal_id, ses_seal=await build_ses_seal(res, row, row["code"], bytes(row["image_png"]), certs)
        )
    await audit.record(
        res.db, actor=actor, action="eseal.seal.bind-cert", target=str(seal_id), detail={"cert": str(cert_id)}
    )
    return await to_model(res, await _row(res, seal_id))


async def grant(res: Resources, seal_id: uuid.UUID, kind: str, grantee: str, *, actor: str) -> None:
    if kind not in ("user", "app", "cert"):
        raise invalid("grantee_kind", "user, app or cert")
    if not grantee or len(grantee) > 64:
        raise invalid("grantee", "1-64 characters")
    await _row(res, seal_id)
    await repo.grant(res.db, seal_id, kind, grantee)
    await audit.record(
        res.db, actor=actor, action="eseal.seal.grant", target=str(seal_id), detail={"kind": kind, "grantee": grantee}
    )


async def ungrant(res: Resources, seal_id: uuid.UUID, kind: str, grantee: str, *, actor: str) -> None:
    await repo.ungrant(res.db, seal_id, kind, grantee)
    await audit.record(
        res.db, actor=actor, action="eseal.seal.ungrant", target=str(seal_id), detail={"kind": kind, "grantee": grantee}
    )


async def set_password(res: Resources, user_id: str, password: str) -> None:
    if len(password) < PASSWORD_MIN or len(password) > 128 or (password.isdigit() and len(set(password)) == 1):
        raise invalid("password", f"at least {PASSWORD_MIN} characters, not one repeated digit")
    await repo.set_password(res.db, user_id, await hash_pin(password))
    await logs.append(res.db, "seal", "password-set", actor=user_id)


async def check_password(res: Resources, user_id: str, password: str) -> None:
    """Raises a problem unless the user's seal password matches (5 failures lock it for 30 minutes). The attempt is
    counted and the lock decided in one statement before the password is compared (DESIGN: attempt counters)."""
    row = await repo.password_attempt(res.db, user_id, LOCK_AFTER, LOCK_FOR)
    if row is None:
        if await repo.password(res.db, user_id) is None:
            raise ProblemError(403, "seal-password-unset", "No seal password", "未设置印章密码", field="seal_password")
        raise ProblemError(
            423,
            "seal-password-locked",
            "Seal password locked",
            "印章密码已锁定",
            "too many failures; try again later",
            field="seal_password",
        )
    if not await check_pin(password, row["hash"]):
        raise ProblemError(403, "seal-password-wrong", "Wrong seal password", "印章密码错误", field="seal_password")
    await repo.password_ok(res.db, user_id)


async def usable(res: Resources, code: str, *, app_code: str, user_id: str | None, password: str | None) -> Any:
    """The seal row when `app_code` (and, signing for a user, that user with their seal password) may use it."""
    row = await repo.seal_by_code(res.db, code)
    if row is None:
        raise invalid("seal_code", f"no seal {code}")
    _not_filing(row)
    if row["status"] not in USABLE:
        raise ProblemError(
            409, "seal-not-usable", "Seal not usable", "印章不可用", f"{code} is {row['status']}", field="seal_code"
        )
    if row["valid_to"] is not None and row["valid_to"] < dt.datetime.now(dt.UTC):
        raise ProblemError(409, "seal-expired", "Seal expired", "印章已过期", code, field="seal_code")
    if not await repo.granted(res.db, row["id"], "app", app_code):
        raise ProblemError(
            403, "seal-not-granted", "Seal not granted to this app", "该应用无权使用此印章", code, field="seal_code"
        )
    if user_id is not None:
        if not await repo.granted(res.db, row["id"], "user", user_id):
            raise ProblemError(
                403, "seal-not-granted", "Seal not granted to this user", "该用户无权使用此印章", code, field="user_id"
            )
        await check_password(res, user_id, password or "")
    return row


async def get(res: Resources, seal_id: uuid.UUID) -> Seal:
    return await to_model(res, await _row(res, seal_id))


async def image(res: Resources, seal_id: uuid.UUID) -> bytes:
    row = await _row(res, seal_id)
    if row["image_png"] is None:
        raise not_found("seal impression")
    return bytes(row["image_png"])
