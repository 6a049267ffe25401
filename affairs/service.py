"""Rules of the handling engine: manifests, online declaration (authorisation, prefill, drafts, attachments,
submission), cases and their states. Every function takes the person id, never a request, so the app BFF and the
mini programs call the same operations (docs/contracts.md). The other kinds live beside it and are re-exported here:
affairs.bookings, affairs.payments, affairs.extras."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from affairs import forms, govservice, ratings, repo
from affairs.adapters import BizClient
from affairs.manifests import ELICENCE_TYPES
from affairs.models import (
    AttachmentView,
    CaseEvent,
    CaseIn,
    CaseList,
    CaseView,
    Draft,
    DraftIn,
    Manifest,
    ManifestList,
    ManifestSummary,
    Prefill,
    RatingIn,
    RatingView,
)
from affairs.notify import notify
from core import audit, clock, regions
from core.crypto import sm3
from core.pagination import decode_cursor, encode_cursor
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources
from identity.facade import ACR_ORDER, legal, people

log = logging.getLogger("szt.affairs")

FORM_CTX = "affairs.case.form"
DRAFT_CTX = "affairs.draft.form"
MAILING_CTX = "affairs.case.mailing"
MAX_ATTACHMENT = 4 * 1024 * 1024
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
STATUS_ZH = {
    "submitted": "已提交",
    "pre_review": "预审中",
    "accepted": "已受理",
    "handling": "办理中",
    "completed": "已办结",
    "returned": "已退回",
    "supplement_requested": "需补正材料",
    "withdrawn": "已撤回",
}
# Which status may follow which; everything else is refused (409) and the case stays as it is.
TRANSITIONS: dict[str, frozenset[str]] = {
    "submitted": frozenset({"pre_review", "returned", "withdrawn"}),
    "pre_review": frozenset({"accepted", "returned", "supplement_requested", "withdrawn"}),
    "supplement_requested": frozenset({"pre_review", "returned", "withdrawn"}),
    "accepted": frozenset({"handling", "returned"}),
    "handling": frozenset({"completed", "returned", "supplement_requested"}),
    "completed": frozenset(),
    "returned": frozenset(),
    "withdrawn": frozenset(),
}
SUBMITTED_NOTE = "网上申报"
WITHDRAWABLE = frozenset({"submitted", "pre_review", "supplement_requested"})
FINISHED = frozenset({"completed", "returned"})
AUTO_RATE_AFTER = timedelta(days=15)
_pending: set[asyncio.Task[None]] = set()

# ---------------------------------------------------------------- manifests

_cache: tuple[float, dict[str, Manifest]] = (0.0, {})


async def manifests(res: Resources) -> dict[str, Manifest]:
    """The current version of every manifest (kept a minute in the process; a new version is a new row)."""
    global _cache
    at, cached = _cache
    if cached and time.monotonic() - at < 60:
        return cached
    rows = await repo.current_manifests(res.db)
    fresh = {r["body"]["code"]: msgspec.convert(r["body"], Manifest) for r in rows}
    _cache = (time.monotonic(), fresh)
    return fresh


async def manifest(res: Resources, code: str, kind: str | None = None) -> Manifest:
    m = (await manifests(res)).get(code)
    if m is None:
        raise not_found("application")
    if kind is not None and m.kind != kind:
        raise ProblemError(
            409, "wrong-kind", "Not this kind of application", "该事项不支持此操作", f"{code} is a {m.kind}"
        )
    return m


async def list_manifests(res: Resources, *, kind: str | None, cursor: str | None, limit: int) -> ManifestList:
    ms = [m for m in (await manifests(res)).values() if kind is None or m.kind == kind]
    ms = [m for m in ms if cursor is None or m.code > cursor][:limit]
    items = [ManifestSummary(m.code, m.version, m.name, m.category, m.kind, m.subject) for m in ms]
    return ManifestList(items, items[-1].code if len(items) == limit else None)


def require_assurance(m: Manifest, acr: str) -> None:
    if ACR_ORDER.get(acr, -1) < ACR_ORDER[m.assurance]:
        raise ProblemError(
            403, "assurance-too-low", "Stronger sign-in required", "需要更高的认证等级", f"{m.code} needs {m.assurance}"
        )


# ---------------------------------------------------------------- identity authorisation and prefill


def elicence_ref(res: Resources, person_id: str, licence: str) -> str:
    """A person's e-licence reference: stable, unguessable, and checkable without a lookup."""
    return f"{licence}:{res.fields.blind_index(f'{person_id}:{licence}', context='affairs.elicence').hex()[:24]}"


