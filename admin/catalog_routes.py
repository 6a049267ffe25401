"""Admin API of app onboarding: icons, applications and new versions, review, listing, visibility, home layout.

Every route checks its permission (admin.guards.require) and passes the administrator to catalog.service, which
applies the data scope (an administrator sees and changes only apps of organisations in its scope).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post, put
from litestar.params import JSONBody, Parameter

from admin.auth import Guarded, needs
from admin.guards import admin_of
from catalog import icons, service
from catalog.models import (
    Application,
    AppView,
    IconRef,
    LayoutUpdate,
    Listing,
    Notification,
    Review,
    ReviewOutcome,
    VersionPage,
    VersionView,
    Visibility,
)
from core.idempotency import IdempotencyKey, idempotent
from core.pagination import MAX_PAGE
from core.problems import ProblemError
from core.resources import Resources

Req = Request[Any, Any, Any]
IDEMPOTENT = [idempotent()]
AppCode = Annotated[str, Parameter(pattern=r"^app-[0-9]{2,6}$", max_length=10)]


class LayoutVersion(msgspec.Struct):
    layout_version: int


class NotificationList(msgspec.Struct):
    items: list[Notification]


def _ip(request: Req) -> str:
    return request.client.host if request.client else ""


class Catalog(Guarded):
    """Every route needs its catalog permission; catalog.service applies the data scope."""

    path = "/v1/catalog"
    tags = ("catalog",)

    @post(
        "/icons",
        summary="Upload an app icon (PNG, checked by content, resized to 48/96/144/192 px)",
        status_code=201,
        request_max_body_size=icons.MAX_BYTES,
        **needs("catalog.app.apply"),
    )
    async def upload_icon(self, request: Req, res: Resources, body: bytes) -> IconRef:
        """The request body is the PNG file itself (`Content-Type: image/png`), at most 512 KB."""
        if len(body) > icons.MAX_BYTES:
            raise ProblemError(413, "payload-too-large", "Request body too large", "请求体过大", field="icon")
        return service.store_icon(res, body)

    @post(
        "/applications",
        summary="Apply to onboard a new app (version 1, waits for review by the level above)",
        status_code=201,
        middleware=IDEMPOTENT,
        **needs("catalog.app.apply"),
    )
    async def apply(
        self, request: Req, res: Resources, data: JSONBody[Application], idempotency_key: IdempotencyKey = None
    ) -> VersionView:
        return await service.apply(res, admin_of(request), data, ip=_ip(request))

    @post(
        "/apps/{code:str}/versions",
        summary="Submit a new version (changed icon, path, scopes, regions …, or a resubmission after rejection)",
        status_code=201,
        middleware=IDEMPOTENT,
        **needs("catalog.app.apply"),
    )
    async def submit_version(
        self,
        request: Req,
        res: Resources,
        code: AppCode,
        data: JSONBody[Application],
        idempotency_key: IdempotencyKey = None,
    ) -> VersionView:
        return await service.submit_version(res, admin_of(request), code, data, ip=_ip(request))

    @get(
        "/versions",
        summary="App versions in my data scope, newest first (e.g. status=pending: the review queue)",
        **needs("catalog.app.list"),
    )
    async def list_versions(
        self,
        request: Req,
        res: Resources,
        status: Literal["pending", "approved", "rejected"] | None = None,
        cursor: Annotated[str | None, Parameter(max_length=60, pattern=r"^[0-9]{1,20}\.[0-9a-f]{32}$")] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 20,
    ) -> VersionPage:
        return await service.versions(res, admin_of(request), status=status, cursor=cursor, limit=limit)

    @post(
        "/versions/{version_id:uuid}/review",
        summary="Approve or reject a pending version (approval publishes it and issues OIDC client credentials once)",
        status_code=200,
        **needs("catalog.app.review"),
    )
    async def review(
        self, request: Req, res: Resources, version_id: uuid.UUID, data: JSONBody[Review]
    ) -> ReviewOutcome:
        return await service.review(res, admin_of(request), version_id, data, ip=_ip(request))

    @get("/apps/{code:str}", summary="One app: its live version and listing state", **needs("catalog.app.list"))
    async def get_app(self, request: Req, res: Resources, code: AppCode) -> AppView:
        return await service.get_app(res, admin_of(request), code)

    @post("/apps/{code:str}/listing", summary="List or delist an app", status_code=200, **needs("catalog.app.delist"))
    async def set_listing(self, request: Req, res: Resources, code: AppCode, data: JSONBody[Listing]) -> AppView:
        return await service.set_listing(res, admin_of(request), code, data.listed, data.reason, ip=_ip(request))

    @put(
        "/apps/{code:str}/visibility",
        summary="Cities where a province-wide app is hidden (a city administrator decides for its own city)",
        **needs("catalog.app.delist"),
    )
    async def set_visibility(self, request: Req, res: Resources, code: AppCode, data: JSONBody[Visibility]) -> AppView:
        return await service.set_visibility(res, admin_of(request), code, data.hidden_cities, ip=_ip(request))

    @get(
        "/apps/{code:str}/notifications",
        summary="Notifications sent to the app's organisation (reviews, automatic delisting and relisting)",
        **needs("catalog.app.list"),
    )
    async def notifications(self, request: Req, res: Resources, code: AppCode) -> NotificationList:
        return NotificationList(items=await service.notifications(res, admin_of(request), code))

    @put(
        "/layout",
        summary="Replace one home-screen module's slots for the province or a city",
        **needs("catalog.layout.edit"),
    )
    async def set_layout(self, request: Req, res: Resources, data: JSONBody[LayoutUpdate]) -> LayoutVersion:
        return LayoutVersion(await service.set_layout(res, admin_of(request), data, ip=_ip(request)))


ROUTES = [Catalog]
