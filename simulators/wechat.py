"""Simulator of the WeChat mini-program server API (api.weixin.qq.com), with the real paths, field names and errcodes.

- `GET /wechat/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code` → `{openid, session_key,
  unionid}` or `{errcode, errmsg}`: 40029 invalid code, 40163 code been used, 45011 minute quota reached,
  40226 high-risk user (code blocked), -1 system busy, 40013 invalid appid, 40125 invalid appsecret.
- `GET /wechat/cgi-bin/token` and `POST /wechat/cgi-bin/stable_token` → `{access_token, expires_in: 7200}`.
  `/cgi-bin/token` replaces the app's token; `stable_token` returns the current one unless `force_refresh`.
- `POST /wechat/wxa/business/getuserphonenumber?access_token=` `{code}` → `{errcode: 0, errmsg, phone_info}`.
- `POST /wechat/cgi-bin/message/subscribe/send?access_token=` `{touser, template_id, page, data, ...}` →
  `{errcode: 0, errmsg: "ok", msgid}`; 43101 user refused (no one-time quota left), 40003 invalid openid,
  40037 invalid template_id, 47003 argument invalid (a data value too long for its key kind).
  A wrong token answers 40001, an expired one 42001.
Like WeChat, every answer is HTTP 200 with an `errcode`.

Control (hidden from OpenAPI): `POST /wechat/_sim/apps` registers an app (appid, secret — the developer console),
`POST /wechat/_sim/codes` mints a wx.login code for a simulated user, `POST /wechat/_sim/phone-codes` a
getPhoneNumber code, `POST /wechat/_sim/subscriptions` records the user's tap on 允许 (one-time quota per template),
`GET /wechat/_sim/outbox?openid=` lists delivered subscribe messages, `GET /wechat/_sim/calls` counts API calls,
`POST /wechat/_sim/fail` makes the next calls of one API answer an errcode, `POST /wechat/_sim/expire-tokens`
expires every access token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import Counter, deque
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar, Request, get, post
from litestar.exceptions import ValidationException
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from core.settings import Settings
from simulators.faults import FailureQueue

CODE_TTL = 300
TOKEN_TTL = 7200
OUTBOX_MAX = 50
ERRMSG = {
    0: "ok",
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "code blocked",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47003: "argument invalid!",
}
# Subscribe-message data keys by kind: the value limits WeChat documents for each.
VALUE_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "time": 32, "date": 32, "number": 32, "name": 10}

AppId = Annotated[str, Parameter(min_length=1, max_length=32)]
Secret = Annotated[str, Parameter(min_length=1, max_length=64)]
OpenId = Annotated[str, Meta(min_length=1, max_length=64)]
Api = Literal["jscode2session", "token", "phone", "subscribe"]


class Answer(msgspec.Struct, omit_defaults=True):
    errcode: int = 0
    errmsg: str = "ok"
    openid: str | None = None
    session_key: str | None = None
    unionid: str | None = None
    access_token: str | None = None
    expires_in: int | None = None
    phone_info: dict[str, Any] | None = None
    msgid: int | None = None


def _err(code: int, detail: str = "") -> Answer:
    return Answer(errcode=code, errmsg=ERRMSG.get(code, "error") + (f" {detail}" if detail else ""))


class StableTokenRequest(msgspec.Struct):
    grant_type: Literal["client_credential"]
    appid: Annotated[str, Meta(min_length=1, max_length=32)]
    secret: Annotated[str, Meta(min_length=1, max_length=64)]
    force_refresh: bool = False


class PhoneRequest(msgspec.Struct):
    code: Annotated[str, Meta(min_length=1, max_length=128)]


class DataValue(msgspec.Struct):
    value: Annotated[str, Meta(max_length=200)]


class SubscribeRequest(msgspec.Struct):
    touser: OpenId
    template_id: Annotated[str, Meta(min_length=1, max_length=64)]
    data: Annotated[dict[str, DataValue], Meta(max_length=20)]
    page: Annotated[str, Meta(max_length=256)] = ""
    miniprogram_state: Literal["developer", "trial", "formal"] = "formal"
    lang: Literal["zh_CN", "en_US", "zh_HK", "zh_TW"] = "zh_CN"


class AppRegistration(msgspec.Struct):
    appid: Annotated[str, Meta(min_length=1, max_length=32)]
    secret: Annotated[str, Meta(min_length=1, max_length=64)]


class CodeRequest(msgspec.Struct):
    appid: Annotated[str, Meta(min_length=1, max_length=32)]
    user: Annotated[str, Meta(min_length=1, max_length=64, description="any key naming the simulated WeChat user")]
    risky: bool = False  # WeChat's risk control blocks this user's codes (40226)


class CodeMinted(msgspec.Struct):
    code: str
    openid: str
    unionid: str


class PhoneCodeRequest(msgspec.Struct):
    appid: Annotated[str, Meta(min_length=1, max_length=32)]
    openid: OpenId
    phone: Annotated[str, Meta(pattern=r"^1[3-9][0-9]{9}$")]


class PhoneCode(msgspec.Struct):
    code: str


class SubscriptionGrant(msgspec.Struct):
    openid: OpenId
    template_id: Annotated[str, Meta(min_length=1, max_length=64)]
    count: Annotated[int, Meta(ge=0, le=100)] = 1


class FailRequest(msgspec.Struct):
    api: Api
    count: Annotated[int, Meta(ge=0, le=10_000)]
    errcode: Literal[-1, 45011, 40226, 40029, 40001, 42001, 43101] = -1


class Delivered(msgspec.Struct):
    msgid: int
    openid: str
    template_id: str
    page: str
    data: dict[str, str]
    received_at: float


class Outbox(msgspec.Struct):
    items: list[Delivered]


class SessionKeyView(msgspec.Struct):
    session_key: str


class Ok(msgspec.Struct):
    ok: bool = True


class _User(msgspec.Struct):
    appid: str
    openid: str
    unionid: str
    session_key: str


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.apps: dict[str, str] = {}  # appid -> secret
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (appid, expires_at)
        self.current: dict[str, str] = {}  # appid -> its latest token
        self.codes: dict[str, tuple[str, float, bool]] = {}  # code -> (openid, expires_at, risky)
        self.used: set[str] = set()
        self.users: dict[str, _User] = {}  # openid -> user
        self.phone_codes: dict[str, tuple[str, str, float]] = {}  # code -> (appid, phone, expires_at)
        self.quota: Counter[tuple[str, str]] = Counter()  # (openid, template_id) -> one-time sends left
        self.outbox: dict[str, deque[Delivered]] = {}
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, FailureQueue[FailRequest]] = {a: FailureQueue(self.lock) for a in Api.__args__}  # type: ignore[attr-defined]
        self.msgid = int(time.time()) * 1000

    def fault(self, api: str) -> Answer | None:
        with self.lock:
            self.calls[api] += 1
        failure = self.failures[api].take()
        return _err(failure.errcode) if failure is not None else None

    def app_error(self, appid: str, secret: str) -> Answer | None:
        known = self.apps.get(appid)
        if known is None:
            return _err(40013)
        if not secrets.compare_digest(known, secret):
            return _err(40125)
        return None

    def new_token(self, appid: str) -> str:
        token = base64.urlsafe_b64encode(secrets.token_bytes(96)).decode().rstrip("=")
        self.tokens[token] = (appid, time.time() + TOKEN_TTL)
        old = self.current.get(appid)
        if old is not None and old in self.tokens:  # the old token lives on for five minutes, as WeChat's does
            self.tokens[old] = (appid, min(self.tokens[old][1], time.time() + 300))
        self.current[appid] = token
        return token

    def call_with_token(self, api: str, token: str) -> tuple[Answer | None, str]:
        """A server-API call: an injected fault first, then the access token, as the real API answers them."""
        fault = self.fault(api)
        if fault is not None:
            return fault, ""
        with self.lock:
            return self.token_error(token)

    def token_error(self, token: str | None) -> tuple[Answer | None, str]:
        found = self.tokens.get(token or "")
        if found is None:
            return _err(40001), ""
        if found[1] <= time.time():
            return _err(42001), ""
        return None, found[0]


def _openid(appid: str, user: str) -> str:
    digest = hashlib.sha256(f"{appid}|{user}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")


def _unionid(user: str) -> str:
    return "u" + base64.urlsafe_b64encode(hashlib.sha256(f"union|{user}".encode()).digest()[:20]).decode().rstrip("=")


def _check_data(data: dict[str, DataValue]) -> str:
    """The first value too long (or empty) for its key kind, as WeChat's 47003 names it; '' when all fit."""
    for key, item in data.items():
        kind = key.rstrip("0123456789")
        limit = VALUE_LIMITS.get(kind)
        if limit is None:
            return f"data.{key} unknown keyword"
        if not item.value or len(item.value) > limit:
            return f"data.{key}.value invalid"
    return ""


