"""The OpenID Connect provider's HTTP surface, mounted in the identity app (issuer `<base>/identity`)."""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import AsyncGenerator
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import Body, JSONBody, Parameter
from litestar.response import Redirect, ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from core.auth import BEARER_REQUIRED, credentials
from core.problems import not_found
from core.ratelimit import hit, rate_limit
from core.resources import Resources
from identity import people
from identity.clients import Client
from identity.codes.qr import render_svg
from identity.credentials import sms
from identity.models import Phone, SmsCode, SmsCodeSent
from identity.oidc import authorization, grants, tokens
from identity.oidc.authorization import OAuthRedirectError
from identity.oidc.client_auth import authenticate
from identity.oidc.jose import SM2_ALG, signing_keys
from identity.oidc.scopes import SUPPORTED_SCOPES, claims_for
from identity.oidc.tokens import OAuthError, TokenResponse
from orgs import logs

Req = Request[Any, Any, Any]
Short = Annotated[str | None, Parameter(max_length=512)]
BROWSER_COOKIE = "szt_authreq"


class OAuthErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    error_description: str = ""


def oauth_validation_handler(request: Req, exc: ValidationException) -> Response[OAuthErrorBody]:
    """OAuth endpoints answer malformed requests in OAuth's own error format (RFC 6749 §5.2)."""
    return oauth_error_handler(request, OAuthError("invalid_request", str(exc.detail)[:300]))


OAUTH_VALIDATION: dict[Any, Any] = {ValidationException: oauth_validation_handler}
OAUTH_ERRORS = {
    400: ResponseSpec(OAuthErrorBody, description="OAuth error (RFC 6749 5.2)"),
    401: ResponseSpec(OAuthErrorBody, description="Client authentication failed"),
}


def oauth_error_handler(request: Req, exc: OAuthError) -> Response[OAuthErrorBody]:
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="szt"'
    return Response(OAuthErrorBody(exc.error, exc.description), status_code=exc.status, headers=headers)


async def _client(request: Req, res: Resources, form: dict[str, str], endpoint: str) -> Client:
    """Authenticate the client, then count it against its own rate limit (the IP limit is the route's guard)."""
    client = await authenticate(res, request.headers.get("authorization"), form, f"{_issuer(res)}/{endpoint}")
    await hit(res.redis, grants.client_bucket(client.client_id), res.settings.oidc_rate_per_client, grants.RATE_WINDOW)
    return client


PER_IP = [rate_limit(lambda s: s.oidc_rate_per_ip, grants.RATE_WINDOW, name=grants.IP_BUCKET)]
# What every form-posting OAuth endpoint shares: OAuth error bodies, and the per-address rate limit.
OAUTH_FORM_ENDPOINT: dict[str, Any] = {
    "responses": OAUTH_ERRORS,
    "exception_handlers": OAUTH_VALIDATION,
    "guards": PER_IP,
}


def _ip(request: Req) -> str:
    return request.client.host if request.client else ""


def _issuer(res: Resources) -> str:
    return res.settings.issuer_url


@get("/.well-known/openid-configuration", summary="OpenID Provider metadata", tags=["oidc"], sync_to_thread=False)
def discovery(res: Resources) -> dict[str, Any]:
    iss = _issuer(res)
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "pushed_authorization_request_endpoint": f"{iss}/par",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks",
        "introspection_endpoint": f"{iss}/introspect",
        "revocation_endpoint": f"{iss}/revoke",
        "end_session_endpoint": f"{iss}/logout",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256", SM2_ALG],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": list(authorization.ISSUED_ACRS),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "name",
            "id_number",
            "phone_number",
            "phone_number_verified",
            "over_18",
            "age_band",
            "gender",
        ],
        "authorization_response_iss_parameter_supported": True,
        "require_pushed_authorization_requests": False,
    }


@get("/jwks", summary="JSON Web Key Set (ES256 and SM2)", tags=["oidc"])
async def jwks(res: Resources) -> dict[str, list[dict[str, str]]]:
    return {"keys": (await signing_keys(res)).jwks}


class AuthRequestCreated(msgspec.Struct):
    request_id: str
    qr_payload: str
    expires_in: int


def qr_payload(request_id: str) -> str:
    return "SZTAUTH:" + request_id.upper()


