"""苏证通 Affairs: `create_app` builds the Litestar app mounted at `/affairs` — the handling engine's API for the
parties outside: business systems (status callbacks, progress, attendance, rectifications), the Ministry platform
(no-criminal-record applications), the payment channels (notifications) and the cities (their links). Every
request is signed per the adapter protocol (affairs.signing), except the payment notifications, which carry their
channel's own signature."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post, put
from litestar.params import Parameter

from affairs import bookings, extras, payments, ratings, repo, service, signing
from affairs.models import (
    CURSOR_PATTERN,
    PAGE_MAX,
    CallbackAck,
    CallbackIn,
    CityLink,
    EnterpriseRequestView,
    NcrAck,
    NcrPush,
    Reconciliation,
    RectificationList,
    RequestProgressIn,
)
from core.app import build_app
from core.crypto import sm3
from core.problems import ProblemError
from core.resources import Resources
from core.settings import Settings

MOUNT = "affairs"
log = logging.getLogger("szt.affairs.api")
Req = Request[Any, Any, Any]
SIGNED = "Signed per szt-biz/1: X-Szt-System, X-Szt-Timestamp, X-Szt-Nonce, X-Szt-Signature (HMAC-SM3)."
Cursor = Annotated[str | None, Parameter(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")]


async def signed_by(request: Req, res: Resources, allowed: tuple[str, ...] | None = None) -> str:
    """The calling system, once its signature, timestamp and nonce check out; otherwise 401, recorded."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    system = headers.get("x-szt-system", "")
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    reason: str | None
    if not signing.SYSTEM_RE.match(system) or (allowed is not None and system not in allowed):
        reason = "unknown-system"
    else:
        reason = signing.check(signing.system_key(res.settings.var_path, system), headers, request.method, path, body)
    if reason is None:
        fresh = await res.redis.set(
            f"affairs:nonce:{system}:{headers['x-szt-nonce']}", b"1", nx=True, ex=signing.NONCE_TTL
        )
        if not fresh:
            reason = "replayed"
    if reason is not None:
        ip = request.client.host if request.client else ""
        await repo.refuse_callback(res.db, system or "?", reason, sm3(body).hex(), ip)
        log.warning("signed request refused", extra={"system": system[:32], "reason": reason, "path": path[:200]})
        raise ProblemError(401, "bad-signature", "Request signature refused", "签名校验失败", reason)
    return system


@post(
    "/v1/callbacks/{system:str}",
    status_code=200,
    summary="Status callback of a business system",
    description=SIGNED,
    tags=["cases"],
)
async def callback(request: Req, res: Resources, system: str, data: CallbackIn) -> CallbackAck:
    await signed_by(request, res, (system,))
    status, changed = await service.apply_callback(
        res, system, data.ref, data.case_no, data.status, data.note, list(data.materials)
    )
    return CallbackAck(data.case_no, status, changed)


@post(
    "/v1/mps/applications",
    status_code=202,
    summary="Ministry push: a no-criminal-record application",
    description=SIGNED,
    tags=["ministry"],
)
async def mps_application(request: Req, res: Resources, data: NcrPush) -> NcrAck:
    await signed_by(request, res, ("mps",))
    return NcrAck(data.apply_no, await extras.receive_ncr(res, data))


@post(
    "/v1/enterprise-requests/{request_id:uuid}/progress",
    summary="Police side records progress of an enterprise service request",
    description=SIGNED,
    tags=["enterprise"],
)
async def enterprise_progress(
    request: Req, res: Resources, request_id: uuid.UUID, data: RequestProgressIn
) -> EnterpriseRequestView:
    await signed_by(request, res)
    return await extras.progress_request(res, request_id, data.status, data.note)


@post(
    "/v1/bookings/{booking_id:uuid}/attendance",
    status_code=204,
    summary="The office checked the person in",
    description=SIGNED,
    tags=["appointments"],
)
async def attendance(request: Req, res: Resources, booking_id: uuid.UUID) -> None:
    await signed_by(request, res)
    await bookings.attend(res, booking_id)


