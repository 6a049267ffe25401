"""好差评 (docs/domains/haocp.md): ratings with the national evaluation fields, the fixed tag list of each level, the
comment's sensitive-word filter, the rectification loop of bad ratings (核查 → 整改 or 申诉 → 回访 → one second
rating), and every rating and step reported to the provincial 好差评 system through an outbox (delivered once, in
the background and by the `haocp.deliver` job) with a reconciliation (`haocp.reconcile`) that repairs drift.

`affairs.service` calls `rate` (first, second and automatic ratings); the admin front door calls the loop's steps
and `stats`."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from affairs import repo
from affairs.haocp import HaocpClient, HaocpError
from affairs.models import RatingIn, RatingView
from core import clock
from core.datascope import can_see, sql_scope
from core.masking import mask_id_number, mask_phone
from core.pagination import decode_cursor, encode_cursor
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources
from identity.facade import SmsClient, people

log = logging.getLogger("szt.affairs.ratings")

# GB/T 39735-2020 5.3: five levels.
LEVELS: dict[int, str] = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD = 2  # 不满意 and 非常不满意 are 差评: tags required, rectification opened
_GOOD = {"办事效率高": "A01", "服务态度好": "A02", "一次办好": "A03", "流程简便": "A04", "材料精简": "A05"}
_GOOD |= {"指引清晰": "A06", "环境舒适": "A07"}
_FAIR = {"办理时间较长": "B01", "指引不够清晰": "B02", "材料较多": "B03", "系统偶有卡顿": "B04", "等候较久": "B05"}
_POOR = {"等待时间长": "C01", "多次跑动": "C02", "材料繁琐": "C03", "服务态度差": "C04", "指引不清": "C05"}
_POOR |= {"系统故障": "C06", "未一次告知": "C07", "超时办结": "C08", "乱收费": "C09"}
# The tags offered at each level (测评内容按评价等级分级展示): name -> code reported as `appraisald`.
TAGS: dict[int, dict[str, str]] = {5: _GOOD, 4: _GOOD, 3: _FAIR, 2: _POOR, 1: _POOR}
# 评价渠道 (`pf`) and 评价方式 (`evaluateType`) as reported.
CHANNELS: dict[str, str] = {
    "pc": "1",
    "app": "2",
    "miniapp": "3",
    "window": "4",
    "kiosk": "5",
    "phone": "6",
    "sms": "7",
}
METHODS: dict[str, str] = {"active": "1", "sms": "2", "default": "3"}
AUTO_LEVEL = 4  # 满意: the default rating of a case left unrated for 15 days (003's rule)

# The loop's deadlines: verification within 1 day, rectification within 15 days of verification (国办发〔2019〕51号:
# 差评 rectified and fed back within 15 working days, counted here in calendar days), an appeal reviewed within 5
# days, the return visit within 3 days of rectification, the second rating within 7 days of the visit.
VERIFY_WITHIN = timedelta(days=1)
RECTIFY_WITHIN = timedelta(days=15)
REVIEW_WITHIN = timedelta(days=5)
VISIT_WITHIN = timedelta(days=3)
SECOND_WITHIN = timedelta(days=7)
STEP_NAMES = {
    "opened": "差评",
    "verify": "核查",
    "rectify": "整改",
    "appeal": "申诉",
    "appeal_review": "申诉审核",
    "visit": "回访",
    "second_rating": "再评价",
    "sync": "对账",
}

# The comment filter: words refused outright (the comment is not stored: 422 naming `comment`), words masked with
# ＊ (stored and reported masked), and personal numbers (phones, ID numbers) masked as core.masking does.
REFUSED_WORDS = ("法轮", "代办包过", "加微信", "刷单", "赌博", "博彩", "枪支出售")
MASKED_WORDS = ("垃圾", "傻逼", "傻B", "他妈的", "混蛋", "王八蛋", "废物", "狗官", "去死")
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ID = re.compile(r"(?<![0-9Xx])\d{17}[\dXx](?![0-9Xx])")

OUTBOX_LEASE_S = 60
BACKOFF_FIRST_S = 5
BACKOFF_MAX_S = 3600
PHONE_CTX = "rating-visit-phone"
_pending: set[asyncio.Task[None]] = set()


def filter_comment(text: str) -> tuple[str, bool]:
    """The comment as stored and reported, and whether anything was masked; 422 when it must be refused."""
    for word in REFUSED_WORDS:
        if word.lower() in text.lower():
            raise ProblemError(
                422, "comment-refused", "Comment refused", "评价内容含违规信息", f"not allowed: {word}", field="comment"
            )
    out = text
    for word in MASKED_WORDS:
        out = re.sub(re.escape(word), "＊" * len(word), out, flags=re.IGNORECASE)
    out = _ID.sub(lambda m: mask_id_number(m.group(0)), out)
    out = _PHONE.sub(lambda m: mask_phone(m.group(0)), out)
    return out, out != text


def check_tags(level: int, tags: list[str], *, required: bool = True) -> list[str]:
    allowed = TAGS[level]
    unknown = [t for t in tags if t not in allowed]
    if unknown:
        raise ProblemError(
            422,
            "bad-tag",
            "Tag not offered at this level",
            "该评价等级下无此标签",
            f"{'、'.join(unknown)} is not a tag of level {level} ({LEVELS[level]}); offered: {'、'.join(allowed)}",
            field="tags",
        )
    if required and level <= BAD and not tags:
        raise invalid("tags", "say what went wrong: tags are required for the two lowest levels")
    return sorted(set(tags))


def _evaluation(
    *,
    subject: str,
    case_no: str,
    item_code: str,
    item_name: str,
    org_code: str,
    channel: str,
    method: str,
    level: int,
    tags: list[str],
    comment: str,
    assess_number: int,
    at: datetime,
) -> dict[str, Any]:
    """One evaluation in the national field names (docs/domains/haocp.md)."""
    return {
        "evaluationId": f"{subject}#{assess_number}",
        "projectNo": case_no or subject,
        "taskCode": item_code,
        "taskName": item_name,
        "deptCode": org_code,
        "pf": CHANNELS[channel],
        "evaluateType": METHODS[method],
        "alternate": level,
        "satisfaction": LEVELS[level],
        "appraisald": [TAGS[level][t] for t in tags if t in TAGS[level]],
        "appraisaldName": tags,
        "writingAppraisal": comment,
        "assessNumber": assess_number,
        "assessTime": at.astimezone(UTC).isoformat(),
    }


def _step(
    rect: Any, step: str, status: str, note: str, actor: str, due_at: datetime | None, at: datetime, **more: Any
) -> dict[str, Any]:
    return {
        "projectNo": rect["case_no"] or rect["subject"],
        "rectifyId": str(rect["id"]),
        "step": step,
        "stepName": STEP_NAMES[step],
        "rectifyStatus": status,
        "note": note,
        "handler": actor,
        "deptCode": rect["org_code"],
        "handleTime": at.astimezone(UTC).isoformat(),
        "deadline": due_at.astimezone(UTC).isoformat() if due_at else None,
        "overdue": bool(rect["due_at"] and at > rect["due_at"]),
        **more,
    }


def spawn_delivery(res: Resources) -> None:
    """Try the outbox now, after answering; what fails waits for the job."""
    try:
        task = asyncio.get_running_loop().create_task(_deliver_quietly(res))
    except RuntimeError:
        return
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _deliver_quietly(res: Resources) -> None:
    try:
        await deliver(res)
    except Exception:  # the job retries whatever this left
        log.exception("haocp delivery failed")


# ---------------------------------------------------------------- rating


async def rate(
    res: Resources,
    person_id: str,
    subject: str,
    org_code: str,
    req: RatingIn,
    *,
    automatic: bool = False,
    case_no: str = "",
    item_code: str = "",
    item_name: str = "",
) -> RatingView:
    """The first rating of a subject; a second one when its rectification awaits it (回访 done); else 409."""
    channel = req.channel or "app"
    method = "default" if automatic else (req.method or "active")
    tags = check_tags(req.level, list(req.tags))
    comment, masked = filter_comment(req.comment)
    now = clock.now()
    async with res.db.acquire() as conn, conn.transaction():
        ok = await repo.insert_rating(
            conn,
            subject=subject,
            person_id=uuid.UUID(person_id),
            org_code=org_code,
            level=req.level,
            tags=tags,
            comment=comment,
            automatic=automatic,
            channel=channel,
            method=method,
            item_code=item_code,
            case_no=case_no,
            comment_masked=masked,
        )
        if not ok:
            return await _second(res, conn, person_id, subject, req, tags, comment, channel)
        payload = _evaluation(
            subject=subject,
            case_no=case_no,
            item_code=item_code,
            item_name=item_name,
            org_code=org_code,
            channel=channel,
            method=method,
            level=req.level,
            tags=tags,
            comment=comment,
            assess_number=1,
            at=now,
        )
        await repo.haocp_enqueue(conn, f"eval:{subject}:1", "evaluation", subject, payload)
        low = req.level <= BAD
        if low:
            rid = await repo.open_rectification(conn, subject, org_code, uuid.UUID(person_id), now + VERIFY_WITHIN)
            rect = await repo.rectification(conn, rid) if rid else None
            if rect is not None:
                step = _step(rect, "opened", "open", "差评待核查", "system", now + VERIFY_WITHIN, now)
                await repo.move_rectification(conn, rect["id"], "open", None, step)
                await repo.haocp_enqueue(conn, f"rect:{rect['id']}:opened", "rectification", subject, step)
    spawn_delivery(res)
    return RatingView(subject, req.level, tags, automatic, low, channel=channel, comment=comment, masked=masked)


async def _second(
    res: Resources, conn: Any, person_id: str, subject: str, req: RatingIn, tags: list[str], comment: str, channel: str
) -> RatingView:
    rect = await repo.rectification_of(conn, subject, lock=True)
    if rect is None or rect["status"] != "visiting" or str(rect["rater"]) != person_id:
        why = "已评价过" if rect is None or rect["second_level"] is None else "已完成再评价"
        raise ProblemError(409, "already-rated", "Already rated", why, field="subject")
    await _record_second(conn, rect, req.level, tags, comment, channel, req.method or "active")
    spawn_delivery(res)
    return RatingView(subject, req.level, tags, False, False, channel=channel, comment=comment, second=True)


async def _record_second(
    conn: Any, rect: Any, level: int, tags: list[str], comment: str, channel: str, method: str
) -> None:
    now = clock.now()
    payload = _evaluation(
        subject=rect["subject"],
        case_no=rect["case_no"],
        item_code=rect["item_code"],
        item_name="",
        org_code=rect["org_code"],
        channel=channel,
        method=method,
        level=level,
        tags=tags,
        comment=comment,
        assess_number=2,
        at=now,
    )
    step = _step(rect, "second_rating", "closed", f"再评价：{LEVELS[level]}", "citizen", None, now, alternate=level)
    await repo.move_rectification(
        conn,
        rect["id"],
        "closed",
        None,
        step,
        second_level=level,
        second_tags=tags,
        second_comment=comment,
        second_channel=channel,
        second_at=now,
    )
    await repo.haocp_enqueue(conn, f"eval:{rect['subject']}:2", "evaluation", rect["subject"], payload)
    await repo.haocp_enqueue(conn, f"rect:{rect['id']}:second_rating", "rectification", rect["subject"], step)


async def sms_reply(res: Resources, phone: str, content: str) -> str:
    """A citizen's reply to the return-visit SMS (the gateway's uplink callback): `1`–`5` is the second rating."""
    m = re.match(r"^\s*([1-5])\b", content)
    if m is None:
        return "ignored"
    index = res.fields.blind_index(phone, context=PHONE_CTX)
    async with res.db.acquire() as conn, conn.transaction():
        found = await repo.visiting_by_phone(conn, index)
        if found is None:
            return "no-visit"
        rect = await repo.rectification(conn, found["id"], lock=True)
        if rect is None or rect["status"] != "visiting":
            return "no-visit"
        await _record_second(conn, rect, int(m.group(1)), [], "", "sms", "sms")
    spawn_delivery(res)
    return "rated"


# ---------------------------------------------------------------- the rectification loop (admin)


class Actor(msgspec.Struct, frozen=True):
    """The administrator acting, as the admin front door passes it (affairs does not import orgs' principal)."""

    id: str
    username: str
    org_path: str
    data_scope: str


class RectEvent(msgspec.Struct, omit_defaults=True):
    step: str
    step_name: str
    status: str
    note: str
    by: str
    at: datetime
    deadline: datetime | None = None
    overdue: bool = False


class RectificationDetail(msgspec.Struct):
    id: uuid.UUID
    subject: str
    case_no: str
    item_code: str
    org_code: str
    level: int
    tags: list[str]
    comment: str
    channel: str
    status: str
    due_at: datetime
    overdue: bool
    events: list[RectEvent]
    second_level: int | None = None
    appeal_upheld: bool = False


class RectificationPage(msgspec.Struct):
    items: list[RectificationDetail]
    next_cursor: str | None = None


def _detail(r: Any) -> RectificationDetail:
    events = [
        RectEvent(
            step=e["step"],
            step_name=e["stepName"],
            status=e["rectifyStatus"],
            note=e["note"],
            by=e["handler"],
            at=datetime.fromisoformat(e["handleTime"]),
            deadline=datetime.fromisoformat(e["deadline"]) if e.get("deadline") else None,
            overdue=bool(e.get("overdue")),
        )
        for e in r["events"]
    ]
    return RectificationDetail(
        id=r["id"],
        subject=r["subject"],
        case_no=r["case_no"],
        item_code=r["item_code"],
        org_code=r["org_code"],
        level=r["level"],
        tags=list(r["tags"]),
        comment=r["comment"],
        channel=r["channel"],
        status=r["status"],
        due_at=r["due_at"],
        overdue=r["status"] != "closed" and clock.now() > r["due_at"],
        events=events,
        second_level=r["second_level"],
        appeal_upheld=r["appeal_upheld"],
    )


async def list_rectifications(
    res: Resources, actor: Actor, status: str | None, cursor: str | None, limit: int
) -> RectificationPage:
    at, xid = decode_cursor(cursor)
    sql, args = sql_scope(actor, "x.org_code", 1)
    rows = await repo.rectifications_page(res.db, sql, args, status, (at, xid) if at and xid else None, limit + 1)
    items = [_detail(r) for r in rows[:limit]]
    nxt = encode_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    return RectificationPage(items, nxt)


async def get_rectification(res: Resources, actor: Actor, rect_id: uuid.UUID) -> RectificationDetail:
    r = await repo.rectification(res.db, rect_id)
    if r is None or not can_see(actor, r["org_code"]):
        raise not_found("rectification")
    return _detail(r)


# step -> (statuses it may act from, permission-holder wording for the 409)
_FROM: dict[str, tuple[str, ...]] = {
    "verify": ("open",),
    "appeal_review": ("appealed",),
    "rectify": ("rectifying",),
    "visit": ("rectified",),
}


async def _act(
    res: Resources,
    actor: Actor,
    rect_id: uuid.UUID,
    step: str,
    decide: Any,
) -> RectificationDetail:
    now = clock.now()
    async with res.db.acquire() as conn, conn.transaction():
        rect = await repo.rectification(conn, rect_id, lock=True)
        if rect is None or not can_see(actor, rect["org_code"]):
            raise not_found("rectification")
        if rect["status"] not in _FROM[step]:
            raise ProblemError(
                409,
                "bad-step",
                "This step does not apply now",
                "当前状态不能进行该操作",
                f"{STEP_NAMES[step]} applies to {'/'.join(_FROM[step])}, the rectification is {rect['status']}",
                field="status",
            )
        status, due, note, extra, more = await decide(conn, rect, now)
        event = _step(rect, step, status, note, f"{actor.username}({actor.id})", due, now, **more)
        await repo.move_rectification(conn, rect["id"], status, due, event, **extra)
        await repo.haocp_enqueue(conn, f"rect:{rect['id']}:{step}", "rectification", rect["subject"], event)
        fresh = await repo.rectification(conn, rect_id)
    spawn_delivery(res)
    assert fresh is not None
    return _detail(fresh)


async def verify(res: Resources, actor: Actor, rect_id: uuid.UUID, decision: str, note: str) -> RectificationDetail:
    """核查 by the handling organisation: the complaint stands (rectify) or it is disputed (appeal)."""

    async def decide(conn: Any, rect: Any, now: datetime) -> tuple[str, datetime, str, dict[str, Any], dict[str, Any]]:
        if decision == "rectify":
            return "rectifying", now + RECTIFY_WITHIN, note or "核查属实，进入整改", {}, {"finding": "substantiated"}
        return "appealed", now + REVIEW_WITHIN, note, {}, {"finding": "disputed", "appellant": actor.id}

    if decision == "appeal" and not note.strip():
        raise invalid("note", "an appeal states its grounds")
    detail = await _act(res, actor, rect_id, "verify", decide)
    if decision == "appeal":  # the appeal itself, reported as its own step
        detail = await _appeal(res, actor, rect_id, note)
    return detail


async def _appeal(res: Resources, actor: Actor, rect_id: uuid.UUID, note: str) -> RectificationDetail:
    now = clock.now()
    async with res.db.acquire() as conn, conn.transaction():
        rect = await repo.rectification(conn, rect_id, lock=True)
        assert rect is not None
        event = _step(rect, "appeal", "appealed", note, f"{actor.username}({actor.id})", rect["due_at"], now)
        await repo.move_rectification(conn, rect["id"], "appealed", None, event)
        await repo.haocp_enqueue(conn, f"rect:{rect['id']}:appeal", "rectification", rect["subject"], event)
        fresh = await repo.rectification(conn, rect_id)
    assert fresh is not None
    return _detail(fresh)


async def review_appeal(
    res: Resources, actor: Actor, rect_id: uuid.UUID, upheld: bool, note: str
) -> RectificationDetail:
    """申诉审核 by a reviewer who did not lodge the appeal: upheld closes it (the rating leaves the statistics),
    refused sends it to rectification."""

    async def decide(conn: Any, rect: Any, now: datetime) -> tuple[str, datetime, str, dict[str, Any], dict[str, Any]]:
        appellants = [e.get("appellant") for e in rect["events"] if e.get("appellant")]
        if actor.id in appellants:
            raise ProblemError(
                403, "own-appeal", "An appeal is reviewed by someone else", "申诉须由他人审核", field="reviewer"
            )
        if upheld:
            await repo.mark_appeal_upheld(conn, rect["subject"])
            return "closed", now, note or "申诉成立", {}, {"upheld": True}
        return "rectifying", now + RECTIFY_WITHIN, note or "申诉不成立，进入整改", {}, {"upheld": False}

    return await _act(res, actor, rect_id, "appeal_review", decide)


async def rectify(res: Resources, actor: Actor, rect_id: uuid.UUID, note: str) -> RectificationDetail:
    """整改 done, with what was done; the return visit is due next."""
    if not note.strip():
        raise invalid("note", "say what was rectified")

    async def decide(conn: Any, rect: Any, now: datetime) -> tuple[str, datetime, str, dict[str, Any], dict[str, Any]]:
        return "rectified", now + VISIT_WITHIN, note, {}, {}

    return await _act(res, actor, rect_id, "rectify", decide)


async def visit(res: Resources, actor: Actor, rect_id: uuid.UUID, note: str) -> RectificationDetail:
    """回访: an SMS to the citizen through the gateway, inviting the one second rating (in the app, or by replying
    1–5 to the SMS: the gateway's uplink callback)."""

    async def decide(conn: Any, rect: Any, now: datetime) -> tuple[str, datetime, str, dict[str, Any], dict[str, Any]]:
        person = await people.load(res, str(rect["rater"]))
        if not person.phone:
            raise invalid("phone", "the citizen left no phone for the return visit")
        message_id = await SmsClient(res.http, res.settings.simulators_url).send(
            phone=person.phone,
            template="rating_visit",
            params={"case_no": rect["case_no"][:40] or "-", "org": rect["org_code"][:40]},
        )
        extra = {"visit_phone_index": res.fields.blind_index(person.phone, context=PHONE_CTX)}
        text = note or "已短信回访，邀请再评价"
        return "visiting", now + SECOND_WITHIN, text, extra, {"sms": message_id, "phone": mask_phone(person.phone)}

    return await _act(res, actor, rect_id, "visit", decide)


# ---------------------------------------------------------------- the outbox and reconciliation


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_FIRST_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


async def deliver(res: Resources, now: datetime | None = None, limit: int = 200) -> int:
    """Send the due reports; each one delivered is marked, each one refused comes due again after a backoff."""
    now = now or clock.now()
    rows = await repo.haocp_claim(res.db, now, OUTBOX_LEASE_S, limit)
    if not rows:
        return 0
    client = HaocpClient(res)
    sent = 0
    for row in rows:
        try:
            await client.report(row["kind"], row["key"], row["payload"])
        except HaocpError as exc:
            wait = backoff(row["attempts"]) if exc.retry else timedelta(seconds=BACKOFF_MAX_S)
            await repo.haocp_failed(res.db, row["key"], clock.now() + wait, str(exc))
            continue
        await repo.haocp_delivered(res.db, row["key"])
        sent += 1
    return sent


class OutboxState(msgspec.Struct):
    pending: int
    failing: int
    delivered: int
    oldest_pending: datetime | None


async def outbox_state(res: Resources) -> OutboxState:
    r = await repo.haocp_backlog(res.db)
    return OutboxState(r["pending"], r["failing"], r["delivered"], r["oldest_pending"])


class Drift(msgspec.Struct):
    checked: int
    repaired: list[str]


async def reconcile(res: Resources, days: int = 30, batch: int = 100) -> Drift:
    """Compare what the system holds for each rated case of the last `days` with ours; where it lacks a case or
    differs (level, evaluation count, rectification state), enqueue repair reports built from our rows."""
    rows = await repo.haocp_reconcilable(res.db, clock.now() - timedelta(days=days), 5000)
    client = HaocpClient(res)
    repaired: list[str] = []
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        theirs = await client.query([r["case_no"] for r in chunk])
        for r in chunk:
            want = (2 if r["second_at"] else 1, r["second_level"] or r["level"], r["rect_status"] or "")
            got = theirs.get(r["case_no"])
            if got is not None and (got.assessNumber, got.alternate, got.rectifyStatus) == want:
                continue
            await _repair(res, r["subject"], want)
            repaired.append(r["case_no"])
    if repaired:
        log.warning("haocp drift repaired", extra={"count": len(repaired)})
        spawn_delivery(res)
    return Drift(len(rows), repaired)


async def _repair(res: Resources, subject: str, want: tuple[int, int, str]) -> None:
    n = await repo.haocp_repairs(res.db, subject) + 1
    reports = await repo.haocp_outbox_of(res.db, subject)
    evaluations = {r["payload"]["assessNumber"]: r["payload"] for r in reports if r["kind"] == "evaluation"}
    async with res.db.acquire() as conn, conn.transaction():
        for number in sorted(evaluations):
            await repo.haocp_enqueue(
                conn, f"recon:{subject}:{n}:eval{number}", "evaluation", subject, evaluations[number]
            )
        rect = await repo.rectification_of(conn, subject)
        if rect is not None:
            now = clock.now()
            step = _step(rect, "sync", want[2], "对账修复：以本方状态为准", "system", None, now)
            await repo.haocp_enqueue(conn, f"recon:{subject}:{n}:sync", "rectification", subject, step)


# ---------------------------------------------------------------- statistics


class StatRow(msgspec.Struct):
    key: str
    total: int
    levels: dict[str, int]
    average: float
    automatic: int
    rectifications: int
    closed: int
    second_ratings: int


class RatingStats(msgspec.Struct):
    group: str
    items: list[StatRow]


async def stats(
    res: Resources, actor: Actor, group: str, since: datetime | None, until: datetime | None
) -> RatingStats:
    sql, args = sql_scope(actor, "r.org_code", 1)
    rows = await repo.rating_stats(res.db, group, sql, args, since, until)
    items = [
        StatRow(
            key=r["key"] if group != "level" else f"{r['key']} {LEVELS[int(r['key'])]}",
            total=r["total"],
            levels={LEVELS[n]: r[f"l{n}"] for n in (5, 4, 3, 2, 1)},
            average=r["average"] or 0.0,
            automatic=r["automatic"],
            rectifications=r["rectifications"],
            closed=r["closed"],
            second_ratings=r["second_ratings"],
        )
        for r in rows
    ]
    return RatingStats(group, items)