def _elicence_checker(res: Resources, person_id: str) -> Any:
    mine = {elicence_ref(res, person_id, t) for t in ELICENCE_TYPES}
    return lambda ref: ref in mine


async def authorise(res: Resources, person_id: str, code: str, scopes: list[str]) -> None:
    m = await manifest(res, code)
    extra = set(scopes) - set(m.identity_scopes)
    if extra:
        raise invalid("scopes", f"{code} does not ask for: {', '.join(sorted(extra))}")
    await repo.authorise(res.db, uuid.UUID(person_id), code, sorted(set(scopes)))
    await audit.record(res.db, actor=person_id, action="affairs.authorise", target=code, detail={"scopes": scopes})


async def prefill(res: Resources, person_id: str, code: str, enterprise_id: str | None = None) -> Prefill:
    """Values for the form: from identity (only the scopes the person authorised for this application), from the
    person's previous case, and the person's own e-licence references."""
    m = await manifest(res, code)
    pid = uuid.UUID(person_id)
    scopes = await repo.authorised_scopes(res.db, pid, code) or []
    person = await people.load(res, person_id)
    previous: dict[str, str] = {}
    last = await repo.latest_case(res.db, pid)
    if last is not None:
        previous = json.loads(res.fields.decrypt(last["form_enc"], context=FORM_CTX))
    values: dict[str, str] = {}
    identity_values = {"name": person.name, "id_number": person.id_number, "phone": person.phone}
    for f in m.form:
        source = f.get("autofill")
        if source in identity_values and source in scopes:
            values[f["name"]] = identity_values[source]
        elif source == "previous" and f["name"] in previous:
            values[f["name"]] = previous[f["name"]]
        elif source == "enterprise" and enterprise_id:
            uscc = await _enterprise_uscc(res, person_id, enterprise_id)
            if uscc:
                values[f["name"]] = uscc
    licences = {
        t: elicence_ref(res, person_id, t) for t in ELICENCE_TYPES if any(f.get("licence") == t for f in m.form)
    }
    for f in m.form:
        if f["type"] == "elicence" and f.get("licence") in licences:
            values.setdefault(f["name"], licences[f["licence"]])
    return Prefill(values, licences, authorised=bool(scopes))


async def _enterprise_uscc(res: Resources, person_id: str, enterprise_id: str) -> str | None:
    page = await legal.my_enterprises(res, person_id, cursor=None, limit=100)
    for e in page.items:
        if str(e.id) == str(enterprise_id):
            return e.uscc
    return None


# ---------------------------------------------------------------- drafts and attachments


async def save_draft(res: Resources, person_id: str, code: str, req: DraftIn) -> Draft:
    m = await manifest(res, code, "application")
    clean = forms.validate(
        m.form, dict(req.form), elicence_ok=_elicence_checker(res, person_id), today=clock.utc_today(), partial=True
    )
    enc = res.fields.encrypt(json.dumps(clean, ensure_ascii=False), context=DRAFT_CTX)
    row = await repo.save_draft(res.db, uuid.UUID(person_id), code, enc, req.revision)
    if row is None:
        raise ProblemError(
            409, "draft-changed", "Draft saved meanwhile elsewhere", "草稿已在其他设备更新", "load the draft again"
        )
    return Draft(code, clean, row["revision"], row["updated_at"])


async def get_draft(res: Resources, person_id: str, code: str) -> Draft:
    row = await repo.get_draft(res.db, uuid.UUID(person_id), code)
    if row is None:
        raise not_found("draft")
    form = json.loads(res.fields.decrypt(row["form_enc"], context=DRAFT_CTX))
    return Draft(code, form, row["revision"], row["updated_at"])