def _page(res: Resources, created: authorization.AuthRequest, client_name: str) -> str:
    svg = render_svg(qr_payload(created.request_id))
    rid = html.escape(created.request_id)
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>苏证通扫码登录</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;text-align:center;margin:3rem}}
.qr svg{{width:260px;height:260px}} .muted{{color:#666}}</style></head><body>
<h1>使用苏证通扫码登录</h1><p>{html.escape(client_name)} 请求登录</p>
<div class="qr">{svg}</div><p class="muted" id="status">请打开苏证通 App 扫描二维码 · Scan with the 苏证通 app</p>
<p class="muted">Request {rid}</p>
<details><summary>没有苏证通 App？用短信验证码登录 · Log in with an SMS code</summary>
<p><input id="phone" inputmode="numeric" maxlength="11" placeholder="手机号">
<button id="send">获取验证码</button></p>
<p><input id="code" inputmode="numeric" maxlength="6" placeholder="验证码"> <button id="login">登录</button></p>
<p class="muted" id="smsmsg"></p></details>
<script>
const es = new EventSource("{html.escape(_issuer(res))}/authorize/{rid}/events");
es.addEventListener("outcome", e => {{ const o = JSON.parse(e.data);
  document.getElementById("status").textContent = o.status === "approved" ? "已确认，正在跳转…" : "已拒绝";
  es.close(); if (o.redirect_to) window.location = o.redirect_to; }});
const base = "{html.escape(_issuer(res))}/authorize/{rid}";
async function call(path, body) {{
  const r = await fetch(base + path, {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                      credentials: "same-origin", body: JSON.stringify(body)}});
  const doc = await r.json(); if (!r.ok) throw new Error(doc.title_zh || doc.title); return doc; }}
document.getElementById("send").onclick = () => call("/sms-code", {{phone: phone.value}})
  .then(() => smsmsg.textContent = "验证码已发送", e => smsmsg.textContent = e.message);
document.getElementById("login").onclick = () => call("/sms-login", {{phone: phone.value, sms_code: code.value}})
  .then(d => window.location = d.redirect_to, e => smsmsg.textContent = e.message);
es.addEventListener("expired", () => {{
  document.getElementById("status").textContent = "二维码已过期，请刷新"; es.close(); }});
</script></body></html>"""


@get(
    "/authorize",
    summary="Authorization endpoint: creates the authorization request",
    tags=["oidc"],
    responses={
        200: ResponseSpec(AuthRequestCreated, description="The request (JSON callers; browsers get a page)"),
        302: ResponseSpec(None, description="Error redirect to the client"),
    },
)
async def authorize(
    request: Req,
    res: Resources,
    response_type: Short = None,
    client_id: Short = None,
    redirect_uri: Short = None,
    oauth_scope: Annotated[str | None, Parameter(query="scope", max_length=512)] = None,
    oauth_state: Annotated[str | None, Parameter(query="state", max_length=512)] = None,
    nonce: Short = None,
    code_challenge: Short = None,
    code_challenge_method: Short = None,
    acr_values: Short = None,
    prompt: Short = None,
    request_uri: Short = None,
) -> Response[Any]:
    params = {
        k: v
        for k, v in {
            "response_type": response_type,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": oauth_scope,
            "state": oauth_state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method,
            "acr_values": acr_values,
            "prompt": prompt,
            "request_uri": request_uri,
        }.items()
        if v is not None
    }
    wants_json = "application/json" in request.headers.get("accept", "")
    browser_secret = "" if wants_json else secrets.token_urlsafe(24)
    try:
        created = await authorization.create(res, params, browser_secret=browser_secret)
    except OAuthRedirectError as exc:
        return Redirect(exc.location, status_code=302)
    expires_in = int(created.expires_at - time.time())
    if wants_json:
        return Response(AuthRequestCreated(created.request_id, qr_payload(created.request_id), expires_in))
    from identity import clients

    client = await clients.get(res, created.client_id, cached=True)
    page = _page(res, created, client.name if client else created.client_id)
    response: Response[Any] = Response(page, media_type=MediaType.HTML)
    response.set_cookie(
        BROWSER_COOKIE,
        browser_secret,
        max_age=authorization.REQUEST_TTL,
        httponly=True,
        samesite="lax",
        path="/identity/authorize",
    )
    return response


@get(
    "/authorize/{request_id:str}/events",
    summary="Server-sent events: the outcome of an authorization request",
    tags=["oidc"],
    media_type="text/event-stream",
)
async def authorize_events(
    request: Req, res: Resources, request_id: Annotated[str, Parameter(pattern=r"^[0-9a-f]{32}$")]
) -> ServerSentEvent:
    created = await authorization.load(res, request_id)
    secret = request.cookies.get(BROWSER_COOKIE, "")
    if created is None or not authorization.check_browser(created, secret):
        raise not_found("authorization request")

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        pubsub = res.redis.pubsub()
        await pubsub.subscribe(f"authreq:{request_id}")
        try:
            current = await authorization.load(res, request_id)
            deadline = created.expires_at
            while current is not None and current.status == "pending" and time.time() < deadline:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=10.0)
                if msg is None:
                    yield ServerSentEventMessage(comment="keep-alive")
                current = await authorization.load(res, request_id)
            if current is not None and current.status != "pending":
                yield ServerSentEventMessage(
                    event="outcome",
                    data=msgspec.json.encode({"status": current.status, "redirect_to": current.redirect_to}).decode(),
                )
            else:
                yield ServerSentEventMessage(event="expired", data="{}")
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    return ServerSentEvent(stream())


class PortalSmsCode(msgspec.Struct):
    phone: Phone


class PortalSmsLogin(msgspec.Struct):
    phone: Phone
    sms_code: SmsCode


class Redirection(msgspec.Struct):
    redirect_to: str


RequestId = Annotated[str, Parameter(pattern=r"^[0-9a-f]{32}$")]


@post(
    "/authorize/{request_id:str}/sms-code",
    summary="Web login without the app: send an SMS code",
    tags=["oidc"],
    status_code=202,
    guards=[rate_limit(10, 600, name="portal-sms-ip")],
)
async def portal_sms_code(
    request: Req, res: Resources, request_id: RequestId, data: JSONBody[PortalSmsCode]
) -> SmsCodeSent:
    await authorization.pending_for_browser(res, request_id, request.cookies.get(BROWSER_COOKIE, ""))
    await sms.send_code(res, phone=data.phone, purpose=authorization.SMS_PURPOSE, ip=_ip(request))
    return SmsCodeSent(expires_in=sms.CODE_TTL, resend_after=sms.RESEND_AFTER)


@post(
    "/authorize/{request_id:str}/sms-login",
    summary="Web login without the app: phone + SMS code",
    tags=["oidc"],
    status_code=200,
    guards=[rate_limit(20, 600, name="portal-sms-login-ip")],
)
async def portal_sms_login(
    request: Req, res: Resources, request_id: RequestId, data: JSONBody[PortalSmsLogin]
) -> Redirection:
    return Redirection(
        await authorization.approve_by_sms(
            res,
            request_id,
            request.cookies.get(BROWSER_COOKIE, ""),
            phone=data.phone,
            code=data.sms_code,
            ip=_ip(request),
        )
    )


class ClientAuthForm(msgspec.Struct):
    """The client-authentication fields every OAuth form endpoint accepts (RFC 6749 2.3.1, RFC 7523)."""

    client_id: str | None = None
    client_secret: str | None = None
    client_assertion: str | None = None
    client_assertion_type: str | None = None


class ParForm(ClientAuthForm):
    response_type: str | None = None
    redirect_uri: str | None = None
    scope: str | None = None
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    acr_values: str | None = None


class ParResponse(msgspec.Struct):
    request_uri: str
    expires_in: int


def _form(data: msgspec.Struct) -> dict[str, str]:
    return {k: v[:2048] for k, v in msgspec.structs.asdict(data).items() if isinstance(v, str)}


URLENCODED = Body(media_type=RequestEncodingType.URL_ENCODED)


@post(
    "/par",
    summary="Pushed authorization request (RFC 9126)",
    tags=["oidc"],
    status_code=201,
    **OAUTH_FORM_ENDPOINT,
)
async def par(request: Req, res: Resources, data: Annotated[ParForm, URLENCODED]) -> ParResponse:
    form = _form(data)
    client = await _client(request, res, form, "par")
    params = {k: v for k, v in form.items() if not k.startswith("client_")}
    return ParResponse(await authorization.push(res, client, params), authorization.PAR_TTL)


class TokenForm(ClientAuthForm):
    """The fields of every grant (identity.oidc.grants.TOKEN_FIELDS)."""

    grant_type: str | None = None
    code: str | None = None
    redirect_uri: str | None = None
    code_verifier: str | None = None
    refresh_token: str | None = None
    scope: str | None = None


@post(
    "/token",
    summary="Token endpoint",
    tags=["oidc"],
    status_code=200,
    **OAUTH_FORM_ENDPOINT,
)
async def token(request: Req, res: Resources, data: Annotated[TokenForm, URLENCODED]) -> Response[TokenResponse]:
    form = _form(data)
    client = await _client(request, res, form, "token")
    grant = form.get("grant_type", "")
    # every call of an identified client goes to the app-integration log (queued in Redis, see orgs.logs)
    async with logs.timed_call(
        res, app_code=client.client_id, interface="/identity/token", ip=_ip(request), detail=grant[:40]
    ):
        result = await grants.run(res, client, form, _ip(request))
    return Response(result, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def _userinfo(request: Req, res: Resources) -> dict[str, Any]:
    bearer = credentials(request.headers.get("authorization"), "bearer")  # the scheme in any case (RFC 9110)
    access = await tokens.lookup(res, bearer) if bearer is not None else None
    if access is None or not access.person_id or "openid" not in access.scopes:
        raise OAuthError("invalid_token", "the access token is not valid", status=401)
    person = await people.load(res, access.person_id)
    return {"sub": access.sub, **claims_for(person, access.scopes, date.today())}


@get("/userinfo", summary="UserInfo", tags=["oidc"], security=BEARER_REQUIRED, responses={401: OAUTH_ERRORS[401]})
async def userinfo_get(request: Req, res: Resources) -> dict[str, Any]:
    return await _userinfo(request, res)


@post(
    "/userinfo",
    summary="UserInfo (POST)",
    tags=["oidc"],
    security=BEARER_REQUIRED,
    status_code=200,
    responses={401: OAUTH_ERRORS[401]},
)
async def userinfo_post(request: Req, res: Resources) -> dict[str, Any]:
    return await _userinfo(request, res)


class TokenHintForm(ClientAuthForm):
    token: str | None = None
    token_type_hint: str | None = None


@post(
    "/introspect",
    summary="Token introspection (RFC 7662)",
    tags=["oidc"],
    status_code=200,
    **OAUTH_FORM_ENDPOINT,
)
async def introspect(request: Req, res: Resources, data: Annotated[TokenHintForm, URLENCODED]) -> dict[str, Any]:
    form = _form(data)
    await _client(request, res, form, "introspect")
    return tokens.introspection(await tokens.lookup(res, form.get("token", "")), _issuer(res))


@post(
    "/revoke",
    summary="Token revocation (RFC 7009)",
    tags=["oidc"],
    status_code=200,
    **OAUTH_FORM_ENDPOINT,
)
async def revoke(request: Req, res: Resources, data: Annotated[TokenHintForm, URLENCODED]) -> None:
    form = _form(data)
    client = await _client(request, res, form, "revoke")
    await tokens.revoke(res, client, form.get("token", ""))


@get(
    "/logout",
    summary="RP-initiated logout; notifies clients by back-channel logout",
    tags=["oidc"],
    media_type=MediaType.HTML,
    responses={302: ResponseSpec(None, description="Back to the client's post_logout_redirect_uri")},
)
async def logout(
    res: Resources,
    id_token_hint: Annotated[str | None, Parameter(max_length=4096)] = None,
    post_logout_redirect_uri: Short = None,
    oauth_state: Annotated[str | None, Parameter(query="state", max_length=512)] = None,
    client_id: Short = None,
) -> Response[Any]:
    from identity.oidc.logout import end_session

    return await end_session(
        res,
        id_token_hint=id_token_hint,
        post_logout_redirect_uri=post_logout_redirect_uri,
        state=oauth_state,
        client_id=client_id,
    )


ROUTES = [
    discovery,
    jwks,
    authorize,
    authorize_events,
    portal_sms_code,
    portal_sms_login,
    par,
    token,
    userinfo_get,
    userinfo_post,
    introspect,
    revoke,
    logout,
]
EXCEPTION_HANDLERS = {OAuthError: oauth_error_handler}
