"""Wire shapes of the affairs domain (shared by the app BFF, the mini programs and the business-system API)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar.params import Parameter
from msgspec import Meta

from affairs.guide_models import Guide
from core import idempotency

Code = Annotated[str, Meta(pattern=r"^app-(0[1-9]|[1-4]\d)$", description="application code app-01 … app-49")]
Form = Annotated[dict[str, Annotated[str, Meta(max_length=500)]], Meta(max_length=40)]
Short = Annotated[str, Meta(min_length=1, max_length=100)]
Text = Annotated[str, Meta(max_length=500)]
CURSOR_PATTERN = r"^\d{1,16}\.[0-9a-f]{32}$"
PAGE_MAX = 50
Status = Literal[
    "submitted", "pre_review", "accepted", "handling", "completed", "returned", "supplement_requested", "withdrawn"
]


class ManifestSummary(msgspec.Struct):
    code: str
    version: int
    name: str
    category: str
    kind: str
    subject: str


class ManifestList(msgspec.Struct):
    items: list[ManifestSummary]
    next_cursor: str | None = None


class Manifest(msgspec.Struct):
    code: str
    version: int
    no: int
    name: str
    category: str
    kind: str
    regions: list[str]
    subject: str
    assurance: str
    identity_scopes: list[str]
    form: list[dict[str, Any]]
    materials: list[dict[str, Any]]
    fees: list[dict[str, Any]]
    binding: dict[str, Any]
    note: str = ""
    guide: Guide | None = None  # 办事指南 from the government-service platform (affairs.govservice)


class Authorisation(msgspec.Struct):
    scopes: Annotated[list[Annotated[str, Meta(max_length=20)]], Meta(max_length=5)]


class Prefill(msgspec.Struct):
    form: dict[str, str]
    elicences: dict[str, str]
    authorised: bool


class DraftIn(msgspec.Struct):
    form: Form
    revision: int | None = None  # the revision this save is based on (another device may have saved since)


class Draft(msgspec.Struct):
    code: str
    form: dict[str, str]
    revision: int
    updated_at: datetime


class AttachmentView(msgspec.Struct):
    id: uuid.UUID
    mime: str
    size: int
    sm3: str


class MailingAddress(msgspec.Struct):
    recipient: Annotated[str, Meta(min_length=1, max_length=30)]
    phone: Annotated[str, Meta(pattern=r"^1[3-9]\d{9}$")]
    region_code: Annotated[str, Meta(pattern=r"^32\d{4}$")]
    address: Annotated[str, Meta(min_length=1, max_length=120)]


class CaseIn(msgspec.Struct):
    code: Code
    form: Form
    enterprise_id: uuid.UUID | None = None
    mailing: MailingAddress | None = None


class SupplementIn(msgspec.Struct):
    form: Form


class CaseEvent(msgspec.Struct):
    status: str
    note: str
    source: str
    at: datetime


class CaseView(msgspec.Struct):
    id: uuid.UUID
    case_no: str
    code: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime
    deadline_at: datetime
    materials_requested: list[str] = []
    events: list[CaseEvent] = []
    mailing: dict[str, str] | None = None
    rating: int | None = None


class CaseList(msgspec.Struct):
    items: list[CaseView]
    next_cursor: str | None = None


RatingChannel = Literal["pc", "app", "miniapp", "window", "kiosk", "phone", "sms"]


class RatingIn(msgspec.Struct):
    """A 好差评 rating (GB/T 39735-2020): level 1 非常不满意 … 5 非常满意; tags from the level's fixed list (required
    at levels 1 and 2); the comment goes through the sensitive-word filter (masked, or refused with a 422)."""

    level: Annotated[int, Meta(ge=1, le=5, description="1 非常不满意, 2 不满意, 3 基本满意, 4 满意, 5 非常满意")]
    tags: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=20)]],
        Meta(max_length=8, description="from the level's list, e.g. 等待时间长 at level 2", examples=[["等待时间长"]]),
    ] = []
    comment: Text = ""
    channel: Annotated[RatingChannel | None, Meta(description="评价渠道; the front door's own when left out")] = None
    method: Annotated[Literal["active", "sms"] | None, Meta(description="评价方式 (active: in the app)")] = None


class RatingView(msgspec.Struct):
    subject: str
    level: int
    tags: list[str]
    automatic: bool
    rectification: bool
    channel: str = "app"
    comment: str = ""
    masked: bool = False  # the comment was stored masked by the sensitive-word filter
    second: bool = False  # this was the second rating after a return visit


# ---------------------------------------------------------------- offices, slots, bookings


class OfficeView(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    region_code: str
    address: str
    phone: str
    lat: float
    lon: float
    hours: str
    services: list[str]
    distance_m: int | None = None


class OfficeList(msgspec.Struct):
    items: list[OfficeView]


class SlotView(msgspec.Struct):
    id: uuid.UUID
    office_id: uuid.UUID
    starts_at: datetime
    quota: int
    left: int


class SlotList(msgspec.Struct):
    items: list[SlotView]


class BookingIn(msgspec.Struct):
    code: Code
    slot_id: uuid.UUID
    form: Form


class BookingView(msgspec.Struct):
    id: uuid.UUID
    code: str
    slot_id: uuid.UUID
    office_id: uuid.UUID
    starts_at: datetime
    status: str
    created_at: datetime


class BookingList(msgspec.Struct):
    items: list[BookingView]
    next_cursor: str | None = None


# ---------------------------------------------------------------- queries, links, payments


class QueryIn(msgspec.Struct):
    params: Annotated[dict[str, Annotated[str, Meta(max_length=60)]], Meta(max_length=6)] = {}


class QueryResult(msgspec.Struct):
    code: str
    result: dict[str, Any]


class CityLink(msgspec.Struct):
    code: str
    city_code: str
    title: str
    url: str


class OrderIn(msgspec.Struct):
    item: Short
    channel: Literal["wechat", "alipay"]
    openid: Annotated[str, Meta(max_length=64)] = ""


class OrderView(msgspec.Struct):
    id: uuid.UUID
    out_trade_no: str
    item: str
    amount_fen: int
    channel: str
    status: str
    pay_params: dict[str, str] = {}
    refunded_fen: int = 0
    abnormal: str | None = None


class RefundIn(msgspec.Struct):
    reason: Short = "申请退款"


# ---------------------------------------------------------------- move car, enterprise platform


class MoveCarIn(msgspec.Struct):
    plate: Annotated[str, Meta(pattern=r"^[\u4e00-\u9fa5][A-Z][A-Z0-9]{5,6}$", description="e.g. 苏E12345")]
    location: Annotated[str, Meta(min_length=1, max_length=100)]


class MoveCarView(msgspec.Struct):
    id: uuid.UUID
    plate: str
    status: str
    relay_number: str
    created_at: datetime


class EnterpriseRequestIn(msgspec.Struct):
    enterprise_id: uuid.UUID
    preferred_at: Annotated[datetime, Meta(tz=True)]
    form: Form


class EnterpriseRequestView(msgspec.Struct):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    service: str
    preferred_at: datetime
    status: str
    progress: list[dict[str, str]]
    created_at: datetime


class EnterpriseRequestList(msgspec.Struct):
    items: list[EnterpriseRequestView]
    next_cursor: str | None = None


class NotificationView(msgspec.Struct):
    template: str
    params: dict[str, str]
    created_at: datetime


class NotificationList(msgspec.Struct):
    items: list[NotificationView]


# ---------------------------------------------------------------- business systems (the /affairs API)


class CallbackIn(msgspec.Struct):
    ref: Annotated[str, Meta(min_length=1, max_length=64)]
    case_no: Annotated[str, Meta(min_length=1, max_length=32)]
    status: Status
    note: Text = ""
    materials: Annotated[list[Annotated[str, Meta(max_length=60)]], Meta(max_length=20)] = []


class CallbackAck(msgspec.Struct):
    case_no: str
    status: str
    changed: bool


class RequestProgressIn(msgspec.Struct):
    status: Literal["scheduled", "visited", "closed"]
    note: Text = ""


class NcrPush(msgspec.Struct):
    apply_no: Annotated[str, Meta(min_length=1, max_length=40)]
    name: Annotated[str, Meta(min_length=1, max_length=30)]
    id_number: Annotated[str, Meta(min_length=18, max_length=18)]
    purpose: Short


class NcrAck(msgspec.Struct):
    apply_no: str
    status: str


class RectificationView(msgspec.Struct):
    id: uuid.UUID
    subject: str
    org_code: str
    level: int
    tags: list[str]
    status: str
    created_at: datetime


class RectificationList(msgspec.Struct):
    items: list[RectificationView]
    next_cursor: str | None = None


class Reconciliation(msgspec.Struct):
    bill_date: str
    channel: str
    matched: int
    abnormal: int
    report: list[dict[str, Any]]


# HTTP parameters of the citizens' front doors (the app BFF and the mini programs), declared once for both.
AppCode = Annotated[str, Parameter(pattern=r"^app-(0[1-9]|[1-4]\d)$", description="app-01 … app-49")]
PageCursor = Annotated[str | None, Parameter(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")]
PageLimit = Annotated[int, Parameter(ge=1, le=PAGE_MAX)]
FileName = Annotated[str, Parameter(header="X-Filename", max_length=100)]
IdempotencyKey = idempotency.IdempotencyKey  # the header with the pattern core.idempotency enforces
