"""The 49 applications in the mini programs: the same affairs.service functions as the app BFF (one data source), so a
case submitted in WeChat or Alipay is the same case the app shows. Applications that need a 网证-level sign-in
accept a face-stepped-up mini session (POST /mini/v1/sessions/step-up)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post

from affairs import (
    govservice,  # the service guides
    service,
)
from affairs.guide_models import Guide
from affairs.models import (
    AppCode,
    AttachmentView,
    Authorisation,
    CaseIn,
    CaseList,
    CaseView,
    FileName,
    IdempotencyKey,
    Manifest,
    PageCursor,
    PageLimit,
    Prefill,
)
from core.idempotency import idempotent
from core.resources import Resources
from identity.facade import Principal
from miniapp_api.session_routes import AUTH

Req = Request[Any, Any, Any]
ATTACHMENT_MAX = service.MAX_ATTACHMENT + 65_536
PATH = "/v1/affairs"
TAG = ["affairs"]
IDEMPOTENT = [idempotent()]  # the answer of a retried write is the stored one


class Apps(Controller):
    """The applications' manifests, for anyone."""

    path = PATH
    tags = TAG

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


class Signed(Controller):
    """Routes of the signed-in person (the mini session; `me` is its person)."""

    tags = TAG
    dependencies = AUTH["dependencies"]
    security = AUTH["security"]


class Mine(Signed):
    """Prefills, authorisations and attachments of a declaration."""

    path = PATH

    @get("/apps/{code:str}/prefill", summary="Form values known already")
    async def prefill(self, res: Resources, me: Principal, code: AppCode) -> Prefill:
        return await service.prefill(res, me.person_id, code, None)

    @post(
        "/apps/{code:str}/authorisation", status_code=204, summary="Authorise the application to use my identity data"
    )
    async def authorise(self, res: Resources, me: Principal, code: AppCode, data: Authorisation) -> None:
        await service.authorise(res, me.person_id, code, list(data.scopes))

    @post(
        "/attachments",
        status_code=201,
        summary="Upload one file (wx.uploadFile / my.uploadFile body; PDF, JPEG or PNG sniffed, at most 4 MiB)",
        request_max_body_size=ATTACHMENT_MAX,
    )
    async def upload(self, request: Req, res: Resources, me: Principal, name: FileName = "file") -> AttachmentView:
        return await service.upload(res, me.person_id, await request.body(), name)


class Cases(Signed):
    """The cases the app shows too (one data source)."""

    path = f"{PATH}/cases"

    @post(status_code=201, summary="Submit an application: one case per Idempotency-Key", middleware=IDEMPOTENT)
    async def submit(self, res: Resources, me: Principal, data: CaseIn, key: IdempotencyKey = None) -> CaseView:
        return await service.submit(res, me.person_id, me.acr, data, key)

    @get(summary="My cases, newest first (a page)")
    async def my_cases(
        self, res: Resources, me: Principal, cursor: PageCursor = None, limit: PageLimit = 10
    ) -> CaseList:
        return await service.my_cases(res, me.person_id, cursor=cursor, limit=limit)

    @get("/{case_id:uuid}", summary="One of my cases")
    async def get_case(self, res: Resources, me: Principal, case_id: uuid.UUID) -> CaseView:
        return await service.get_case(res, me.person_id, case_id)


ROUTES = [Apps, Mine, Cases]
