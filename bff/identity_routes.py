"""App endpoints of identity: SMS codes, enrolment, sign-in, sessions, 网证, PIN, identity codes."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, delete, get, post, put
from litestar.params import JSONBody, Parameter

from bff.auth import SignedIn, client_ip, principal
from core import clock
from core.auth import BEARER_REQUIRED
from core.idempotency import IdempotencyKey, idempotent
from core.masking import mask_id_number, mask_name, mask_phone
from core.problems import not_found
from core.ratelimit import rate_limit
from core.resources import Resources
from identity.facade import Principal, code_text_for, issue_code, models, people, render_png, render_svg, sessions, sms
from identity.facade import credentials as service
from push import service as push_service

Req = Request[Any, Any, Any]
log = logging.getLogger("szt.bff.identity")
AUTH: dict[str, Any] = {"dependencies": {"me": principal}, "security": BEARER_REQUIRED}
CodeId = Annotated[str, Parameter(pattern=r"^[0-9a-f]{32}$")]
Serial = Annotated[str, Parameter(pattern=r"^WZ[0-9A-F]{24}$")]


@post(
    "/v1/sms-codes",
    summary="Send a 6-digit SMS code (5 minutes, 5 tries)",
    tags=["sign-in"],
    status_code=202,
    guards=[rate_limit(lambda s: s.sms_rate_per_ip, 3600, name="sms-codes-ip")],
)
async def send_sms_code(request: Req, res: Resources, data: JSONBody[models.SmsCodeRequest]) -> models.SmsCodeSent:
    await sms.send_code(res, phone=data.phone, purpose=data.purpose, ip=client_ip(request))
    return models.SmsCodeSent(expires_in=sms.CODE_TTL, resend_after=sms.RESEND_AFTER)


@post(
    "/v1/enrolments",
    summary="Real-name enrolment: SMS-verified phone + face check → 网号, 网证, session",
    tags=["enrolment"],
    status_code=201,
    middleware=[idempotent()],
    guards=[rate_limit(lambda s: s.enrol_rate_per_ip, 3600, name="enrol-ip")],
)
async def enrol(
    request: Req, res: Resources, data: JSONBody[models.EnrolmentRequest], idempotency_key: IdempotencyKey = None
) -> models.Enrolled:
    return await service.enrol(res, data, ip=client_ip(request))


@post(
    "/v1/challenges",
    summary="A one-time challenge for the device key to sign",
    tags=["sign-in"],
    status_code=201,
    guards=[rate_limit(60, 60, name="challenges-ip")],
)
async def challenge(res: Resources) -> models.ChallengeIssued:
    return await service.new_challenge(res)


@post(
    "/v1/sessions",
    summary="Sign in: phone + SMS code (new device) or device-bound 网证 (+PIN/face)",
    tags=["sign-in"],
    status_code=201,
    guards=[rate_limit(30, 300, name="sign-in-ip")],
)
async def sign_in(res: Resources, data: JSONBody[models.SmsSignIn | models.CredentialSignIn]) -> models.Tokens:
    if isinstance(data, models.SmsSignIn):
        return await service.sign_in_sms(res, data)
    return await service.sign_in_credential(res, data)


@post(
    "/v1/sessions/refresh",
    summary="Rotate the refresh token (a reused one ends the session)",
    tags=["sign-in"],
    status_code=200,
)
async def refresh(res: Resources, data: JSONBody[models.RefreshRequest]) -> models.Tokens:
    return await sessions.refresh(res, data.refresh_token)


@get("/v1/me", summary="Who am I (masked)", tags=["sessions"], **AUTH)
async def who_am_i(res: Resources, me: Principal) -> dict[str, str]:
    person = await people.load(res, me.person_id)
    return {
        "wangha": person.wangha,
        "name_masked": mask_name(person.name),
        "id_number_masked": mask_id_number(person.id_number),
        "phone_masked": mask_phone(person.phone),
        "acr": me.acr,
    }


@put("/v1/pin", summary="Set or change the 8-digit PIN", tags=["credentials"], status_code=204, **AUTH)
async def set_pin(request: Req, res: Resources, me: Principal, data: JSONBody[models.PinRequest]) -> None:
    await service.set_pin(res, me, data.pin, data.old_pin, ip=client_ip(request))


class Sessions(SignedIn):
    """My signed-in devices."""

    path = "/v1/sessions"
    tags = ("sessions",)

    @get(summary="My signed-in devices")
    async def my_sessions(self, res: Resources, me: Principal) -> list[models.SessionView]:
        return await sessions.list_for(res, me)

    @delete("/{session_id:uuid}", summary="Sign a device out")
    async def end_session(self, res: Resources, me: Principal, session_id: UUID) -> None:
        if not await sessions.end(res, person_id=me.person_id, session_id=str(session_id)):
            raise not_found("session")


class Credentials(SignedIn):
    """My 网证: listed, issued to a new device, suspended, resumed, revoked, renewed."""

    path = "/v1/credentials"
    tags = ("credentials",)

    @get(summary="My 网证 on all devices")
    async def my_credentials(self, res: Resources, me: Principal) -> list[models.CredentialView]:
        return await service.my_credentials(res, me.person_id)

    @post(
        summary="Bind this device: issue a 网证 after device proof and face check",
        status_code=201,
        middleware=[idempotent()],
    )
    async def new_credential(
        self,
        request: Req,
        res: Resources,
        me: Principal,
        data: JSONBody[models.NewCredentialRequest],
        idempotency_key: IdempotencyKey = None,
    ) -> models.CredentialView:
        return await service.issue_for_new_device(res, me, data, ip=client_ip(request))

    @post("/{serial:str}/{action:str}", summary="Suspend (lost phone), resume, revoke or renew a 网证", status_code=200)
    async def credential_action(
        self,
        request: Req,
        res: Resources,
        me: Principal,
        serial: Serial,
        action: Annotated[str, Parameter(pattern=r"^(suspend|resume|revoke|renew)$")],
        data: JSONBody[models.StatusChange],
    ) -> models.CredentialView:
        if action == "renew":
            return await service.renew(res, me, serial, ip=client_ip(request))
        view = await service.change_status(
            res,
            serial=serial,
            action=action,
            actor=f"person:{me.person_id}",
            person_id=me.person_id,
            reason=data.reason,
            ip=client_ip(request),
            acr=me.acr,
            face_capture=data.face_capture,
        )
        if action == "resume":
            await _tell_resumed(res, me.person_id, serial)
        return view


push_service.register_template(
    "credential_resumed",
    "网证已恢复",
    "您尾号 {serial_tail} 的网证已于 {time} 经人脸核验恢复使用。如非本人操作，请立即挂失并联系客服。",
)


async def _tell_resumed(res: Resources, person_id: str, serial: str) -> None:
    """Every device of the holder hears that a suspended 网证 is back: if it was not them, they can act at once."""
    now = clock.now()
    try:
        await push_service.notify(
            res,
            person_id,
            template="credential_resumed",
            params={"serial_tail": serial[-4:], "time": clock.to_beijing(now).strftime("%Y-%m-%d %H:%M")},
            source="identity",
            idempotency_key=f"credential-resumed:{serial}:{now.isoformat()}",
        )
    except Exception:  # the resume stands (and is audited); the failure is logged
        log.exception("resume notification failed", extra={"serial": serial})


class IdentityCodes(SignedIn):
    """Dynamic identity codes and their QR images."""

    path = "/v1/identity-codes"
    tags = ("identity code",)

    @post(summary="A fresh dynamic identity code (default 60 s)", status_code=201)
    async def new_code(self, res: Resources, me: Principal, data: JSONBody[models.CodeRequest]) -> models.IdentityCode:
        view, _ = await issue_code(res, me, data)
        return view

    @get("/{code_id:str}/image", summary="The code as a QR image (PNG or SVG)", media_type="image/png")
    async def code_image(
        self,
        res: Resources,
        me: Principal,
        code_id: CodeId,
        fmt: Annotated[str, Parameter(query="format", pattern=r"^(png|svg)$")] = "png",
    ) -> Response[bytes]:
        text = await code_text_for(res, me, code_id)
        if text is None:
            raise not_found("identity code")
        if fmt == "svg":
            return Response(render_svg(text).encode(), media_type="image/svg+xml")
        return Response(render_png(text), media_type="image/png")


ROUTES = [
    send_sms_code,
    enrol,
    challenge,
    sign_in,
    refresh,
    Sessions,
    who_am_i,
    Credentials,
    set_pin,
    IdentityCodes,
]
