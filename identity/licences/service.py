"""My e-licences (电子证照): the ID card from identity's own record, the driving licence and residence permit from the
provincial e-licence library; 亮证 presentations with a short-lived SM2-signed verification QR; verification by
verifier clients and by app users who staff one; the home screen's document-expiry reminders.

QR payload: ``"SZL1." + signed.sign_document(issuer key, {typ, kid, jti, knd, exp})`` — no personal data; the
holder is resolved from ``jti`` (a row of identity.licence_presentations) only after the signature checks out.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any, Literal

import httpx
import msgspec

from core import audit, clock
from core.ids import new_id
from core.masking import mask_address, mask_id_number, mask_name
from core.problems import ProblemError, not_found
from core.resources import Resources
from core.signed import SignedDocumentError, sign_document, verify_document
from identity import clients as client_registry
from identity import people
from identity.clients import Client
from identity.codes import codec as codes
from identity.codes.service import pairwise_user_code, verify_code
from identity.errors import forbidden
from identity.keys import issuer_keys
from identity.licences import repo
from identity.models import Voucher

log = logging.getLogger("szt.identity.licences")

Kind = Literal["id_card", "driving_licence", "residence_permit"]
KINDS: tuple[str, ...] = ("id_card", "driving_licence", "residence_permit")
TITLES = {"id_card": "居民身份证", "driving_licence": "机动车驾驶证", "residence_permit": "居住证"}
PREFIX = "SZL1."
TOKEN_TTL = 180  # seconds a 亮证 QR stays valid
REMIND_DAYS = 90
MAX_TOKEN_CHARS = 600


# --------------------------------------------------------------------------- shapes


class LibraryRecord(msgspec.Struct):
    kind: str
    number: str
    holder_name: str
    valid_from: str
    valid_until: str | None
    issuer: str
    status: str
    facts: dict[str, str] = {}


class LicenceSummary(msgspec.Struct):
    kind: str
    title: str
    holder_masked: str
    number_masked: str
    valid_until: str | None  # None: 长期 (long-term)
    state: str  # valid | expiring | expired | cancelled
    days_left: int | None
    issuer: str


class LicenceList(msgspec.Struct):
    items: list[LicenceSummary]
    library: str  # ok | unavailable (the ID card is still listed from identity's own record)


class LicenceDetail(msgspec.Struct):
    summary: LicenceSummary
    valid_from: str | None
    facts: dict[str, str]  # masked as shown in the app
    image_url: str


class LicenceVerification(msgspec.Struct):
    """What a verifier learns from a 亮证 QR: the licence's facts, holder data only as far as it is entitled."""

    verification_id: str
    verified_at: str
    kind: str
    title: str
    result: str  # pass | invalid (licence expired or cancelled in the library)
    state: str
    valid_until: str | None
    purpose: str
    user_code: str
    holder: dict[str, str]
    facts: dict[str, str]


class ExpiringDocument(msgspec.Struct):
    """A home-screen reminder (bff/home_routes.Reminder shape)."""

    kind: str
    title: str
    due: str | None = None
    link: str | None = None


class Presentation(msgspec.Struct):
    token: str
    expires_at: int
    issued_at: dt.datetime
    purpose: str


# --------------------------------------------------------------------------- the library client


def _unavailable() -> ProblemError:
    return ProblemError(
        503,
        "elicence-unavailable",
        "The e-licence library is unavailable; try again later",
        "电子证照库暂不可用，请稍后再试",
        headers={"Retry-After": "30"},
    )


