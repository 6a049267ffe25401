"""App endpoints of the 49 applications: manifests, online declaration, cases, appointments, queries, payment,
city links, the police map, self-service car moving and the enterprise platform. Shapes only; the rules are in
affairs.service (the mini programs call the same functions)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import Parameter

from affairs import (
    bookings,
    extras,
    govservice,  # the service guides
    officemap,
    payments,
    service,
)
from affairs.guide_models import Guide
from affairs.models import (
    PAGE_MAX,
    AppCode,
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
    FileName,
    IdempotencyKey,
    Manifest,
    ManifestList,
    MoveCarIn,
    MoveCarView,
    NotificationList,
    OfficeList,
    OrderIn,
    OrderView,
    PageCursor,
    PageLimit,
    Prefill,
    QueryIn,
    QueryResult,
    RatingIn,
    RatingView,
    RefundIn,
    SlotList,
    SupplementIn,
)
from bff.auth import SignedIn
from core.idempotency import idempotent
from core.resources import Resources
from identity.facade import Principal

Req = Request[Any, Any, Any]
Region = Annotated[str, Parameter(pattern=r"^32\d{4}$", description="GB/T 2260 region code in Jiangsu")]
# Optional inside the annotation: `Region | None` around an Annotated type loses the pattern check in Litestar.
OptionalRegion = Annotated[str | None, Parameter(pattern=r"^32\d{4}$", description="GB/T 2260 region code in Jiangsu")]
ATTACHMENT_MAX = service.MAX_ATTACHMENT + 65_536
PATH = "/v1/affairs"
TAG = ["affairs"]
IDEMPOTENT = [idempotent()]  # the answer of a retried write is the stored one


class OwnerReply(msgspec.Struct):
    status: Literal["moving", "moved"]


class Public(Controller):
    """What anyone may read: the applications, their offices, the city links and the police map."""

    path = PATH
    tags = TAG

    @get("/apps", summary="The 49 applications (current manifest versions)")
    async def list_apps(
        self,
        res: Resources,
        kind: Annotated[str | None, Parameter(pattern=r"^[a-z_]{3,16}$")] = None,
        cursor: Annotated[
            str | None, Parameter(pattern=r"^app-\d{2}$", description="last code of the previous page")
        ] = None,
        limit: PageLimit = PAGE_MAX,
    ) -> ManifestList:
        return await service.list_manifests(res, kind=kind, cursor=cursor, limit=limit)

    @get("/apps/{code:str}", summary="One application's manifest: form, materials notice, fees")
    async def get_app(self, res: Resources, code: AppCode) -> Manifest:
        return await service.manifest(res, code)

    @get(
        "/apps/{code:str}/guide",
        summary="One application's service guide (办事指南) from the government-service platform",
        description="Conditions, materials, process, places, time limits, fees and FAQ; 404 `no-guide` until the "
        "platform's item catalogue has been pulled.",
    )
    async def get_guide(self, res: Resources, code: AppCode) -> Guide:
        return await govservice.guide(res, code)

    @get("/apps/{code:str}/offices", summary="Offices where an appointment item is served")
    async def offices(self, res: Resources, code: AppCode, region: OptionalRegion = None) -> OfficeList:
        return await bookings.list_offices(res, code, region)

    @get("/city-links/{code:str}", summary="The link of my city for items 8 and 25")
    async def city_link(self, res: Resources, code: AppCode, region: Region) -> CityLink:
        return await extras.city_link(res, code, region)

    @get("/offices/nearby", summary="警务地图: offices near a point, nearest first")
    async def nearby(
        self,
        res: Resources,
        lat: Annotated[float, Parameter(ge=30.5, le=35.5)],
        lon: Annotated[float, Parameter(ge=116.0, le=122.5)],
        radius_m: Annotated[int, Parameter(ge=100, le=20_000)] = 5000,
        kind: Annotated[Literal["station", "exit_entry", "vehicle", "detention", "service"] | None, Parameter()] = None,
        limit: Annotated[int, Parameter(ge=1, le=50)] = 20,
    ) -> OfficeList:
        return await officemap.nearby(res, lat, lon, radius_m, kind, limit)


class Signed(SignedIn):
    """The signed-in citizen's own affairs."""

    tags = TAG


