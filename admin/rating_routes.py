"""好差评 in the admin API: the rectification loop of bad ratings (核查 → 整改 or 申诉 → 回访 → a second rating), each
step for the role allowed to act, and the statistics by organisation, item, channel and level (affairs.ratings)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import Parameter

from admin.auth import Guarded, guarded, needs
from admin.guards import admin_of
from affairs import ratings
from affairs.models import CURSOR_PATTERN, PAGE_MAX
from core.filters import TimeParam, time_range
from core.resources import Resources
from orgs.models import AdminPrincipal

Req = Request[Any, Any, Any]
Note = Annotated[str, msgspec.Meta(max_length=500, examples=["已约谈窗口人员并优化叫号流程"])]
Status = Literal["open", "rectifying", "appealed", "rectified", "visiting", "closed"]


class VerifyIn(msgspec.Struct):
    """核查: `rectify` (the complaint stands) or `appeal` (disputed, with grounds, reviewed by someone else)."""

    decision: Literal["rectify", "appeal"]
    note: Note = ""


class AppealReviewIn(msgspec.Struct):
    upheld: bool
    note: Note = ""


class NoteIn(msgspec.Struct):
    note: Note = ""


def actor(request: Req) -> ratings.Actor:
    p: AdminPrincipal = admin_of(request)
    return ratings.Actor(id=str(p.id), username=p.username, org_path=p.org_path, data_scope=p.data_scope)


class Rectifications(Guarded):
    """Bad ratings' rectification: read (ratings.read), verify and rectify (ratings.handle, the handling
    organisation), review an appeal (ratings.review), return visit (ratings.visit)."""

    path = "/v1/ratings/rectifications"
    tags = ("ratings",)

    @get(summary="Rectifications in my scope, newest first", **needs("ratings.read"))
    async def list_rectifications(
        self,
        request: Req,
        res: Resources,
        status: Status | None = None,
        cursor: Annotated[str | None, Parameter(pattern=CURSOR_PATTERN)] = None,
        limit: Annotated[int, Parameter(ge=1, le=PAGE_MAX)] = PAGE_MAX,
    ) -> ratings.RectificationPage:
        return await ratings.list_rectifications(res, actor(request), status, cursor, limit)

    @get("/{rect_id:uuid}", summary="One rectification with its steps and deadline", **needs("ratings.read"))
    async def get_rectification(self, request: Req, res: Resources, rect_id: uuid.UUID) -> ratings.RectificationDetail:
        return await ratings.get_rectification(res, actor(request), rect_id)

    @post(
        "/{rect_id:uuid}/verification",
        status_code=200,
        summary="核查 (within 1 day): rectify, or appeal with grounds",
        **needs("ratings.handle", "ratings.verify"),
    )
    async def verify(
        self, request: Req, res: Resources, rect_id: uuid.UUID, data: VerifyIn
    ) -> ratings.RectificationDetail:
        return await ratings.verify(res, actor(request), rect_id, data.decision, data.note)

    @post(
        "/{rect_id:uuid}/appeal-review",
        status_code=200,
        summary="申诉审核 (within 5 days), by someone other than the appellant",
        **needs("ratings.review", "ratings.appeal.review"),
    )
    async def review_appeal(
        self, request: Req, res: Resources, rect_id: uuid.UUID, data: AppealReviewIn
    ) -> ratings.RectificationDetail:
        return await ratings.review_appeal(res, actor(request), rect_id, data.upheld, data.note)

    @post(
        "/{rect_id:uuid}/rectification",
        status_code=200,
        summary="整改 done (within 15 days of verification): what was done",
        **needs("ratings.handle", "ratings.rectify"),
    )
    async def rectify(
        self, request: Req, res: Resources, rect_id: uuid.UUID, data: NoteIn
    ) -> ratings.RectificationDetail:
        return await ratings.rectify(res, actor(request), rect_id, data.note)

    @post(
        "/{rect_id:uuid}/visit",
        status_code=200,
        summary="回访 (within 3 days of rectification): SMS to the citizen inviting the one second rating",
        **needs("ratings.visit", "ratings.visit"),
    )
    async def visit(
        self, request: Req, res: Resources, rect_id: uuid.UUID, data: NoteIn
    ) -> ratings.RectificationDetail:
        return await ratings.visit(res, actor(request), rect_id, data.note)


@get(
    "/v1/stats/ratings",
    summary="好差评 statistics by organisation, item, channel or level (in my scope)",
    tags=["stats"],
    **guarded("stats.read"),
)
async def rating_stats(
    request: Req,
    res: Resources,
    group: Literal["org", "item", "channel", "level"] = "org",
    since: TimeParam = None,
    until: TimeParam = None,
) -> ratings.RatingStats:
    return await ratings.stats(res, actor(request), group, *time_range(since, until))


@get("/v1/ratings/outbox", summary="The 好差评 outbox: reports pending, failing, delivered", tags=["ratings"],
     **guarded("monitor.read"))  # fmt: skip
async def rating_outbox(res: Resources) -> ratings.OutboxState:
    return await ratings.outbox_state(res)


ROUTES: list[Any] = [Rectifications, rating_stats, rating_outbox]