class ElicenceClient:
    """江苏省电子证照库 (simulators/elicence.py speaks the same shapes)."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/elicence/v1/licences/query"

    async def licences(self, id_number: str, *, wait: float = 3.0) -> list[LibraryRecord]:
        try:
            resp = await self.http.post(self.url, json={"id_number": id_number}, timeout=wait)
        except httpx.HTTPError as exc:
            log.warning("elicence unreachable", extra={"error": type(exc).__name__})
            raise _unavailable() from exc
        if resp.status_code != 200:
            log.warning("elicence failed", extra={"status": resp.status_code})
            raise _unavailable()
        return msgspec.convert(resp.json().get("items", []), list[LibraryRecord], strict=False)


def library(res: Resources) -> ElicenceClient:
    return ElicenceClient(res.http, res.settings.simulators_url)


# --------------------------------------------------------------------------- reading my licences


async def _records(
    res: Resources, person: people.Person, *, wait: float = 3.0, strict: bool = True
) -> tuple[dict[str, LibraryRecord], bool]:
    """Library records by kind, the ID card's holder data replaced by identity's own; and whether the library
    answered (with ``strict=False`` an unavailable library yields only the ID card, validity unknown)."""
    ok = True
    try:
        found = {r.kind: r for r in await library(res).licences(person.id_number, wait=wait)}
    except ProblemError:
        if strict:
            raise
        found, ok = {}, False
    if person.id_type == "resident":
        lib = found.get("id_card")
        found["id_card"] = LibraryRecord(
            "id_card",
            person.id_number,
            person.name,
            lib.valid_from if lib else "",
            lib.valid_until if lib else None,
            lib.issuer if lib else "",
            lib.status if lib else "正常",
            {"gender": "男" if person.gender == "male" else "女", "birth_date": person.birth_date},
        )
    return {k: found[k] for k in KINDS if k in found}, ok


def _state(r: LibraryRecord, today: dt.date) -> tuple[str, int | None]:
    if r.status != "正常":
        return "cancelled", None
    if not r.valid_until:
        return "valid", None
    left = (dt.date.fromisoformat(r.valid_until) - today).days
    return ("expired" if left < 0 else "expiring" if left <= REMIND_DAYS else "valid"), left


def _summary(r: LibraryRecord, today: dt.date) -> LicenceSummary:
    state, left = _state(r, today)
    return LicenceSummary(
        kind=r.kind,
        title=TITLES[r.kind],
        holder_masked=mask_name(r.holder_name),
        number_masked=mask_id_number(r.number),
        valid_until=r.valid_until,
        state=state,
        days_left=left,
        issuer=r.issuer,
    )


def _masked_facts(facts: dict[str, str]) -> dict[str, str]:
    return {k: (mask_address(v) if k == "address" else v) for k, v in facts.items()}


async def my_licences(res: Resources, person_id: str) -> LicenceList:
    person = await people.load(res, person_id)
    found, ok = await _records(res, person, strict=False)
    today = dt.date.today()
    return LicenceList([_summary(r, today) for r in found.values()], "ok" if ok else "unavailable")


async def _record(res: Resources, person: people.Person, kind: str) -> LibraryRecord:
    if kind not in KINDS:
        raise not_found("licence kind")
    found, _ = await _records(res, person, strict=kind != "id_card")
    if kind not in found:
        raise not_found("licence")
    return found[kind]


async def licence_detail(res: Resources, person_id: str, kind: str) -> LicenceDetail:
    person = await people.load(res, person_id)
    r = await _record(res, person, kind)
    return LicenceDetail(
        summary=_summary(r, dt.date.today()),
        valid_from=r.valid_from or None,
        facts=_masked_facts(r.facts),
        image_url=f"/bff/v1/licences/{kind}/image?format=png",
    )


async def expiring_documents(res: Resources, person_id: str) -> list[ExpiringDocument]:
    """Documents expiring within 90 days (or expired), for the home screen's reminders; quick or nothing."""
    person = await people.load(res, person_id)
    found, _ = await _records(res, person, wait=0.4, strict=False)
    today = dt.date.today()
    out = []
    for r in found.values():
        state, left = _state(r, today)
        if state in ("expiring", "expired") and left is not None:
            title = f"您的{TITLES[r.kind]}" + (f"将于{left}天后到期" if left >= 0 else "已过期") + "，请及时办理换领"
            out.append(ExpiringDocument("document_expiry", title, r.valid_until, f"/bff/v1/licences/{r.kind}"))
    return out


