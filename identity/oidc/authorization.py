"""The authorization request: the one object behind every user-approved login (portal QR scan, app-to-app quick
login). `GET /identity/authorize` creates it, the app approves or denies it once, the waiting side learns the
outcome (server-sent events for browsers; the `redirect_to` answer for apps)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from urllib.parse import urlencode

import msgspec

from core import audit
from core.problems import ProblemError
from core.redis_client import as_bytes
from core.resources import Resources
from identity import clients, people
from identity import repo as people_repo
from identity.clients import Client
from identity.credentials import sms
from identity.credentials.service import face_check
from identity.errors import forbidden, unprocessable
from identity.oidc import repo
from identity.oidc.scopes import SUPPORTED_SCOPES, grantable
from identity.sessions import ACR_ORDER, Principal

REQUEST_TTL = 300
CODE_TTL = 60
PAR_TTL = 90
FACE_ACR = "wz+face"
SMS_ACR = "sms"  # the web portal's phone + SMS code login (approve_by_sms)
# Every acr an authorization request can end with, so every acr an ID token carries: the approving session's own when
# it ranks as a 网证 sign-in or above (identity.sessions.ACR_ORDER, the mini programs' face-checked sessions too), the
# same after a face step-up (wz+face, wz+pin+face), and the portal's SMS login.
ISSUED_ACRS = (*(acr for acr, rank in ACR_ORDER.items() if rank >= ACR_ORDER["wz"]), SMS_ACR)


class AuthRequest(msgspec.Struct):
    request_id: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str
    nonce: str
    code_challenge: str
    acr_required: str
    expires_at: float
    browser_hash: str = ""
    status: str = "pending"  # pending | approved | denied
    redirect_to: str = ""


class CodeGrant(msgspec.Struct):
    client_id: str
    redirect_uri: str
    person_id: str
    scopes: list[str]
    nonce: str
    code_challenge: str
    acr: str
    auth_time: int
    sid: str
    family: str


def code_key(code: str) -> str:
    """Where an authorization code's grant lives in Redis (only its digest is stored)."""
    return f"oidc:code:{hashlib.sha256(code.encode()).hexdigest()}"


