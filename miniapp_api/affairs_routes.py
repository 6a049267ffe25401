"""The 49 applications in the mini programs: the same affairs.service functions as the app BFF (one data source), so a
case submitted in WeChat or Alipay is the same case the app shows. Applications that need a 网证-level sign-in
accept a face-stepped-up mini session (POST /mini/v1/sessions/step-up)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import Parameter

from affairs import service
from affairs.models import (
    CURSOR_PATTERN,
    PAGE_MAX,
    AttachmentView,
    Authorisation,
    CaseIn,
    CaseList,
    CaseView,
    Manifest,
    Prefill,
)
from core.idempotency import idempotent
from core.resources import Resources
from identity.facade import Principal
from miniapp_api.session_routes import AUTH

Req = Request[Any, Any, Any]
TAG = ["affairs"]
Code = Annotated[str, Parameter(pattern=r"^app-(0[1-9]|[1-4]\d)$", description="app-01 … app-49")]
Cursor = Annotated[str | None, Parameter(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")]
ATTACHMENT_MAX = service.MAX_ATTACHMENT + 65_536


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


@get("/v1/affairs/apps/{code:str}/prefill", summary="Form values known already", tags=TAG, **AUTH)
async def prefill(res: Resources, me: Principal, code: Code) -> Prefill:
    return await service.prefill(res, me.person_id, code, None)


@post(
    "/v1/affairs/attachments",
    status_code=201,
    summary="Upload one file (wx.uploadFile / my.uploadFile body; PDF, JPEG or PNG sniffed, at most 4 MiB)",
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


@get("/v1/affairs/cases", summary="My cases, newest first (a page)", tags=TAG, **AUTH)
async def my_cases(
    res: Resources, me: Principal, cursor: Cursor = None, limit: Annotated[int, Parameter(ge=1, le=PAGE_MAX)] = 10
) -> CaseList:
    return await service.my_cases(res, me.person_id, cursor=cursor, limit=limit)


@get("/v1/affairs/cases/{case_id:uuid}", summary="One of my cases", tags=TAG, **AUTH)
async def get_case(res: Resources, me: Principal, case_id: uuid.UUID) -> CaseView:
    return await service.get_case(res, me.person_id, case_id)


ROUTES = [get_app, authorise, prefill, upload, submit, my_cases, get_case]