# --------------------------------------------------------------------------- presentations (亮证)


def sign_token(private: Any, kid: str, *, jti: str, kind: str, exp: int) -> str:
    """The QR text. Public so tests can make an expired or foreign one; the app only gets it via `present`."""
    return PREFIX + sign_document(private, {"typ": "szt-lic", "kid": kid, "jti": jti, "knd": kind, "exp": exp})


async def present(res: Resources, person_id: str, kind: str, purpose: str) -> tuple[LibraryRecord, Presentation]:
    """A fresh presentation of one licence: its record (for the card image) and the signed QR token."""
    person = await people.load(res, person_id)
    record = await _record(res, person, kind)
    keys = await issuer_keys(res)
    jti = uuid.uuid4()
    issued = dt.datetime.now(dt.UTC)
    exp = int(time.time()) + TOKEN_TTL
    await repo.insert_presentation(res.db, jti, uuid.UUID(person_id), kind, purpose, issued, exp)
    token = sign_token(keys.private, keys.kid, jti=jti.hex, kind=kind, exp=exp)
    return record, Presentation(token, exp, issued, purpose)


# --------------------------------------------------------------------------- verification


def _problem(status: int, kind: str, title: str, title_zh: str) -> ProblemError:
    return ProblemError(status, f"licence-{kind}", title, title_zh, title, field="token")


_PROBLEMS = {
    "malformed": (400, "This is not a 苏证通 licence QR", "不是有效的亮证二维码"),
    "unknown-key": (422, "The QR is signed by a key this issuer does not publish", "亮证二维码签名密钥未知"),
    "forged": (422, "The QR's signature does not verify", "亮证二维码签名无效"),
    "expired": (410, "The licence QR has expired", "亮证二维码已过期，请持证人刷新"),
    "replayed": (409, "The licence QR was already verified", "亮证二维码已被核验，请持证人刷新"),
}


def _refuse(kind: str) -> ProblemError:
    return _problem(*_PROBLEMS[kind][:1], kind, *_PROBLEMS[kind][1:])


async def verify_licence(
    res: Resources, client: Client, text: str, *, ip: str, staff_person_id: str | None = None
) -> LicenceVerification:
    if client.kind not in ("verifier", "business"):
        raise forbidden("not-a-verifier", "This client may not verify licences", "该客户端无权核验电子证照")
    if not text.startswith(PREFIX) or len(text) > MAX_TOKEN_CHARS:
        raise _refuse("malformed")
    keys = await issuer_keys(res)
    try:
        payload = verify_document(text[len(PREFIX) :], keys.published, max_len=MAX_TOKEN_CHARS)
    except SignedDocumentError as exc:
        raise _refuse(exc.kind) from exc
    jti, kind, exp = payload.get("jti"), payload.get("knd"), payload.get("exp")
    if payload.get("typ") != "szt-lic" or not isinstance(jti, str) or kind not in KINDS or not isinstance(exp, int):
        raise _refuse("malformed")
    if time.time() > exp + 5:
        raise _refuse("expired")
    try:
        jti_uuid = uuid.UUID(hex=jti)
    except ValueError as exc:
        raise _refuse("malformed") from exc
    used_by = client.client_id + (f"|person:{staff_person_id}" if staff_person_id else "")
    row = await repo.use_presentation(res.db, jti_uuid, used_by)
    if row is None:
        known = await repo.presentation_used(res.db, jti_uuid)
        raise _refuse("replayed" if known else "expired" if known is False else "forged")
    person_id = str(row["person_id"])
    person = await people.load(res, person_id)
    record = await _record(res, person, row["kind"])
    state, _ = _state(record, dt.date.today())
    holder = {"name_masked": mask_name(record.holder_name), "number_masked": mask_id_number(record.number)}
    if "name" in client.entitlements:
        holder["name"] = record.holder_name
    if "id_number" in client.entitlements:
        holder["id_number"], holder["number"] = person.id_number, record.number
    unmasked = sorted(k for k in holder if k in ("name", "id_number", "number"))
    if unmasked:
        await audit.record(
            res.db,
            actor=f"client:{client.client_id}" + (f" person:{staff_person_id}" if staff_person_id else ""),
            action="identity.licence.disclose",
            target=f"{row['kind']}:{jti}",
            ip=ip,
            detail={"attributes": unmasked, "purpose": row["purpose"]},
        )
    return LicenceVerification(
        verification_id=new_id(),
        verified_at=dt.datetime.now(dt.UTC).isoformat(),
        kind=row["kind"],
        title=TITLES[row["kind"]],
        result="pass" if state in ("valid", "expiring") else "invalid",
        state=state,
        valid_until=record.valid_until,
        purpose=row["purpose"],
        user_code=pairwise_user_code(res, client.sector, person_id),
        holder=holder,
        facts=_masked_facts(record.facts) if "address" not in client.entitlements else record.facts,
    )


