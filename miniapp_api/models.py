"""Wire shapes of the mini-program API: only what the pages show, small enough for the platforms' limits."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

# The mini programs' own limits are generous (WeChat setData 1 MB); pages render fast below a few KB, so every
# answer stays under this budget (tests/test_mini_*.py checks each one).
RESPONSE_BUDGET = 16 * 1024

WxCode = Annotated[
    str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$", examples=["0a3Xk2Ga1fA1wH0zTuHa1kNB8G3Xk2Gu"])
]
Ticket = Annotated[str, Meta(pattern=r"^bt_[A-Za-z0-9_-]{20,64}$", examples=["bt_Yx3p0q8c1HkS2v9bQm0l7n4tA5zR6wEe"])]
Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f<>]+$", examples=["张三"])]
IdNumber = Annotated[
    str, Meta(min_length=15, max_length=18, pattern=r"^[0-9]{15}$|^[0-9]{17}[0-9Xx]$", examples=["320505199001011234"])
]
Capture = Annotated[
    str,
    Meta(min_length=1, max_length=8192, description="face capture token from the CTID SDK", examples=["cap.eyJ..."]),
]
Phone = Annotated[str, Meta(pattern=r"^1[3-9][0-9]{9}$", examples=["13912345678"])]
SmsCode = Annotated[str, Meta(pattern=r"^[0-9]{6}$", examples=["123456"])]
TEMPLATE_ID = r"^[A-Za-z0-9_-]{1,64}$"
TemplateId = Annotated[str, Meta(min_length=1, max_length=64, pattern=TEMPLATE_ID, examples=["tplCaseStatus01"])]


class WechatLogin(msgspec.Struct):
    """`wx.login()` gives the page a `code`; the server exchanges it (code2Session)."""

    code: WxCode


class AlipayLogin(msgspec.Struct):
    """`my.getAuthCode({scopes: 'auth_base'})` gives the page an `authCode`."""

    auth_code: WxCode


class SessionTokens(msgspec.Struct):
    access_token: Annotated[str, Meta(examples=["at_9mR2..."])]
    refresh_token: Annotated[str, Meta(examples=["rt_Q1w..."])]
    expires_in: Annotated[int, Meta(examples=[600])]


class MiniSession(msgspec.Struct, omit_defaults=True):
    """`signed_in` with tokens, or `binding_required` with a ticket for the one-time real-name binding."""

    status: Annotated[Literal["signed_in", "binding_required"], Meta(examples=["binding_required"])]
    session: SessionTokens | None = None
    binding_ticket: Annotated[str, Meta(examples=["bt_Yx3p0q8c1HkS2v9bQm0l7n4tA5zR6wEe"])] = ""
    expires_in: int = 0
    name_masked: Annotated[str, Meta(examples=["张*"])] = ""


class BindingRequest(msgspec.Struct):
    """Real-name binding: name and ID number checked with a live face against the CTID register. A person new to
    苏证通 also gives a phone: WeChat's getPhoneNumber `phone_code`, or `phone` with an SMS code."""

    binding_ticket: Ticket
    name: Name
    id_number: IdNumber
    face_capture: Capture
    phone_code: WxCode | None = None
    phone: Phone | None = None
    sms_code: SmsCode | None = None


class PhoneRequest(msgspec.Struct):
    """The `code` of `<button open-type="getPhoneNumber">`."""

    code: WxCode


class PhoneView(msgspec.Struct):
    phone_masked: Annotated[str, Meta(examples=["139****5678"])]
    matches_account: bool


class StepUpRequest(msgspec.Struct):
    face_capture: Capture


class SteppedUp(msgspec.Struct):
    session: SessionTokens
    acr: Annotated[str, Meta(examples=["wechat+face"])]


class SmsCodeRequest(msgspec.Struct):
    phone: Phone


class SmsCodeSent(msgspec.Struct):
    expires_in: int
    resend_after: int


class RefreshRequest(msgspec.Struct):
    refresh_token: Annotated[str, Meta(min_length=20, max_length=128)]


class SubscribeTemplate(msgspec.Struct):
    template_id: TemplateId
    kind: Annotated[str, Meta(examples=["case_status"])]
    title: Annotated[str, Meta(examples=["办件进度通知"])]


class TemplatePage(msgspec.Struct):
    items: list[SubscribeTemplate]
    next_cursor: str | None = None


Choice = Literal["accept", "reject", "ban", "filter"]


class SubscribeResults(msgspec.Struct):
    """The `success` result of `wx.requestSubscribeMessage`: template id → the user's choice."""

    results: Annotated[
        dict[TemplateId, Choice],
        Meta(
            min_length=1,
            max_length=3,
            examples=[{"tplCaseStatus01": "accept"}],
            # Litestar drops a dict's length and key rules from the schema; state them for clients (and fuzzers).
            extra_json_schema={
                "extra": {"min_properties": 1, "max_properties": 3, "property_names": {"pattern": TEMPLATE_ID}}
            },
        ),
    ]


class Consent(msgspec.Struct):
    template_id: str
    remaining: Annotated[int, Meta(description="one-time sends left for this template", examples=[1])]


class Consents(msgspec.Struct):
    items: list[Consent]


class FormIdRequest(msgspec.Struct):
    """The `formId` of a submitted `<form report-submit>`: allows one template message within 7 days."""

    form_id: Annotated[
        str, Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", examples=["MjA4Ob1f3c9a0d2e4b6c8a0e2f4"])
    ]


class FormIdStored(msgspec.Struct):
    available: int


class Image(msgspec.Struct):
    url: str
    width: int
    height: int


class EntryItem(msgspec.Struct):
    title: Annotated[str, Meta(examples=["驾驶证补证"])]
    page: Annotated[str, Meta(examples=["pages/affairs/apply?app=app-11"])]
    icon: Image


class ServiceEntry(msgspec.Struct):
    """What Alipay shows for the mini program's 服务入口 (search result service box)."""

    app_id: str
    name: str
    slogan: str
    logo: Image
    items: list[EntryItem]
    next_cursor: str | None = None