class Mine(Signed):
    """Authorisations, prefills, drafts, attachments, bookable times, queries and notifications."""

    path = PATH

    @post(
        "/apps/{code:str}/authorisation", status_code=204, summary="Authorise the application to use my identity data"
    )
    async def authorise(self, res: Resources, me: Principal, code: AppCode, data: Authorisation) -> None:
        await service.authorise(res, me.person_id, code, list(data.scopes))

    @get("/apps/{code:str}/prefill", summary="Form values from my identity, previous case and e-licences")
    async def prefill(
        self, res: Resources, me: Principal, code: AppCode, enterprise_id: uuid.UUID | None = None
    ) -> Prefill:
        return await service.prefill(res, me.person_id, code, str(enterprise_id) if enterprise_id else None)

    @put("/drafts/{code:str}", summary="Save my draft (send the revision it is based on)")
    async def save_draft(self, res: Resources, me: Principal, code: AppCode, data: DraftIn) -> Draft:
        return await service.save_draft(res, me.person_id, code, data)

    @get("/drafts/{code:str}", summary="My draft, from any of my devices")
    async def get_draft(self, res: Resources, me: Principal, code: AppCode) -> Draft:
        return await service.get_draft(res, me.person_id, code)

    @post(
        "/attachments",
        status_code=201,
        summary="Upload one file (PDF, JPEG or PNG, sniffed from its content; at most 4 MiB)",
        request_max_body_size=ATTACHMENT_MAX,
    )
    async def upload(self, request: Req, res: Resources, me: Principal, name: FileName = "file") -> AttachmentView:
        # The raw body (application/octet-stream), capped by request_max_body_size above.
        return await service.upload(res, me.person_id, await request.body(), name)

    @get("/apps/{code:str}/slots", summary="Bookable times at an office for the next two weeks")
    async def slots(self, res: Resources, me: Principal, code: AppCode, office_id: uuid.UUID) -> SlotList:
        return await bookings.list_slots(res, code, office_id)

    @post("/queries/{code:str}", status_code=200, summary="Run a query item (1, 6, 24, 42, 43, 49)")
    async def run_query(self, res: Resources, me: Principal, code: AppCode, data: QueryIn) -> QueryResult:
        return await extras.query(res, me.person_id, code, data)

    @get("/notifications", summary="What the handling engine told me, newest first")
    async def notifications(
        self, res: Resources, me: Principal, limit: Annotated[int, Parameter(ge=1, le=50)] = 20
    ) -> NotificationList:
        return await extras.notifications(res, me.person_id, limit)


class Cases(Signed):
    """My cases: submit, page through, read, withdraw, supplement, rate."""

    path = f"{PATH}/cases"

    @get(summary="My cases, newest first")
    async def my_cases(
        self, res: Resources, me: Principal, cursor: PageCursor = None, limit: PageLimit = 20
    ) -> CaseList:
        return await service.my_cases(res, me.person_id, cursor=cursor, limit=limit)

    @post(status_code=201, summary="Submit an application: one case per Idempotency-Key", middleware=IDEMPOTENT)
    async def submit(self, res: Resources, me: Principal, data: CaseIn, key: IdempotencyKey = None) -> CaseView:
        return await service.submit(res, me.person_id, me.acr, data, key)

    @get("/{case_id:uuid}", summary="One of my cases with every status change")
    async def get_case(self, res: Resources, me: Principal, case_id: uuid.UUID) -> CaseView:
        return await service.get_case(res, me.person_id, case_id)

    @post("/{case_id:uuid}/withdrawal", status_code=200, summary="Withdraw my case before it is accepted")
    async def withdraw(self, res: Resources, me: Principal, case_id: uuid.UUID) -> CaseView:
        return await service.withdraw(res, me.person_id, case_id)

    @post("/{case_id:uuid}/supplement", status_code=200, summary="Supply the materials asked for")
    async def supplement(self, res: Resources, me: Principal, case_id: uuid.UUID, data: SupplementIn) -> CaseView:
        return await service.supplement(res, me.person_id, case_id, dict(data.form))

    @post("/{case_id:uuid}/rating", status_code=201, summary="Rate a finished case (好差评), once")
    async def rate_case(self, res: Resources, me: Principal, case_id: uuid.UUID, data: RatingIn) -> RatingView:
        return await service.rate_case(res, me.person_id, case_id, data)


