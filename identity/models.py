"""Request and response shapes of identity, used by its API and by the front doors."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Phone = Annotated[str, Meta(pattern=r"^1[3-9]\d{9}$", description="mainland mobile number")]
SmsCode = Annotated[str, Meta(pattern=r"^\d{6}$")]
Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f<>]+$")]
IdNumber = Annotated[str, Meta(min_length=9, max_length=32, pattern=r"^[0-9A-Za-z]+$")]
Pin = Annotated[str, Meta(pattern=r"^\d{8}$")]
Capture = Annotated[str, Meta(min_length=1, max_length=8192, description="face capture token from the client SDK")]
PublicKeyB64 = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9_-]{86,88}$", description="SM2 public key: base64url of 04||X||Y (65 bytes)")
]
Signature = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9_-]{40,200}$", description="base64url SM2 signature (DER or r||s)")
]
Platform = Literal["ios", "android", "harmony", "web", "wechat", "alipay"]
Purpose = Literal["enrol", "sign_in", "rebind"]
Acr = Literal["wz", "wz+pin", "wz+face", "wz+pin+face"]
Attribute = Literal["age_band", "gender", "over_18", "name_masked", "name", "id_number_masked", "id_number", "phone"]
ATTRIBUTES: tuple[str, ...] = (
    "age_band",
    "gender",
    "over_18",
    "name_masked",
    "name",
    "id_number_masked",
    "id_number",
    "phone",
)


class SmsCodeRequest(msgspec.Struct):
    phone: Phone
    purpose: Purpose = "sign_in"


class SmsCodeSent(msgspec.Struct):
    expires_in: int
    resend_after: int


class DeviceInfo(msgspec.Struct):
    public_key: PublicKeyB64
    platform: Platform
    name: Annotated[str, Meta(max_length=64)] = ""


class EnrolmentRequest(msgspec.Struct):
    name: Name
    id_number: IdNumber
    phone: Phone
    sms_code: SmsCode
    face_capture: Capture
    device: DeviceInfo
    id_type: Literal["resident", "exit_entry"] = "resident"
    pin: Pin | None = None


class Tokens(msgspec.Struct):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    session_id: str
    acr: str


class CredentialView(msgspec.Struct):
    serial: str
    wangha: str
    level: str
    status: str
    issued_at: str
    expires_at: str
    document: str
    salts: dict[str, str] | None = None


class Enrolled(msgspec.Struct):
    wangha: str
    credential: CredentialView
    session: Tokens
    name_masked: str


class ChallengeIssued(msgspec.Struct):
    challenge_id: str
    challenge: str
    expires_in: int


class SessionRequest(msgspec.Struct, tag_field="method"):
    """Base of the sign-in methods (tagged by `method`)."""


class SmsSignIn(SessionRequest, tag="sms"):
    phone: Phone
    sms_code: SmsCode
    device_name: Annotated[str, Meta(max_length=64)] = ""


class CredentialSignIn(SessionRequest, tag="credential"):
    serial: Annotated[str, Meta(pattern=r"^WZ[0-9A-F]{24}$")]
    challenge_id: Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$")]
    signature: Signature
    pin: Pin | None = None
    face_capture: Capture | None = None


class RefreshRequest(msgspec.Struct):
    refresh_token: Annotated[str, Meta(min_length=20, max_length=128)]


class SessionView(msgspec.Struct):
    session_id: str
    device_label: str
    acr: str
    created_at: str
    last_used_at: str
    current: bool


class NewCredentialRequest(msgspec.Struct):
    """Issue a 网证 to this device: the device proves its key by signing the challenge; face is required."""

    device: DeviceInfo
    challenge_id: Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$")]
    signature: Signature
    face_capture: Capture


class PinRequest(msgspec.Struct):
    pin: Pin
    old_pin: Pin | None = None


class CodeRequest(msgspec.Struct):
    share: list[Attribute] = []
    ttl_seconds: Annotated[int, Meta(ge=15, le=300)] = 60


class IdentityCode(msgspec.Struct):
    payload: str
    expires_at: str
    expires_in: int
    qr_version: int
    png_url: str
    svg_url: str


class VerifyCodeRequest(msgspec.Struct):
    code: Annotated[str, Meta(min_length=1, max_length=400)]


class Voucher(msgspec.Struct):
    """Result voucher of a verification: what the relying party learns, and no more."""

    voucher_id: str
    verified_at: str
    mode: str
    result: str
    user_code: str
    attributes: dict[str, str | bool]
    signed: str


class CredentialStatus(msgspec.Struct):
    serial: str
    status: str
    changed_at: str


class StatusList(msgspec.Struct):
    items: list[CredentialStatus]
    next_cursor: str | None


class PublishedKey(msgspec.Struct):
    kid: str
    kty: str
    crv: str
    x: str
    y: str
    alg: str
    use: str
    current: bool


class PublishedKeys(msgspec.Struct):
    keys: list[PublishedKey]


class StatusChange(msgspec.Struct):
    reason: Annotated[str, Meta(max_length=200)] = ""
    # Resuming a suspended 网证 needs a face check: a session signed in with face, or a fresh capture here.
    face_capture: Capture | None = None
