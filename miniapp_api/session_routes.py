"""Sign-in from the mini programs: the platform's login code, a one-time real-name binding, then our sessions."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.params import JSONBody

from core.auth import BEARER_REQUIRED
from core.masking import mask_phone
from core.ratelimit import rate_limit
from core.resources import Resources
from identity.facade import Principal, bindings, models, sessions, sms
from miniapp_api.auth import client_ip, principal
from miniapp_api.models import (
    AlipayLogin,
    BindingRequest,
    MiniSession,
    PhoneRequest,
    PhoneView,
    RefreshRequest,
    SessionTokens,
    SmsCodeRequest,
    SmsCodeSent,
    SteppedUp,
    StepUpRequest,
    WechatLogin,
)
from miniapp_api.platform_errors import alipay_problem, wechat_problem
from platforms.alipay import ALIPAY_APP_ID, AlipayGateway
from platforms.errors import AlipayError, WechatError
from platforms.wechat import WECHAT_APPID, WechatApi
from push import mini as push_mini

Req = Request[Any, Any, Any]
AUTH: dict[str, Any] = {"dependencies": {"me": principal}, "security": BEARER_REQUIRED}
LOGIN_LIMIT = [rate_limit(300, 60, name="mini-login-ip")]


def _tokens(t: models.Tokens) -> SessionTokens:
    return SessionTokens(access_token=t.access_token, refresh_token=t.refresh_token, expires_in=t.expires_in)


async def _answer(res: Resources, result: bindings.ExternalSignIn, platform: str, subject: str) -> MiniSession:
    if result.tokens is None:
        return MiniSession(
            status="binding_required", binding_ticket=result.binding_ticket, expires_in=bindings.TICKET_TTL
        )
    await push_mini.register(res, result.person_id, platform, subject)  # type: ignore[arg-type]
    return MiniSession(status="signed_in", session=_tokens(result.tokens), name_masked=result.name_masked)


@post(
    "/v1/wechat/sessions",
    summary="WeChat sign-in: the wx.login code → code2Session; signed in if bound, else a binding ticket",
    description="The session_key WeChat returns stays on the server, SM4-encrypted; it is never answered or logged.",
    tags=["wechat"],
    status_code=200,
    guards=LOGIN_LIMIT,
)
async def wechat_session(res: Resources, data: JSONBody[WechatLogin]) -> MiniSession:
    try:
        openid, unionid, session_key = await WechatApi(res).code2session(data.code)
    except WechatError as exc:
        raise wechat_problem(exc) from exc
    result = await bindings.sign_in(
        res, provider="wechat", app_id=WECHAT_APPID, subject=openid, union_id=unionid, session_key=session_key
    )
    return await _answer(res, result, "wechat", openid)


@post(
    "/v1/alipay/sessions",
    summary="Alipay sign-in: the my.getAuthCode code → alipay.system.oauth.token (RSA2 both ways)",
    tags=["alipay"],
    status_code=200,
    guards=LOGIN_LIMIT,
)
async def alipay_session(res: Resources, data: JSONBody[AlipayLogin]) -> MiniSession:
    try:
        user_id, open_id = await AlipayGateway(res).oauth_token(data.auth_code)
    except AlipayError as exc:
        raise alipay_problem(exc) from exc
    result = await bindings.sign_in(res, provider="alipay", app_id=ALIPAY_APP_ID, subject=user_id, union_id=open_id)
    return await _answer(res, result, "alipay", user_id)


@post(
    "/v1/bindings",
    summary="One-time real-name binding of the mini-program account: name, ID number, live face (CTID)",
    description="A person new to 苏证通 also gives a phone: WeChat getPhoneNumber `phone_code`, or `phone` + "
    "`sms_code` (from POST /mini/v1/sms-codes).",
    tags=["binding"],
    status_code=200,
    guards=[rate_limit(lambda s: s.enrol_rate_per_ip, 3600, name="mini-bind-ip")],
)
async def bind(request: Req, res: Resources, data: JSONBody[BindingRequest]) -> MiniSession:
    phone, verified = data.phone, False
    if data.phone_code:
        try:
            phone, verified = await WechatApi(res).phone_number(data.phone_code), True
        except WechatError as exc:
            raise wechat_problem(exc, field="phone_code") from exc
    bound = await bindings.bind(
        res,
        ticket=data.binding_ticket,
        name=data.name,
        id_number=data.id_number,
        face_capture=data.face_capture,
        phone=phone,
        sms_code=data.sms_code,
        phone_verified=verified,
        ip=client_ip(request),
    )
    await push_mini.register(res, bound.person_id, bound.provider, bound.subject)  # type: ignore[arg-type]
    return MiniSession(status="signed_in", session=_tokens(bound.tokens), name_masked=bound.name_masked)


@post(
    "/v1/sms-codes",
    summary="An SMS code to verify a new person's phone at binding (Alipay, or WeChat without getPhoneNumber)",
    tags=["binding"],
    status_code=202,
    guards=[rate_limit(lambda s: s.sms_rate_per_ip, 3600, name="sms-codes-ip")],
)
async def sms_code(request: Req, res: Resources, data: JSONBody[SmsCodeRequest]) -> SmsCodeSent:
    await sms.send_code(res, phone=data.phone, purpose="enrol", ip=client_ip(request))
    return SmsCodeSent(expires_in=sms.CODE_TTL, resend_after=sms.RESEND_AFTER)


@post("/v1/sessions/refresh", summary="Rotate the refresh token", tags=["binding"], status_code=200)
async def refresh(res: Resources, data: JSONBody[RefreshRequest]) -> SessionTokens:
    return _tokens(await sessions.refresh(res, data.refresh_token))


@post(
    "/v1/wechat/phone-number",
    summary="getPhoneNumber: the button's code → the phone, shown masked, and whether it is the account's",
    tags=["wechat"],
    status_code=200,
    **AUTH,
)
async def phone_number(res: Resources, me: Principal, data: JSONBody[PhoneRequest]) -> PhoneView:
    try:
        phone = await WechatApi(res).phone_number(data.code)
    except WechatError as exc:
        raise wechat_problem(exc) from exc
    return PhoneView(
        phone_masked=mask_phone(phone), matches_account=await bindings.phone_matches(res, me.person_id, phone)
    )


@post(
    "/v1/sessions/step-up",
    summary="A live face check of the bound person: a new session (acr `wechat+face` / `alipay+face`) that services "
    "needing a 网证-level sign-in accept; the old session ends",
    tags=["binding"],
    status_code=200,
    guards=[rate_limit(lambda s: s.enrol_rate_per_ip, 3600, name="mini-step-up-ip")],
    **AUTH,
)
async def step_up(res: Resources, me: Principal, data: JSONBody[StepUpRequest]) -> SteppedUp:
    tokens = await bindings.step_up(res, me, data.face_capture)
    return SteppedUp(session=_tokens(tokens), acr=tokens.acr)


ROUTES = [wechat_session, alipay_session, bind, sms_code, refresh, phone_number, step_up]