class LinkIn(msgspec.Struct):
    url: Annotated[str, msgspec.Meta(min_length=9, max_length=300)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


@put(
    "/v1/city-links/{code:str}/{city_code:str}",
    summary="A city maintains its link for items 8 and 25",
    description=SIGNED + " System: cityops.",
    tags=["links"],
)
async def set_link(request: Req, res: Resources, code: str, city_code: str, data: LinkIn) -> CityLink:
    await signed_by(request, res, ("cityops",))
    return await extras.set_city_link(res, code, city_code, data.url, data.title)


@get(
    "/v1/rectifications",
    summary="Rectification items opened by low ratings, for a handling organisation",
    description=SIGNED,
    tags=["ratings"],
)
async def rectifications(
    request: Req,
    res: Resources,
    org_code: Annotated[str, Parameter(pattern=r"^320000(\.[0-9a-z]{2,16}){0,3}$")],
    cursor: Cursor = None,
    limit: Annotated[int, Parameter(ge=1, le=PAGE_MAX)] = PAGE_MAX,
) -> RectificationList:
    await signed_by(request, res)
    return await extras.rectifications(res, org_code, cursor=cursor, limit=limit)


class SmsReplyIn(msgspec.Struct):
    """The SMS gateway's uplink (上行短信) callback, in the shape of Aliyun SmsUp messages."""

    phone_number: Annotated[str, msgspec.Meta(pattern=r"^1[3-9][0-9]{9}$", examples=["13912345678"])]
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=140, examples=["5"])]
    send_time: Annotated[str, msgspec.Meta(max_length=32, examples=["2026-12-07 18:00:00"])] = ""
    dest_code: Annotated[str, msgspec.Meta(max_length=20)] = ""
    sequence_id: Annotated[int, msgspec.Meta(ge=0)] = 0


class SmsReplyAck(msgspec.Struct):
    code: str
    outcome: str  # rated (the second rating of a return visit) | no-visit | ignored


@post(
    "/v1/sms/replies",
    summary="SMS gateway uplink: a citizen's reply to a return visit (回访), 1–5 being the second rating",
    description=SIGNED + " System: sms.",
    tags=["ratings"],
    status_code=200,
)
async def sms_replies(request: Req, res: Resources, data: SmsReplyIn) -> SmsReplyAck:
    await signed_by(request, res, ("sms",))
    return SmsReplyAck("OK", await ratings.sms_reply(res, data.phone_number, data.content))


@post(
    "/v1/reconciliations/{channel:str}/{bill_date:date}",
    summary="Run the reconciliation of one day now",
    description=SIGNED,
    tags=["payments"],
)
async def run_reconciliation(request: Req, res: Resources, channel: str, bill_date: date) -> Reconciliation:
    await signed_by(request, res)
    if channel not in ("wechat", "alipay"):
        raise ProblemError(404, "not-found", "Not found", "资源不存在", "channel: wechat or alipay")
    return await payments.reconcile(res, bill_date, channel)


@get(
    "/v1/reconciliations/{channel:str}/{bill_date:date}",
    summary="The reconciliation report of one day",
    description=SIGNED,
    tags=["payments"],
)
async def reconciliation(request: Req, res: Resources, channel: str, bill_date: date) -> Reconciliation:
    await signed_by(request, res)
    return await payments.get_reconciliation(res, bill_date, channel)


@post(
    "/v1/pay/wechat/notify", summary="WeChat Pay notification (Wechatpay-Signature)", tags=["payments"], status_code=200
)
async def wechat_notify(request: Req, res: Resources) -> Response[bytes]:
    ok = await payments.wechat_notify(res, dict(request.headers), await request.body())
    if not ok:
        log.warning("payment notification refused", extra={"channel": "wechat"})
        raise ProblemError(
            401, "bad-signature", "Notification signature refused", "通知验签失败", "Wechatpay-Signature"
        )
    return Response(b"", status_code=204)


@post(
    "/v1/pay/alipay/notify",
    summary="Alipay asynchronous notification (RSA2 signed form)",
    tags=["payments"],
    status_code=200,
    media_type=MediaType.TEXT,
)
async def alipay_notify(request: Req, res: Resources) -> str:
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not await payments.alipay_notify(res, form):
        log.warning("payment notification refused", extra={"channel": "alipay"})
        return "fail"
    return "success"


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Affairs",
        description="The unified handling engine's API for business systems, the Ministry platform, payment channels "
        "and cities. " + SIGNED,
        route_handlers=[
            callback,
            mps_application,
            enterprise_progress,
            attendance,
            set_link,
            rectifications,
            sms_replies,
            run_reconciliation,
            reconciliation,
            wechat_notify,
            alipay_notify,
        ],
        externals={
            "biz": f"{settings.simulators_url}/biz/healthz",
            "mps": f"{settings.simulators_url}/mps/healthz",
            "govplatform": f"{settings.govplatform_base}/v1/ping",
            "haocp": f"{settings.haocp_endpoint}/v1/status",
        },
        resources=resources,
    )