# --------------------------------------------------------------------------- verifier staff (the app's verifier role)


async def link_verifier(res: Resources, person_id: str, client_id: str, *, actor: str) -> None:
    """Make a person staff of a verifier client (an administrative act: audited)."""
    await repo.link_verifier_staff(res.db, uuid.UUID(person_id), client_id)
    await audit.record(
        res.db, actor=actor, action="identity.verifier.link", target=client_id, detail={"person": person_id}
    )


async def verifier_client_of(res: Resources, person_id: str) -> Client:
    client_id = await repo.verifier_client_id(res.db, uuid.UUID(person_id))
    client = await client_registry.get(res, client_id, cached=True) if client_id else None
    if client is None or client.kind not in ("verifier", "business") or client.status != "active":
        raise forbidden("not-a-verifier", "Only verifier staff may scan to verify", "仅核验人员可扫码核验")
    return client


# --------------------------------------------------------------------------- the card image


_FACT_LABELS = {
    "gender": "性别",
    "birth_date": "出生",
    "vehicle_class": "准驾车型",
    "first_issued": "初次领证",
    "residence_city": "居住地",
}


def card_png(record: LibraryRecord, p: Presentation) -> bytes:
    from identity.licences import card as licence_card  # PIL is only loaded by the process that renders

    period = f"{record.valid_from or '—'} 至 {record.valid_until or '长期'}"
    rows = [("姓名", record.holder_name), ("证号", mask_id_number(record.number))]
    rows += [(_FACT_LABELS[k], v) for k, v in record.facts.items() if k in _FACT_LABELS]
    rows += [("有效期限", period), ("签发机关", record.issuer or "—")]
    shown_at = clock.beijing_text(p.issued_at, "%Y-%m-%d %H:%M")
    return licence_card.render(
        kind=record.kind,
        title=TITLES[record.kind],
        rows=rows,
        watermark=f"仅供{p.purpose}使用 {shown_at}",
        qr_text=p.token,
        footer=f"本电子证照由苏证通出示，仅供{p.purpose}使用，核验以扫码结果为准 · {shown_at}",
    )


# --------------------------------------------------------------------------- scan-to-verify in the app


class ScanResult(msgspec.Struct, omit_defaults=True):
    kind: str  # identity_code | licence
    voucher: Voucher | None = None
    licence: LicenceVerification | None = None


async def scan(res: Resources, person_id: str, text: str, *, ip: str) -> ScanResult:
    """A signed-in verifier staff member scans a QR: an identity code (SZT1…) or a 亮证 QR (SZL1…), verified with
    the entitlements of the verifier client they staff."""
    client = await verifier_client_of(res, person_id)
    if text.startswith(codes.TEXT_PREFIX):
        voucher = await verify_code(res, client, text, signed=False, ip=ip)
        return ScanResult("identity_code", voucher=voucher)
    return ScanResult("licence", licence=await verify_licence(res, client, text, ip=ip, staff_person_id=person_id))