def sniff(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return None


def attachment_path(res: Resources, attachment_id: uuid.UUID) -> Any:
    h = attachment_id.hex
    return res.settings.var_path / "affairs" / "attachments" / h[:2] / h


def _digest_and_write(path: Any, data: bytes) -> str:
    """SM3 of a 1 MB file costs ~8 ms of CPU: done with the write in a thread, off the event loop."""
    digest = sm3(data).hex()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return digest


async def upload(res: Resources, person_id: str, data: bytes, filename: str) -> AttachmentView:
    """Store one file: its type from its content (not its name or header), capped, with its SM3 digest."""
    if not data:
        raise invalid("body", "empty file")
    if len(data) > MAX_ATTACHMENT:
        raise ProblemError(413, "payload-too-large", "File too large", "文件过大", f"at most {MAX_ATTACHMENT} bytes")
    mime = sniff(data)
    if mime is None:
        raise ProblemError(415, "unsupported-file-type", "Only PDF, JPEG or PNG", "仅支持 PDF、JPEG、PNG", field="body")
    aid = uuid.uuid4()
    digest = await asyncio.to_thread(_digest_and_write, attachment_path(res, aid), data)
    await repo.insert_attachment(res.db, aid, uuid.UUID(person_id), mime, len(data), digest, filename[:100])
    return AttachmentView(aid, mime, len(data), digest)


# ---------------------------------------------------------------- cases


async def _check_attachments(
    res: Resources, person_id: str, m: Manifest, clean: dict[str, str]
) -> list[dict[str, Any]]:
    ids = forms.attachment_ids(m.form, clean)
    rows = await repo.attachments_of(res.db, uuid.UUID(person_id), [uuid.UUID(i) for i in ids])
    return _match_attachments(m, clean, rows)


def _match_attachments(m: Manifest, clean: dict[str, str], rows: list[Any]) -> list[dict[str, Any]]:
    by_id = {str(r["id"]): r for r in rows}
    out = []
    for f in m.form:
        if f["type"] != "attachment" or f["name"] not in clean:
            continue
        r = by_id.get(clean[f["name"]])
        if r is None:
            raise invalid(f"form.{f['name']}", "no such attachment of yours")
        if f.get("accept") and r["mime"] not in f["accept"]:
            raise invalid(f"form.{f['name']}", "must be one of " + ", ".join(f["accept"]))
        out.append({"field": f["name"], "id": str(r["id"]), "mime": r["mime"], "size": r["size"], "sm3": r["sm3"]})
    return out


async def submit(res: Resources, person_id: str, acr: str, req: CaseIn, idempotency_key: str | None) -> CaseView:
    """One case per (person, Idempotency-Key): a retry answers the case the first attempt made.

    The answer comes after the case is committed; the business system gets it right after, from a task of this
    process. The case row itself is the outbox: a case still without its business reference is picked up again by
    the redelivery job (affairs.jobs), so a crash between the commit and the hand-over loses nothing."""
    m = await manifest(res, req.code, "application")
    require_assurance(m, acr)
    pid = uuid.UUID(person_id)
    if m.subject == "legal" and req.enterprise_id is None:
        raise invalid("enterprise_id", f"{m.code} is for enterprises: say which one you act for")
    # The form is checked first (no I/O), so that one query can then bring the replay, the authorisation and the
    # attachments together.
    clean = forms.validate(
        m.form, dict(req.form), elicence_ok=_elicence_checker(res, person_id), today=clock.utc_today()
    )
    ids = [uuid.UUID(i) for i in forms.attachment_ids(m.form, clean)]
    ctx = await repo.submission_context(res.db, pid, m.code, idempotency_key, ids)
    if ctx["existing"] is not None:
        existing = await repo.get_case(res.db, ctx["existing"])
        return await _view(res, existing)
    if m.subject == "legal":
        if not await legal.handler_for(res, person_id, str(req.enterprise_id), "affairs.submit"):
            raise ProblemError(403, "not-enterprise-handler", "Not a handler of this enterprise", "非该企业经办人")
    if m.identity_scopes and ctx["scopes"] is None:
        raise ProblemError(
            403, "authorisation-required", "Authorise the application first", "请先完成身份授权", field="code"
        )
    if m.subject == "natural":
        if clean.get("id_number"):
            person = await people.load(res, person_id)
            if clean["id_number"] != person.id_number:
                raise invalid("form.id_number", "an application is made for yourself (agents use their own entry)")
    else:
        uscc = await _enterprise_uscc(res, person_id, str(req.enterprise_id))
        if uscc is not None and clean.get("uscc") != uscc:
            raise invalid("form.uscc", "not the code of the enterprise you act for")
    attachments = _match_attachments(m, clean, ctx["attachments"] or [])
    region = clean.get("region_code", regions.PROVINCE_CODE)
    city = region[:4] + "00"
    now = datetime.now(UTC)
    row = await repo.insert_case(
        res.db,
        id=uuid.uuid4(),
        case_prefix=f"{city}{now:%Y%m%d}",
        person_id=pid,
        enterprise_id=req.enterprise_id,
        code=m.code,
        manifest_version=m.version,
        system=m.binding["system"],
        org_code=f"{regions.PROVINCE_CODE}.{city}.{m.binding['system']}",
        region_code=region,
        idempotency_key=idempotency_key,
        form_enc=res.fields.encrypt(json.dumps(clean, ensure_ascii=False), context=FORM_CTX),
        mailing_enc=res.fields.encrypt(msgspec.json.encode(req.mailing).decode(), context=MAILING_CTX)
        if req.mailing
        else None,
        deadline_at=now + timedelta(days=int(m.binding["deadline_days"])),
        event_note=SUBMITTED_NOTE,
    )
    if row is None:  # the same key raced in from another request
        row = await repo.case_by_key(res.db, pid, idempotency_key or "")
        assert row is not None
        return await _view(res, row)
    govservice.nudge(res)  # the 办件 feed (its record was written with the case)
    view = await _view(res, row, with_events=False, with_mailing=True)
    view.events = [CaseEvent("submitted", SUBMITTED_NOTE, "applicant", row["created_at"])]
    _delivering[row["id"]] = spawn(_after_submit(res, row, clean, attachments, m))
    return view


_delivering: dict[uuid.UUID, asyncio.Task[None]] = {}


async def _after_submit(
    res: Resources, row: Any, clean: dict[str, str], attachments: list[dict[str, Any]], m: Manifest
) -> None:
    try:
        await _tell(res, row, "submitted")
        await deliver(res, row, clean, attachments, m)
    except Exception:  # the redelivery job takes over
        log.exception("hand-over after submission failed", extra={"case_no": row["case_no"]})
    finally:
        _delivering.pop(row["id"], None)


async def deliver(
    res: Resources, row: Any, clean: dict[str, str], attachments: list[dict[str, Any]], m: Manifest
) -> bool:
    """Hand the case to its business system; on failure it stays `submitted` and affairs.jobs retries."""
    payload = {
        "case_no": row["case_no"],
        "app_code": m.code,
        "manifest_version": m.version,
        "form": clean,
        "attachments": attachments,
        "enterprise_id": str(row["enterprise_id"]) if row["enterprise_id"] else None,
        "callback_url": f"{res.settings.base_url}/affairs/v1/callbacks/{row['system']}",
    }
    client = BizClient(res, row["system"])
    try:
        ref = await client.submit(payload)
    except ProblemError:
        log.warning("delivery failed; will retry", extra={"case_no": row["case_no"]})
        return False
    status = await repo.set_ref(res.db, row["id"], ref)
    if status == "withdrawn":  # withdrawn while it was on its way: the business system hears that too
        try:
            await client.withdraw(ref)
        except ProblemError:
            log.warning("withdrawal not delivered", extra={"case_no": row["case_no"]})
    return True


async def redeliver(res: Resources, limit: int = 50) -> int:
    done = 0
    for row in await repo.undelivered(res.db, limit):
        m = await _manifest_of(res, row)
        clean = json.loads(res.fields.decrypt(row["form_enc"], context=FORM_CTX))
        attachments = await _check_attachments(res, str(row["person_id"]), m, clean)
        done += await deliver(res, row, clean, attachments, m)
    return done


async def _manifest_of(res: Resources, row: Any) -> Manifest:
    r = await repo.manifest_version(res.db, row["code"], row["manifest_version"])
    assert r is not None
    return msgspec.convert(r["body"], Manifest)


async def _tell(res: Resources, row: Any, status: str) -> None:
    await notify(
        res,
        str(row["person_id"]),
        template="case_status",
        params={"case_no": row["case_no"], "status": STATUS_ZH[status]},
        source="affairs",
        idempotency_key=f"case:{row['id']}:{status}:{int(time.time() * 1000)}",
    )


async def _view(res: Resources, row: Any, *, with_events: bool = True, with_mailing: bool | None = None) -> CaseView:
    m = (await manifests(res)).get(row["code"])
    events = (
        [CaseEvent(e["status"], e["note"], e["source"], e["at"]) for e in await repo.events(res.db, row["id"])]
        if with_events
        else []
    )
    mailing = None
    if (with_events if with_mailing is None else with_mailing) and row["mailing_enc"]:
        from core.masking import mask_address, mask_name, mask_phone

        raw = json.loads(res.fields.decrypt(row["mailing_enc"], context=MAILING_CTX))
        mailing = {
            "recipient": mask_name(raw["recipient"]),
            "phone": mask_phone(raw["phone"]),
            "region_code": raw["region_code"],
            "address": mask_address(raw["address"]),
        }
    return CaseView(
        id=row["id"],
        case_no=row["case_no"],
        code=row["code"],
        name=m.name if m else row["code"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deadline_at=row["deadline_at"],
        materials_requested=list(row["materials_requested"] or []),
        events=events,
        mailing=mailing,
        rating=row.get("rating") if hasattr(row, "get") else None,
    )


async def _mine(res: Resources, person_id: str, case_id: uuid.UUID) -> Any:
    row = await repo.get_case(res.db, case_id)
    if row is None or str(row["person_id"]) != person_id:
        raise not_found("case")
    return row


async def get_case(res: Resources, person_id: str, case_id: uuid.UUID) -> CaseView:
    return await _view(res, await _mine(res, person_id, case_id))


async def my_cases(
    res: Resources, person_id: str, *, cursor: str | None, limit: int, category: str | None = None
) -> CaseList:
    at, cid = decode_cursor(cursor)
    codes = None
    if category:
        codes = [m.code for m in (await manifests(res)).values() if m.category == category]
    rows = await repo.my_cases(res.db, uuid.UUID(person_id), (at, cid) if at and cid else None, limit, codes)
    items = [await _view(res, r, with_events=False) for r in rows]
    nxt = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return CaseList(items, nxt)


async def move(
    res: Resources, row: Any, to_status: str, *, note: str, source: str, materials: list[str] | None = None
) -> bool:
    """Apply one transition if the state machine allows it; False when the case is already there."""
    if row["status"] == to_status:
        return False
    if to_status not in TRANSITIONS[row["status"]]:
        raise ProblemError(
            409,
            "bad-transition",
            "Not allowed from the current status",
            "当前状态不允许此操作",
            f"{row['status']} → {to_status}",
        )
    at = await repo.move_case(res.db, row["id"], row["status"], to_status, note, source, materials or [])
    if at is None:
        raise ProblemError(409, "case-changed", "The case changed meanwhile", "办件状态已变化", "retry")
    govservice.nudge(res)  # the 办件 feed (its record was written with the event)
    await _tell(res, row, to_status)
    return True


async def withdraw(res: Resources, person_id: str, case_id: uuid.UUID) -> CaseView:
    row = await _mine(res, person_id, case_id)
    in_flight = _delivering.get(case_id)
    if in_flight is not None and row["external_ref"] is None:
        await asyncio.wait([in_flight], timeout=10)  # so the withdrawal follows the case to its business system
        row = await _mine(res, person_id, case_id)
    if row["status"] not in WITHDRAWABLE:
        raise ProblemError(409, "not-withdrawable", "Too late to withdraw", "办件已受理，无法撤回", row["status"])
    await move(res, row, "withdrawn", note="申请人撤回", source="applicant")
    if row["external_ref"]:
        try:
            await BizClient(res, row["system"]).withdraw(row["external_ref"])
        except ProblemError:
            log.warning("withdrawal not delivered", extra={"case_no": row["case_no"]})
    return await get_case(res, person_id, case_id)


async def supplement(res: Resources, person_id: str, case_id: uuid.UUID, form: dict[str, str]) -> CaseView:
    """The applicant answers a request for materials: merged into the form, delivered, back to pre-review."""
    row = await _mine(res, person_id, case_id)
    if row["status"] != "supplement_requested":
        raise ProblemError(409, "no-supplement-requested", "No materials requested", "当前无需补正", row["status"])
    m = await _manifest_of(res, row)
    patch = forms.validate(
        m.form, form, elicence_ok=_elicence_checker(res, person_id), today=clock.utc_today(), partial=True
    )
    if not patch:
        raise invalid("form", "nothing supplied")
    merged = {**json.loads(res.fields.decrypt(row["form_enc"], context=FORM_CTX)), **patch}
    attachments = await _check_attachments(res, person_id, m, patch)
    await repo.update_form(
        res.db, row["id"], res.fields.encrypt(json.dumps(merged, ensure_ascii=False), context=FORM_CTX)
    )
    await move(res, row, "pre_review", note="已补正材料", source="applicant")
    if row["external_ref"]:
        await BizClient(res, row["system"]).supplement(row["external_ref"], {"form": patch, "attachments": attachments})
    return await get_case(res, person_id, case_id)


async def apply_callback(
    res: Resources, system: str, ref: str, case_no: str, status: str, note: str, materials: list[str]
) -> tuple[str, bool]:
    row = await repo.case_for_callback(res.db, system, ref, case_no)
    if row is None:
        raise not_found("case")
    if status == "supplement_requested" and not materials:
        raise invalid("materials", "say which materials are needed")
    changed = await move(res, row, status, note=note, source=system, materials=materials)
    return status, changed


# ---------------------------------------------------------------- ratings (好差评)


async def rate(
    res: Resources,
    person_id: str,
    subject: str,
    org_code: str,
    req: RatingIn,
    *,
    automatic: bool = False,
    case: Any = None,
) -> RatingView:
    """The rules, the loop and the reports live in affairs.ratings (docs/domains/haocp.md)."""
    item = {}
    if case is not None:
        ms = await manifests(res)
        name = ms[case["code"]].name if case["code"] in ms else case["code"]
        item = {"case_no": case["case_no"], "item_code": case["code"], "item_name": name}
    return await ratings.rate(res, person_id, subject, org_code, req, automatic=automatic, **item)


async def rate_case(res: Resources, person_id: str, case_id: uuid.UUID, req: RatingIn) -> RatingView:
    row = await _mine(res, person_id, case_id)
    if row["status"] not in FINISHED:
        raise ProblemError(409, "not-finished", "Rate a case once it is finished", "办结后方可评价", row["status"])
    return await rate(res, person_id, f"case:{row['id']}", row["org_code"], req, case=row)


async def auto_rate(res: Resources, now: datetime | None = None) -> int:
    """Cases finished more than AUTO_RATE_AFTER ago and never rated get the default rating, 满意 (003's rule)."""
    now = now or datetime.now(UTC)
    n = 0
    for row in await repo.unrated_finished_cases(res.db, now - AUTO_RATE_AFTER, 500):
        try:
            await rate(
                res,
                str(row["person_id"]),
                f"case:{row['id']}",
                row["org_code"],
                RatingIn(level=ratings.AUTO_LEVEL),
                automatic=True,
                case=row,
            )
            n += 1
        except ProblemError:
            continue
    return n


# ---------------------------------------------------------------- home reminders (bff/home_routes.py asks these)


class Reminder(msgspec.Struct, omit_defaults=True):
    """The shape the home screen converts from: what, when it is due, where the app opens it."""

    kind: str
    title: str
    due: str | None = None
    link: str | None = None


async def appointments_tomorrow(res: Resources, person_id: str) -> list[Reminder]:
    """The person's held bookings whose time is tomorrow, Beijing time."""
    start = clock.beijing_midnight(clock.beijing_today() + timedelta(days=1))
    rows = await repo.bookings_between(res.db, uuid.UUID(person_id), start, start + timedelta(days=1))
    ms = await manifests(res)
    out = []
    for r in rows:
        name = ms[r["code"]].name if r["code"] in ms else r["code"]
        at = clock.to_beijing(r["starts_at"])
        out.append(
            Reminder(
                kind="appointment",
                title=f"明天 {at:%H:%M} 在{r['office']}办理{name}",
                due=r["starts_at"].astimezone(UTC).isoformat(),
                link=f"szt://affairs/bookings/{r['id']}",
            )
        )
    return out


async def cases_needing_supplement(res: Resources, person_id: str) -> list[Reminder]:
    """The person's cases waiting for more materials."""
    rows = await repo.cases_in_status(res.db, uuid.UUID(person_id), "supplement_requested")
    out = []
    for r in rows:
        materials = "、".join(r["materials_requested"] or [])
        out.append(
            Reminder(
                kind="supplement",
                title=f"办件 {r['case_no']} 需补正材料" + (f"：{materials}" if materials else ""),
                due=r["deadline_at"].astimezone(UTC).isoformat(),
                link=f"szt://affairs/cases/{r['id']}",
            )
        )
    return out


def spawn(coro: Any) -> asyncio.Task[None]:
    """Run work after answering (the Ministry push, a case's hand-over); the task is kept so it is not collected
    midway."""
    task = asyncio.get_running_loop().create_task(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task