class OAuthRedirectError(Exception):
    """An error that goes back to the client's redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, redirect_uri: str, error: str, description: str, state: str, issuer: str) -> None:
        super().__init__(description)
        query = {"error": error, "error_description": description, "iss": issuer}
        if state:
            query["state"] = state
        self.location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(query)


def _bad_request(detail: str, field: str) -> ProblemError:
    """Errors that must not redirect: the client or its redirect URI cannot be trusted."""
    return ProblemError(
        400, "invalid-authorization-request", "Invalid authorization request", "授权请求无效", detail, field=field
    )


def required_acr(client: Client, acr_values: str) -> str:
    wanted = [a for a in acr_values.split() if a in ACR_ORDER]
    best = max([client.min_acr, *wanted], key=lambda a: ACR_ORDER.get(a, 0))
    return FACE_ACR if client.zone == "police" and ACR_ORDER[best] < ACR_ORDER[FACE_ACR] else best


async def push(res: Resources, client: Client, params: dict[str, str]) -> str:
    """RFC 9126: keep the parameters server-side; the client then sends only `request_uri`."""
    rid = secrets.token_urlsafe(24)
    await res.redis.set(f"par:{rid}", msgspec.json.encode({**params, "client_id": client.client_id}), ex=PAR_TTL)
    return f"urn:ietf:params:oauth:request_uri:{rid}"


async def _from_par(res: Resources, request_uri: str, client_id: str) -> dict[str, str]:
    prefix = "urn:ietf:params:oauth:request_uri:"
    if not request_uri.startswith(prefix):
        raise _bad_request("request_uri is not one this server issued", "request_uri")
    key = f"par:{request_uri[len(prefix) :]}"
    async with res.redis.pipeline(transaction=True) as pipe:
        pipe.get(key)
        pipe.delete(key)
        raw, _ = await pipe.execute()
    if raw is None:
        raise _bad_request("request_uri is unknown, used or expired", "request_uri")
    params: dict[str, str] = msgspec.json.decode(raw)
    if params.get("client_id") != client_id:
        raise _bad_request("request_uri was pushed by another client", "request_uri")
    return params


async def create(res: Resources, params: dict[str, str], *, browser_secret: str = "") -> AuthRequest:
    client_id = params.get("client_id", "")
    client = await clients.get(res, client_id[:128], cached=True) if client_id else None
    if client is None or client.status != "active":
        raise _bad_request("unknown client_id", "client_id")
    if "request_uri" in params:
        params = {**await _from_par(res, params["request_uri"], client_id), **{"client_id": client_id}}
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:  # exact match, never a prefix
        raise _bad_request("redirect_uri is not registered for this client", "redirect_uri")
    state, issuer = params.get("state", "")[:512], res.settings.issuer_url

    def fail(error: str, description: str) -> OAuthRedirectError:
        return OAuthRedirectError(redirect_uri, error, description, state, issuer)

    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    scopes = params.get("scope", "").split()
    if "openid" not in scopes:
        raise fail("invalid_scope", "the openid scope is required")
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown:
        raise fail("invalid_scope", f"unsupported scope: {unknown[0][:40]}")
    challenge, method = params.get("code_challenge", ""), params.get("code_challenge_method", "")
    public = client.auth_method == "none"
    if (public or challenge) and method != "S256":
        raise fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
    if public and not challenge:
        raise fail("invalid_request", "public clients must use PKCE")
    if challenge and not (43 <= len(challenge) <= 128):
        raise fail("invalid_request", "code_challenge must be 43 to 128 characters")
    request = AuthRequest(
        request_id=uuid.uuid4().hex,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=grantable(scopes, client.entitlements),
        state=state,
        nonce=params.get("nonce", "")[:512],
        code_challenge=challenge,
        acr_required=required_acr(client, params.get("acr_values", "")),
        expires_at=time.time() + REQUEST_TTL,
        browser_hash=hashlib.sha256(browser_secret.encode()).hexdigest() if browser_secret else "",
    )
    await _save(res, request)
    return request


async def _save(res: Resources, request: AuthRequest) -> None:
    ttl = max(1, int(request.expires_at - time.time()) + 60)
    await res.redis.set(f"authreq:{request.request_id}", msgspec.msgpack.encode(request), ex=ttl)


async def load(res: Resources, request_id: str) -> AuthRequest | None:
    raw = await res.redis.get(f"authreq:{request_id}")
    return msgspec.msgpack.decode(as_bytes(raw), type=AuthRequest) if raw else None


def _redirect(request: AuthRequest, issuer: str, **query: str) -> str:
    q = {**query, "iss": issuer}
    if request.state:
        q["state"] = request.state
    return request.redirect_uri + ("&" if "?" in request.redirect_uri else "?") + urlencode(q)


async def _claim(res: Resources, request_id: str) -> AuthRequest:
    """Take the pending request for a decision; a second decision is refused (each is approved once)."""
    if not await res.redis.set(f"authreq-decided:{request_id}", b"1", nx=True, ex=REQUEST_TTL + 60):
        raise ProblemError(409, "auth-request-decided", "This request was already answered", "该授权请求已处理")
    request = await load(res, request_id)
    if request is None or request.expires_at < time.time():
        raise ProblemError(410, "auth-request-expired", "This request has expired", "授权请求已过期")
    return request


async def _publish(res: Resources, request: AuthRequest) -> None:
    await _save(res, request)
    await res.redis.publish(
        f"authreq:{request.request_id}",
        msgspec.json.encode({"status": request.status, "redirect_to": request.redirect_to}),
    )


async def approve(res: Resources, request_id: str, principal: Principal, *, face_capture: str | None, ip: str) -> str:
    request = await load(res, request_id)
    if request is None or request.expires_at < time.time() or request.status != "pending":
        raise ProblemError(
            410, "auth-request-expired", "This request has expired or was answered", "授权请求已过期或已处理"
        )
    acr = principal.acr
    if ACR_ORDER.get(acr, 0) < ACR_ORDER[request.acr_required]:
        needs_face = "face" in request.acr_required and "face" not in acr
        if not needs_face or ACR_ORDER.get(acr, 0) < ACR_ORDER["wz"]:
            raise forbidden(
                "step-up-required",
                "Sign in with your 网证 on this device first",
                "请先使用网证登录",
                f"this client requires {request.acr_required}",
            )
        if face_capture is None:
            raise unprocessable(
                "face-required", "This client requires a face check", "该应用要求人脸核验", field="face_capture"
            )
        person = await people.load(res, principal.person_id)
        await face_check(res, name=person.name, id_number=person.id_number, capture=face_capture)
        acr = acr + "+face" if "pin" not in acr else "wz+pin+face"
    request = await _claim(res, request_id)
    return await _grant(res, request, person_id=principal.person_id, acr=acr, sid=principal.session_id, ip=ip)


async def _grant(res: Resources, request: AuthRequest, *, person_id: str, acr: str, sid: str, ip: str) -> str:
    """Mint the one-time code, record the consent, and tell the waiting side where to go."""
    code = secrets.token_urlsafe(32)
    grant = CodeGrant(
        client_id=request.client_id,
        redirect_uri=request.redirect_uri,
        person_id=person_id,
        scopes=request.scopes,
        nonce=request.nonce,
        code_challenge=request.code_challenge,
        acr=acr,
        auth_time=int(time.time()),
        sid=sid,
        family=str(uuid.uuid4()),
    )
    await res.redis.set(code_key(code), msgspec.msgpack.encode(grant), ex=CODE_TTL)
    await repo.grant_consent(res.db, person_id, request.client_id, request.scopes)
    await audit.record(
        res.db,
        actor=f"person:{person_id}",
        action="identity.consent.grant",
        target=request.client_id,
        ip=ip,
        detail={"scopes": request.scopes, "acr": acr},
    )
    request.status = "approved"
    request.redirect_to = _redirect(request, res.settings.issuer_url, code=code)
    await _publish(res, request)
    return request.redirect_to


SMS_PURPOSE = "portal_login"


def check_browser(request: AuthRequest, secret: str) -> bool:
    """Only the browser that opened the login page may follow the request (its id is printed in the QR code)."""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return bool(request.browser_hash) and secrets.compare_digest(digest, request.browser_hash)


async def pending_for_browser(res: Resources, request_id: str, secret: str) -> AuthRequest:
    request = await load(res, request_id)
    if request is None or not check_browser(request, secret):
        raise ProblemError(404, "not-found", "Not found", "资源不存在", "authorization request not found")
    if request.status != "pending" or request.expires_at < time.time():
        raise ProblemError(
            410, "auth-request-expired", "This request has expired or was answered", "授权请求已过期或已处理"
        )
    client = await clients.get(res, request.client_id, cached=True)
    # SMS alone is weaker than the 网证: only internet-zone clients that ask for no more than the 网证 accept it.
    if client is None or client.zone != "internet" or ACR_ORDER[request.acr_required] > ACR_ORDER["wz"]:
        raise forbidden(
            "sms-login-not-allowed", "This application requires the 苏证通 app", "该应用须使用苏证通App登录"
        )
    return request


async def approve_by_sms(res: Resources, request_id: str, secret: str, *, phone: str, code: str, ip: str) -> str:
    """Web-portal login by phone + SMS code when the user has no app at hand (acr "sms")."""
    await pending_for_browser(res, request_id, secret)
    await sms.check_code(res, phone=phone, purpose=SMS_PURPOSE, code=code)
    person_id = await people_repo.person_id_by_phone_index(
        res.db, res.fields.blind_index(phone, context="identity.phone")
    )
    if person_id is None:
        raise ProblemError(404, "not-enrolled", "No enrolled person has this phone", "该手机号未注册", field="phone")
    request = await _claim(res, request_id)
    return await _grant(res, request, person_id=str(person_id), acr=SMS_ACR, sid=f"web-{uuid.uuid4().hex}", ip=ip)


async def deny(res: Resources, request_id: str, principal: Principal) -> str:
    request = await _claim(res, request_id)
    request.status = "denied"
    request.redirect_to = _redirect(
        request, res.settings.issuer_url, error="access_denied", error_description="the user denied the request"
    )
    await _publish(res, request)
    return request.redirect_to
