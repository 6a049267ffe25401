"""The smaller kinds: queries (1, 6, 24, 42, 43, 49), city links (8, 25), the police map (47), self-service car
moving (48), the enterprise service platform (46), notifications, and the Ministry's no-criminal-record
applications. Import through affairs.service."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from affairs import certificates, repo
from affairs import service as svc
from affairs.adapters import BizClient, mps_feedback
from affairs.models import (
    CityLink,
    EnterpriseRequestIn,
    EnterpriseRequestList,
    EnterpriseRequestView,
    MoveCarIn,
    MoveCarView,
    NcrPush,
    NotificationList,
    NotificationView,
    QueryIn,
    QueryResult,
    RatingIn,
    RatingView,
    RectificationList,
    RectificationView,
)
from affairs.notify import notify
from core import clock, regions
from core.pagination import decode_cursor, encode_cursor
from core.problems import ProblemError, invalid, not_found
from core.ratelimit import hit
from core.resources import Resources
from identity.facade import SmsClient, legal, people, valid_resident_id

log = logging.getLogger("szt.affairs.extras")
CITY_CODES = regions.CITY_CODES
NAME_COUNTS_PER_HOUR = 10
MOVE_CAR_PER_DAY = 5
MOVE_CAR_PLATE_GAP = timedelta(minutes=10)

# ---------------------------------------------------------------- queries


async def query(res: Resources, person_id: str, code: str, req: QueryIn) -> QueryResult:
    m = await svc.manifest(res, code, "query")
    p = dict(req.params)
    out: dict[str, Any]
    if code in ("app-01", "app-42", "app-43"):
        awardee = p.get("awardee", "").strip()
        if not awardee:
            raise invalid("params.awardee", "the unit or person to look up")
        rows = await repo.awards(res.db, code, awardee)
        out = {
            "items": [
                {"awardee": r["awardee"], "title": r["title"], "year": r["year"], "region_code": r["region_code"]}
                for r in rows
            ]
        }
    elif code == "app-06":
        kind = p.get("type", "")
        if kind == "progress":
            page = await svc.my_cases(res, person_id, cursor=None, limit=20, category=m.category)
            out = {"items": [{"case_no": c.case_no, "name": c.name, "status": c.status} for c in page.items]}
        elif kind == "document":
            person = await people.load(res, person_id)
            out = await BizClient(res, "crj").query("document_status", {"id_number": person.id_number})
        elif kind == "offices":
            region = p.get("region", "")
            rows = await repo.offices_of_kind(res.db, "exit_entry", region[:4] or None, 50)
            out = {"items": [msgspec_office(r) for r in rows]}
        else:
            raise invalid("params.type", "one of progress, document, offices")
    elif code == "app-24":
        person = await people.load(res, person_id)
        out = await BizClient(res, "zhian").query("idcard_progress", {"id_number": person.id_number})
    elif code == "app-49":
        name, region = p.get("name", "").strip(), p.get("region", "")
        if not 2 <= len(name) <= 10:
            raise invalid("params.name", "a name of 2 to 10 characters")
        if len(region) != 6 or not region.startswith("32"):
            raise invalid("params.region", "a Jiangsu region code")
        await hit(res.redis, f"affairs.namecount:{person_id}", NAME_COUNTS_PER_HOUR, 3600)
        answer = await BizClient(res, "zhian").query("name_count", {"name": name, "region": region})
        out = {"name": name, "region": region, "count": int(answer["count"])}  # a number, never a person
    else:  # pragma: no cover - every query item is above
        raise not_found("query")
    return QueryResult(code, out)


def msgspec_office(r: Any) -> dict[str, Any]:
    return {"name": r["name"], "address": r["address"], "phone": r["phone"], "hours": r["hours"]}


# ---------------------------------------------------------------- city links


async def city_link(res: Resources, code: str, region: str) -> CityLink:
    await svc.manifest(res, code, "city_link")
    city = region[:4] + "00"
    row = await repo.city_link(res.db, code, city)
    if row is None:
        raise not_found("link for this city")
    return CityLink(code, city, row["title"], row["url"])


async def set_city_link(res: Resources, code: str, city: str, url: str, title: str) -> CityLink:
    await svc.manifest(res, code, "city_link")
    if city not in CITY_CODES:
        raise invalid("city_code", "one of the 13 cities")
    if not url.startswith("https://"):
        raise invalid("url", "an https URL")
    await repo.upsert_city_link(res.db, code, city, url, title)
    return CityLink(code, city, title, url)


# ---------------------------------------------------------------- police map


# ---------------------------------------------------------------- self-service car moving


def _relay() -> str:
    return f"95110-{secrets.randbelow(10000):04d}"


async def move_car(res: Resources, person_id: str, req: MoveCarIn) -> MoveCarView:
    await svc.manifest(res, "app-48", "move_car")
    await hit(res.redis, f"affairs.movecar:{person_id}", MOVE_CAR_PER_DAY, 86_400)
    now = datetime.now(UTC)
    if await repo.recent_move_car(res.db, req.plate, now - MOVE_CAR_PLATE_GAP):
        raise ProblemError(429, "plate-recently-reported", "This car was just reported", "该车辆刚被通知过，请稍候")
    owner = await BizClient(res, "jiaoguan").query("vehicle_owner", {"plate": req.plate})
    if not owner.get("found"):
        raise ProblemError(404, "plate-unknown", "No such registered vehicle", "未查询到该车辆", field="plate")
    owner_person = await repo.person_by_id_index(res.db, people.id_index(res, "resident", owner["id_number"]))
    if owner_person is not None and str(owner_person) == person_id:
        raise invalid("plate", "this is your own car")
    relay = _relay()
    row = await repo.insert_move_car(
        res.db,
        id=uuid.uuid4(),
        reporter_id=uuid.UUID(person_id),
        owner_id=owner_person,
        plate=req.plate,
        location=req.location,
        status="notified",
        relay_code=relay,
    )
    # The owner learns the place and a relay number, never the reporter's phone; the reporter learns neither.
    try:
        await SmsClient(res.http, res.settings.simulators_url).send(
            phone=owner["phone"],
            template="move_car",
            params={"plate": req.plate, "location": req.location, "relay": relay},
        )
    except ProblemError:
        await repo.set_move_car_status(res.db, row["id"], "unreachable")
    if owner_person is not None:
        await notify(
            res,
            str(owner_person),
            template="move_car",
            params={"plate": req.plate, "location": req.location, "relay": relay},
            source="affairs",
            idempotency_key=f"movecar:{row['id']}:owner",
        )
    return await get_move_car(res, person_id, row["id"])


async def get_move_car(res: Resources, person_id: str, report_id: uuid.UUID) -> MoveCarView:
    row = await repo.get_move_car(res.db, report_id)
    if row is None or person_id not in (str(row["reporter_id"]), str(row["owner_id"])):
        raise not_found("report")
    return MoveCarView(row["id"], row["plate"], row["status"], row["relay_code"], row["created_at"])


async def owner_reply(res: Resources, person_id: str, report_id: uuid.UUID, status: str) -> MoveCarView:
    row = await repo.get_move_car(res.db, report_id)
    if row is None or str(row["owner_id"]) != person_id:
        raise not_found("report")
    await repo.set_move_car_status(res.db, report_id, status)
    await notify(
        res,
        str(row["reporter_id"]),
        template="move_car_status",
        params={"plate": row["plate"], "status": {"moving": "车主正在赶来", "moved": "车辆已挪走"}[status]},
        source="affairs",
        idempotency_key=f"movecar:{report_id}:{status}",
    )
    return await get_move_car(res, person_id, report_id)


# ---------------------------------------------------------------- enterprise service platform (46)


def _req_view(r: Any) -> EnterpriseRequestView:
    return EnterpriseRequestView(
        r["id"], r["enterprise_id"], r["service"], r["preferred_at"], r["status"], list(r["progress"]), r["created_at"]
    )


async def _as_handler(res: Resources, person_id: str, enterprise_id: uuid.UUID) -> None:
    if not await legal.handler_for(res, person_id, str(enterprise_id), "affairs.submit"):
        raise ProblemError(403, "not-enterprise-handler", "Not a handler of this enterprise", "非该企业经办人")


async def enterprise_request(
    res: Resources, person_id: str, acr: str, req: EnterpriseRequestIn
) -> EnterpriseRequestView:
    m = await svc.manifest(res, "app-46", "enterprise")
    svc.require_assurance(m, acr)
    await _as_handler(res, person_id, req.enterprise_id)
    if req.preferred_at < datetime.now(UTC):
        raise invalid("preferred_at", "a time in the future")
    from affairs import forms

    clean = forms.validate(m.form, dict(req.form), elicence_ok=lambda _: False, today=clock.utc_today())
    row = await repo.insert_enterprise_request(
        res.db,
        id=uuid.uuid4(),
        enterprise_id=req.enterprise_id,
        person_id=uuid.UUID(person_id),
        service=clean["service"],
        detail=clean["detail"],
        preferred_at=req.preferred_at,
        progress=[{"status": "submitted", "at": datetime.now(UTC).isoformat(), "note": ""}],
    )
    return _req_view(row)


async def enterprise_requests(
    res: Resources, person_id: str, enterprise_id: uuid.UUID, *, cursor: str | None, limit: int
) -> EnterpriseRequestList:
    await _as_handler(res, person_id, enterprise_id)
    at, rid = decode_cursor(cursor)
    rows = await repo.enterprise_requests(res.db, enterprise_id, (at, rid) if at and rid else None, limit)
    nxt = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return EnterpriseRequestList([_req_view(r) for r in rows], nxt)


async def progress_request(res: Resources, request_id: uuid.UUID, status: str, note: str) -> EnterpriseRequestView:
    """The police side records progress (business-system API); the handler who asked is told."""
    entry = {"status": status, "at": datetime.now(UTC).isoformat(), "note": note}
    row = await repo.progress_enterprise_request(res.db, request_id, status, entry)
    if row is None:
        raise not_found("open request")
    await notify(
        res,
        str(row["person_id"]),
        template="enterprise_request",
        params={"service": row["service"], "status": status},
        source="affairs",
        idempotency_key=f"entreq:{request_id}:{status}:{len(row['progress'])}",
    )
    return _req_view(row)


async def rate_enterprise_request(res: Resources, person_id: str, request_id: uuid.UUID, req: RatingIn) -> RatingView:
    row = await repo.get_enterprise_request(res.db, request_id)
    if row is None:
        raise not_found("request")
    await _as_handler(res, person_id, row["enterprise_id"])
    if row["status"] not in ("visited", "closed"):
        raise ProblemError(409, "not-finished", "Rate once served", "服务完成后方可评价", row["status"])
    return await svc.rate(res, person_id, f"ent:{request_id}", f"{regions.PROVINCE_CODE}.other", req)


async def rectifications(res: Resources, org_code: str, *, cursor: str | None, limit: int) -> RectificationList:
    at, xid = decode_cursor(cursor)
    rows = await repo.rectifications(res.db, org_code, (at, xid) if at and xid else None, limit)
    nxt = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return RectificationList(
        [
            RectificationView(
                r["id"], r["subject"], r["org_code"], r["level"], list(r["tags"]), r["status"], r["created_at"]
            )
            for r in rows
        ],
        nxt,
    )


async def notifications(res: Resources, person_id: str, limit: int) -> NotificationList:
    rows = await repo.notifications(res.db, uuid.UUID(person_id), limit)
    return NotificationList([NotificationView(r["template"], dict(r["params"]), r["created_at"]) for r in rows])


# ---------------------------------------------------------------- no-criminal-record (Ministry platform)

NCR_ID_CTX, NCR_NAME_CTX = "affairs.ncr.id_number", "affairs.ncr.name"


async def receive_ncr(res: Resources, push: NcrPush) -> str:
    if not valid_resident_id(push.id_number.upper()):
        raise invalid("id_number", "not a valid GB 11643 citizen ID number")
    fresh = await repo.insert_ncr(
        res.db,
        uuid.uuid4(),
        push.apply_no,
        res.fields.encrypt(push.id_number.upper(), context=NCR_ID_CTX),
        res.fields.encrypt(push.name, context=NCR_NAME_CTX),
        push.purpose,
    )
    if fresh:
        svc.spawn(process_ncr(res, push.apply_no))
    row = await repo.ncr_by_apply_no(res.db, push.apply_no)
    return str(row["status"]) if row else "received"


async def process_ncr(res: Resources, apply_no: str) -> None:
    """Check the record register, issue the certificate (sealed once eseal lands), answer the Ministry."""
    row = await repo.ncr_by_apply_no(res.db, apply_no)
    if row is None or row["status"] == "fed_back":
        return
    id_number = res.fields.decrypt(row["id_number_enc"], context=NCR_ID_CTX)
    name = res.fields.decrypt(row["name_enc"], context=NCR_NAME_CTX)
    try:
        found = await BizClient(res, "zhian").query("criminal_record", {"id_number": id_number})
        result = "has_record" if found.get("has_record") else "no_record"
        ref = (
            await certificates.issue_no_record(res, apply_no=apply_no, name=name, id_number=id_number)
            if result == "no_record"
            else None
        )
        await repo.set_ncr(res.db, apply_no, result, result, ref)
        await mps_feedback(res, {"apply_no": apply_no, "result": result, "certificate_ref": ref or ""})
        await repo.set_ncr(res.db, apply_no, "fed_back", None, None)
    except ProblemError:
        log.warning("no-criminal-record processing failed; the job retries", extra={"apply_no": apply_no})
