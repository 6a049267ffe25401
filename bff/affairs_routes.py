"""App endpoints of the 49 applications: manifests, online declaration, cases, appointments, queries, payment,
city links, the police map, self-service car moving and the enterprise platform. Shapes only; the rules are in
affairs.service (the mini programs call the same functions)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post, put
from litestar.params import Parameter

from affairs import bookings, extras, officemap, payments, service
from affairs.models import (
    CURSOR_PATTERN,
    PAGE_MAX,
    AttachmentView,
    Authorisation,
    BookingIn,
    BookingList,
    BookingView,
    CaseIn,
    CaseList,
    CaseView,
    CityLink,
    Draft,
    DraftIn,
    EnterpriseRequestIn,
    EnterpriseRequestList,
    EnterpriseRequestView,
    Manifest,
    ManifestList,
    MoveCarIn,
    MoveCarView,
    NotificationList,
    OfficeList,
    OrderIn,
    OrderView,
    Prefill,
    QueryIn,
    QueryResult,
    RatingIn,
    RatingView,
    RefundIn,
    SlotList,
    SupplementIn,
)
from bff.auth import principal
from core.auth import BEARER_REQUIRED
from core.idempotency import idempotent
from core.resources import Resources
from identity.facade import Principal

Req = Request[Any, Any, Any]
AUTH: dict[str, Any] = {"dependencies": {"me": principal}, "security": BEARER_REQUIRED}
TAG = ["affairs"]
Code = Annotated[str, Parameter(pattern=r"^app-(0[1-9]|[1-4]\d)$", description="app-01 … app-49")]
Cursor = Annotated[str | None, Parameter(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")]
Limit = Annotated[int, Parameter(ge=1, le=PAGE_MAX)]
Region = Annotated[str, Parameter(pattern=r"^32\d{4}$", description="GB/T 2260 region code in Jiangsu")]
ATTACHMENT_MAX = service.MAX_ATTACHMENT + 65_536


@get("/v1/affairs/apps", summary="The 49 applications (current manifest versions)", tags=TAG)
async def list_apps(
    res: Resources,
    kind: Annotated[str | None, Parameter(pattern=r"^[a-z_]{3,16}$")] = None,
    cursor: Annotated[
        str | None, Parameter(pattern=r"^app-\d{2}$", description="last code of the previous page")
    ] = None,
    limit: Limit = PAGE_MAX,
) -> ManifestList:
    return await service.list_manifests(res, kind=kind, cursor=cursor, limit=limit)


@get("/v1/affairs/apps/{code:str}", summary="One application's manifest: form, materials notice, fees", tags=TAG)
async def get_app(res: Resources, code: Code) -> Manifest:
    return await service.manifest(res, code)


@post(
    "/v1/affairs/apps/{code:str}/authorisation",
    status_code=204,
    summary="Authorise the application to use my identity data",
    tags=TAG,
    **AUTH,
)
async def authorise(res: Resources, me: Principal, code: Code, data: Authorisation) -> None:
    await service.authorise(res, me.person_id, code, list(data.scopes))


@get(
    "/v1/affairs/apps/{code:str}/prefill",
    summary="Form values from my identity, previous case and e-licences",
    tags=TAG,
    **AUTH,
)
async def prefill(res: Resources, me: Principal, code: Code, enterprise_id: uuid.UUID | None = None) -> Prefill:
    return await service.prefill(res, me.person_id, code, str(enterprise_id) if enterprise_id else None)


@put("/v1/affairs/drafts/{code:str}", summary="Save my draft (send the revision it is based on)", tags=TAG, **AUTH)
async def save_draft(res: Resources, me: Principal, code: Code, data: DraftIn) -> Draft:
    return await service.save_draft(res, me.person_id, code, data)


@get("/v1/affairs/drafts/{code:str}", summary="My draft, from any of my devices", tags=TAG, **AUTH)
async def get_draft(res: Resources, me: Principal, code: Code) -> Draft:
    return await service.get_draft(res, me.person_id, code)


@post(
    "/v1/affairs/attachments",
    status_code=201,
    summary="Upload one file (PDF, JPEG or PNG, sniffed from its content; at most 4 MiB)",
    tags=TAG,
    request_max_body_size=ATTACHMENT_MAX,
    **AUTH,
)
async def upload(
    request: Req,
    res: Resources,
    me: Principal,
    x_filename: Annotated[str, Parameter(header="X-Filename", max_length=100)] = "file",
) -> AttachmentView:
    # The raw body (application/octet-stream), capped by request_max_body_size above.
    return await service.upload(res, me.person_id, await request.body(), x_filename)


@post(
    "/v1/affairs/cases",
    status_code=201,
    summary="Submit an application: one case per Idempotency-Key",
    tags=TAG,
    middleware=[idempotent()],
    **AUTH,
)
async def submit(
    res: Resources,
    me: Principal,
    data: CaseIn,
    idempotency_key: Annotated[str | None, Parameter(header="Idempotency-Key", max_length=255)] = None,
) -> CaseView:
    return await service.submit(res, me.person_id, me.acr, data, idempotency_key)


@get("/v1/affairs/cases", summary="My cases, newest first", tags=TAG, **AUTH)
async def my_cases(res: Resources, me: Principal, cursor: Cursor = None, limit: Limit = 20) -> CaseList:
    return await service.my_cases(res, me.person_id, cursor=cursor, limit=limit)


@get("/v1/affairs/cases/{case_id:uuid}", summary="One of my cases with every status change", tags=TAG, **AUTH)
async def get_case(res: Resources, me: Principal, case_id: uuid.UUID) -> CaseView:
    return await service.get_case(res, me.person_id, case_id)


@post(
    "/v1/affairs/cases/{case_id:uuid}/withdrawal",
    status_code=200,
    summary="Withdraw my case before it is accepted",
    tags=TAG,
    **AUTH,
)
async def withdraw(res: Resources, me: Principal, case_id: uuid.UUID) -> CaseView:
    return await service.withdraw(res, me.person_id, case_id)


@post(
    "/v1/affairs/cases/{case_id:uuid}/supplement",
    status_code=200,
    summary="Supply the materials asked for",
    tags=TAG,
    **AUTH,
)
async def supplement(res: Resources, me: Principal, case_id: uuid.UUID, data: SupplementIn) -> CaseView:
    return await service.supplement(res, me.person_id, case_id, dict(data.form))


@post(
    "/v1/affairs/cases/{case_id:uuid}/rating",
    status_code=201,
    summary="Rate a finished case (好差评), once",
    tags=TAG,
    **AUTH,
)
async def rate_case(res: Resources, me: Principal, case_id: uuid.UUID, data: RatingIn) -> RatingView:
    return await service.rate_case(res, me.person_id, case_id, data)


@get("/v1/affairs/apps/{code:str}/offices", summary="Offices where an appointment item is served", tags=TAG)
async def offices(res: Resources, code: Code, region: Region | None = None) -> OfficeList:
    return await bookings.list_offices(res, code, region)


@get(
    "/v1/affairs/apps/{code:str}/slots", summary="Bookable times at an office for the next two weeks", tags=TAG, **AUTH
)
async def slots(res: Resources, me: Principal, code: Code, office_id: uuid.UUID) -> SlotList:
    return await bookings.list_slots(res, code, office_id)


@post("/v1/affairs/bookings", status_code=201, summary="Book a time", tags=TAG, middleware=[idempotent()], **AUTH)
async def book(res: Resources, me: Principal, data: BookingIn) -> BookingView:
    return await bookings.book(res, me.person_id, me.acr, data)


@get("/v1/affairs/bookings", summary="My bookings, newest first", tags=TAG, **AUTH)
async def my_bookings(res: Resources, me: Principal, cursor: Cursor = None, limit: Limit = 20) -> BookingList:
    return await bookings.my_bookings(res, me.person_id, cursor=cursor, limit=limit)


@post(
    "/v1/affairs/bookings/{booking_id:uuid}/cancellation",
    status_code=200,
    summary="Cancel (until 2 h before; 3 a day)",
    tags=TAG,
    **AUTH,
)
async def cancel(res: Resources, me: Principal, booking_id: uuid.UUID) -> BookingView:
    return await bookings.cancel_booking(res, me.person_id, booking_id)


@post(
    "/v1/affairs/queries/{code:str}",
    status_code=200,
    summary="Run a query item (1, 6, 24, 42, 43, 49)",
    tags=TAG,
    **AUTH,
)
async def run_query(res: Resources, me: Principal, code: Code, data: QueryIn) -> QueryResult:
    return await extras.query(res, me.person_id, code, data)


@get("/v1/affairs/city-links/{code:str}", summary="The link of my city for items 8 and 25", tags=TAG)
async def city_link(res: Resources, code: Code, region: Region) -> CityLink:
    return await extras.city_link(res, code, region)


@post(
    "/v1/affairs/orders",
    status_code=201,
    summary="Create a payment order (item 7)",
    tags=TAG,
    middleware=[idempotent()],
    **AUTH,
)
async def create_order(res: Resources, me: Principal, data: OrderIn) -> OrderView:
    return await payments.create_order(res, me.person_id, me.acr, data)


@get("/v1/affairs/orders/{order_id:uuid}", summary="One of my orders", tags=TAG, **AUTH)
async def get_order(res: Resources, me: Principal, order_id: uuid.UUID) -> OrderView:
    return await payments.get_order(res, me.person_id, order_id)


@post(
    "/v1/affairs/orders/{order_id:uuid}/refund",
    status_code=200,
    summary="Refund a paid order",
    tags=TAG,
    middleware=[idempotent()],
    **AUTH,
)
async def refund(res: Resources, me: Principal, order_id: uuid.UUID, data: RefundIn) -> OrderView:
    return await payments.refund(res, me.person_id, order_id, data)


@get("/v1/affairs/offices/nearby", summary="警务地图: offices near a point, nearest first", tags=TAG)
async def nearby(
    res: Resources,
    lat: Annotated[float, Parameter(ge=30.5, le=35.5)],
    lon: Annotated[float, Parameter(ge=116.0, le=122.5)],
    radius_m: Annotated[int, Parameter(ge=100, le=20_000)] = 5000,
    kind: Annotated[Literal["station", "exit_entry", "vehicle", "detention", "service"] | None, Parameter()] = None,
    limit: Annotated[int, Parameter(ge=1, le=50)] = 20,
) -> OfficeList:
    return await officemap.nearby(res, lat, lon, radius_m, kind, limit)


@post(
    "/v1/affairs/move-car",
    status_code=201,
    summary="自助移车: ask the owner of a blocking car to move it",
    tags=TAG,
    middleware=[idempotent()],
    **AUTH,
)
async def move_car(res: Resources, me: Principal, data: MoveCarIn) -> MoveCarView:
    return await extras.move_car(res, me.person_id, data)


@get(
    "/v1/affairs/move-car/{report_id:uuid}", summary="Status of a move-car report (reporter or owner)", tags=TAG, **AUTH
)
async def get_move_car(res: Resources, me: Principal, report_id: uuid.UUID) -> MoveCarView:
    return await extras.get_move_car(res, me.person_id, report_id)


class OwnerReply(msgspec.Struct):
    status: Literal["moving", "moved"]


@post("/v1/affairs/move-car/{report_id:uuid}/reply", status_code=200, summary="The owner answers", tags=TAG, **AUTH)
async def owner_reply(res: Resources, me: Principal, report_id: uuid.UUID, data: OwnerReply) -> MoveCarView:
    return await extras.owner_reply(res, me.person_id, report_id, data.status)


@post(
    "/v1/affairs/enterprise-requests",
    status_code=201,
    summary="公安服务企业平台: a service request",
    tags=TAG,
    middleware=[idempotent()],
    **AUTH,
)
async def enterprise_request(res: Resources, me: Principal, data: EnterpriseRequestIn) -> EnterpriseRequestView:
    return await extras.enterprise_request(res, me.person_id, me.acr, data)


@get("/v1/affairs/enterprise-requests", summary="An enterprise's service requests (its handlers)", tags=TAG, **AUTH)
async def enterprise_requests(
    res: Resources, me: Principal, enterprise_id: uuid.UUID, cursor: Cursor = None, limit: Limit = 20
) -> EnterpriseRequestList:
    return await extras.enterprise_requests(res, me.person_id, enterprise_id, cursor=cursor, limit=limit)


@post(
    "/v1/affairs/enterprise-requests/{request_id:uuid}/rating",
    status_code=201,
    summary="Rate a served request",
    tags=TAG,
    **AUTH,
)
async def rate_request(res: Resources, me: Principal, request_id: uuid.UUID, data: RatingIn) -> RatingView:
    return await extras.rate_enterprise_request(res, me.person_id, request_id, data)


@get("/v1/affairs/notifications", summary="What the handling engine told me, newest first", tags=TAG, **AUTH)
async def notifications(
    res: Resources, me: Principal, limit: Annotated[int, Parameter(ge=1, le=50)] = 20
) -> NotificationList:
    return await extras.notifications(res, me.person_id, limit)


ROUTES = [
    list_apps, get_app, authorise, prefill, save_draft, get_draft, upload, submit, my_cases, get_case, withdraw,
    supplement, rate_case, offices, slots, book, my_bookings, cancel, run_query, city_link, create_order, get_order,
    refund, nearby, move_car, get_move_car, owner_reply, enterprise_request, enterprise_requests, rate_request,
    notifications,
]  # fmt: skip