def _handlers(state: _State) -> list[object]:
    @get(
        "/sns/jscode2session",
        summary="code2Session: a wx.login code for openid, unionid and session_key",
        tags=["login"],
        sync_to_thread=False,
    )
    def jscode2session(
        appid: AppId,
        secret: Secret,
        js_code: Annotated[str, Parameter(min_length=1, max_length=128)],
        grant_type: Literal["authorization_code"],
    ) -> Answer:
        fault = state.fault("jscode2session")
        if fault is not None:
            return fault
        with state.lock:
            if refused := state.app_error(appid, secret):
                return refused
            if js_code in state.used:
                return _err(40163)
            found = state.codes.pop(js_code, None)
            if found is None or found[1] <= time.time():
                return _err(40029)
            openid, _, risky = found
            state.used.add(js_code)
            if risky:
                return _err(40226)
            user = state.users[openid]
            user.session_key = base64.b64encode(secrets.token_bytes(16)).decode()  # a new login, a new key
            return Answer(openid=user.openid, session_key=user.session_key, unionid=user.unionid)

    @get("/cgi-bin/token", summary="getAccessToken (replaces the app's token)", tags=["token"], sync_to_thread=False)
    def token(grant_type: Literal["client_credential"], appid: AppId, secret: Secret) -> Answer:
        fault = state.fault("token")
        if fault is not None:
            return fault
        with state.lock:
            if refused := state.app_error(appid, secret):
                return refused
            return Answer(access_token=state.new_token(appid), expires_in=TOKEN_TTL)

    @post("/cgi-bin/stable_token", summary="getStableAccessToken", tags=["token"], status_code=200)
    async def stable_token(request: Request[Any, Any, Any], data: JSONBody[StableTokenRequest]) -> Answer:
        try:  # strictly typed, as WeChat's own parser (`force_refresh: 0` is not a boolean)
            msgspec.json.decode(await request.body(), type=StableTokenRequest)
        except msgspec.ValidationError as exc:
            raise ValidationException(str(exc)) from exc
        fault = state.fault("token")
        if fault is not None:
            return fault
        with state.lock:
            if refused := state.app_error(data.appid, data.secret):
                return refused
            current = state.current.get(data.appid)
            entry = state.tokens.get(current or "")
            if data.force_refresh or entry is None or entry[1] <= time.time() + 60:
                current = state.new_token(data.appid)
                entry = state.tokens[current]
            return Answer(access_token=current, expires_in=max(1, int(entry[1] - time.time())))

    @post(
        "/wxa/business/getuserphonenumber",
        summary="getPhoneNumber: exchange the button's code for the phone",
        tags=["phone"],
        status_code=200,
        sync_to_thread=False,
    )
    def phone_number(
        access_token: Annotated[str, Parameter(min_length=1, max_length=256)], data: JSONBody[PhoneRequest]
    ) -> Answer:
        refused, appid = state.call_with_token("phone", access_token)
        if refused:
            return refused
        with state.lock:
            found = state.phone_codes.pop(data.code, None)
            if found is None or found[0] != appid or found[2] <= time.time():
                return _err(40029)
            phone = found[1]
        info = {
            "phoneNumber": phone,
            "purePhoneNumber": phone,
            "countryCode": "86",
            "watermark": {"timestamp": int(time.time()), "appid": appid},
        }
        return Answer(phone_info=info)

    @post(
        "/cgi-bin/message/subscribe/send",
        summary="subscribeMessage.send: one send per one-time consent",
        tags=["subscribe-message"],
        status_code=200,
        sync_to_thread=False,
    )
    def subscribe_send(
        access_token: Annotated[str, Parameter(min_length=1, max_length=256)], data: JSONBody[SubscribeRequest]
    ) -> Answer:
        refused, appid = state.call_with_token("subscribe", access_token)
        if refused:
            return refused
        with state.lock:
            user = state.users.get(data.touser)
            if user is None or user.appid != appid:
                return _err(40003)
            if not data.template_id.startswith("tpl"):
                return _err(40037)
            if bad := _check_data(data.data):
                return _err(47003, bad)
            key = (data.touser, data.template_id)
            if state.quota[key] <= 0:
                return _err(43101)
            state.quota[key] -= 1
            state.msgid += 1
            item = Delivered(
                state.msgid,
                data.touser,
                data.template_id,
                data.page,
                {k: v.value for k, v in data.data.items()},
                time.time(),
            )
            state.outbox.setdefault(data.touser, deque(maxlen=OUTBOX_MAX)).append(item)
            return Answer(msgid=state.msgid)

    @post("/_sim/apps", include_in_schema=False, status_code=200, sync_to_thread=False)
    def apps(data: JSONBody[AppRegistration]) -> Ok:
        with state.lock:
            state.apps[data.appid] = data.secret
        return Ok()

    @post("/_sim/codes", include_in_schema=False, status_code=201, sync_to_thread=False)
    def codes(data: JSONBody[CodeRequest]) -> CodeMinted:
        """Control: what wx.login gives the mini program of this simulated user."""
        openid = _openid(data.appid, data.user)
        code = secrets.token_urlsafe(24)
        with state.lock:
            user = state.users.setdefault(openid, _User(data.appid, openid, _unionid(data.user), ""))
            state.codes[code] = (openid, time.time() + CODE_TTL, data.risky)
        return CodeMinted(code, openid, user.unionid)

    @post("/_sim/phone-codes", include_in_schema=False, status_code=201, sync_to_thread=False)
    def phone_codes(data: JSONBody[PhoneCodeRequest]) -> PhoneCode:
        """Control: the user tapped the getPhoneNumber button and allowed it."""
        code = secrets.token_hex(16)
        with state.lock:
            state.phone_codes[code] = (data.appid, data.phone, time.time() + CODE_TTL)
        return PhoneCode(code)

    @post("/_sim/subscriptions", include_in_schema=False, status_code=200, sync_to_thread=False)
    def subscriptions(data: JSONBody[SubscriptionGrant]) -> Ok:
        """Control: the user tapped 允许 in wx.requestSubscribeMessage (count 0 withdraws the consent)."""
        with state.lock:
            key = (data.openid, data.template_id)
            state.quota[key] = state.quota[key] + data.count if data.count else 0
        return Ok()

    @get("/_sim/outbox", include_in_schema=False, sync_to_thread=False)
    def outbox(openid: Annotated[str, Parameter(min_length=1, max_length=64)]) -> Outbox:
        with state.lock:
            return Outbox(items=list(state.outbox.get(openid, ())))

    @get("/_sim/session-key", include_in_schema=False, sync_to_thread=False)
    def session_key(openid: Annotated[str, Parameter(min_length=1, max_length=64)]) -> SessionKeyView:
        """Control: the session_key last issued to the user (tests look for it where it must never be)."""
        with state.lock:
            user = state.users.get(openid)
            return SessionKeyView(user.session_key if user else "")

    @get("/_sim/calls", include_in_schema=False, sync_to_thread=False)
    def calls() -> dict[str, int]:
        with state.lock:
            return dict(state.calls)

    @post("/_sim/fail", include_in_schema=False, status_code=200, sync_to_thread=False)
    def fail(data: JSONBody[FailRequest]) -> Ok:
        """Control: the next `count` calls of `api` answer `errcode` (count 0 clears that API's queue)."""
        state.failures[data.api].control(data)
        return Ok()

    @post("/_sim/expire-tokens", include_in_schema=False, status_code=200, sync_to_thread=False)
    def expire_tokens() -> Ok:
        with state.lock:
            state.tokens = {t: (a, time.time() - 1) for t, (a, _) in state.tokens.items()}
        return Ok()

    return [
        jscode2session,
        token,
        stable_token,
        phone_number,
        subscribe_send,
        apps,
        codes,
        phone_codes,
        subscriptions,
        outbox,
        session_key,
        calls,
        fail,
        expire_tokens,
    ]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("wechat", "WeChat mini-program server API", settings, _handlers(_State()))