class Bookings(Signed):
    path = f"{PATH}/bookings"

    @post(status_code=201, summary="Book a time", middleware=IDEMPOTENT)
    async def book(
        self, res: Resources, me: Principal, data: BookingIn, idempotency_key: IdempotencyKey = None
    ) -> BookingView:
        return await bookings.book(res, me.person_id, me.acr, data)

    @get(summary="My bookings, newest first")
    async def my_bookings(
        self, res: Resources, me: Principal, cursor: PageCursor = None, limit: PageLimit = 20
    ) -> BookingList:
        return await bookings.my_bookings(res, me.person_id, cursor=cursor, limit=limit)

    @post("/{booking_id:uuid}/cancellation", status_code=200, summary="Cancel (until 2 h before; 3 a day)")
    async def cancel(self, res: Resources, me: Principal, booking_id: uuid.UUID) -> BookingView:
        return await bookings.cancel_booking(res, me.person_id, booking_id)


class Orders(Signed):
    path = f"{PATH}/orders"

    @post(status_code=201, summary="Create a payment order (item 7)", middleware=IDEMPOTENT)
    async def create_order(
        self, res: Resources, me: Principal, data: OrderIn, idempotency_key: IdempotencyKey = None
    ) -> OrderView:
        return await payments.create_order(res, me.person_id, me.acr, data)

    @get("/{order_id:uuid}", summary="One of my orders")
    async def get_order(self, res: Resources, me: Principal, order_id: uuid.UUID) -> OrderView:
        return await payments.get_order(res, me.person_id, order_id)

    @post("/{order_id:uuid}/refund", status_code=200, summary="Refund a paid order", middleware=IDEMPOTENT)
    async def refund(
        self, res: Resources, me: Principal, order_id: uuid.UUID, data: RefundIn, idempotency_key: IdempotencyKey = None
    ) -> OrderView:
        return await payments.refund(res, me.person_id, order_id, data)


class MoveCar(Signed):
    """自助移车: the reporter asks, the owner answers."""

    path = f"{PATH}/move-car"

    @post(status_code=201, summary="自助移车: ask the owner of a blocking car to move it", middleware=IDEMPOTENT)
    async def move_car(
        self, res: Resources, me: Principal, data: MoveCarIn, idempotency_key: IdempotencyKey = None
    ) -> MoveCarView:
        return await extras.move_car(res, me.person_id, data)

    @get("/{report_id:uuid}", summary="Status of a move-car report (reporter or owner)")
    async def get_move_car(self, res: Resources, me: Principal, report_id: uuid.UUID) -> MoveCarView:
        return await extras.get_move_car(res, me.person_id, report_id)

    @post("/{report_id:uuid}/reply", status_code=200, summary="The owner answers")
    async def owner_reply(self, res: Resources, me: Principal, report_id: uuid.UUID, data: OwnerReply) -> MoveCarView:
        return await extras.owner_reply(res, me.person_id, report_id, data.status)


class EnterpriseRequests(Signed):
    """公安服务企业平台: an enterprise's handlers request services and rate them."""

    path = f"{PATH}/enterprise-requests"

    @post(status_code=201, summary="公安服务企业平台: a service request", middleware=IDEMPOTENT)
    async def enterprise_request(
        self, res: Resources, me: Principal, data: EnterpriseRequestIn, idempotency_key: IdempotencyKey = None
    ) -> EnterpriseRequestView:
        return await extras.enterprise_request(res, me.person_id, me.acr, data)

    @get(summary="An enterprise's service requests (its handlers)")
    async def enterprise_requests(
        self, res: Resources, me: Principal, enterprise_id: uuid.UUID, cursor: PageCursor = None, limit: PageLimit = 20
    ) -> EnterpriseRequestList:
        return await extras.enterprise_requests(res, me.person_id, enterprise_id, cursor=cursor, limit=limit)

    @post("/{request_id:uuid}/rating", status_code=201, summary="Rate a served request")
    async def rate_request(self, res: Resources, me: Principal, request_id: uuid.UUID, data: RatingIn) -> RatingView:
        return await extras.rate_enterprise_request(res, me.person_id, request_id, data)


ROUTES = [Public, Mine, Cases, Bookings, Orders, MoveCar, EnterpriseRequests]
