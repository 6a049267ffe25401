"""Simulator of the Alipay open-platform gateway (`https://openapi.alipay.com/gateway.do`).

`POST /alipay/gateway.do`, form-encoded (public parameters may also sit in the query string, as the SDKs send
them): `app_id, method, format=JSON, charset=utf-8, sign_type=RSA2, timestamp (yyyy-MM-dd HH:mm:ss, Beijing),
version=1.0, sign`, and per method `grant_type`/`code`/`refresh_token`, `auth_token`, or `biz_content` (JSON).

Request signatures (RSA2 = SHA256withRSA, PKCS#1 v1.5) are checked the way Alipay documents: every parameter but
`sign`, empty values left out, sorted by name (ASCII), joined as `k=v` with `&`, unencoded UTF-8; the signature is
base64 and verified against the app public key registered with the simulator. The answer is
`{"<method with _ for .>_response": {...}, "sign": "..."}` (or `error_response`), where `sign` is RSA2 over the
exact text of the response node, made with the simulator's "Alipay public key" pair.

Methods: `alipay.system.oauth.token` (grant_type `authorization_code` with `code`, or `refresh_token`),
`alipay.user.info.share` (`auth_token`), `alipay.open.app.mini.templatemessage.send` (biz_content `to_user_id`,
`form_id`, `user_template_id`, `page`, `data`). Error codes as Alipay answers them: 40001 Missing Required
Arguments (isv.missing-method, isv.missing-signature, isv.missing-app-id), 40002 Invalid Arguments
(isv.invalid-app-id, isv.invalid-signature, isv.invalid-signature-type, isv.invalid-timestamp, isv.invalid-method,
isv.code-invalid, isv.refresh-token-invalid), 20001 aop.invalid-auth-token, 20000 isp.unknow-error, 40004 Business
Failed (for template messages: USER_TEMPLATE_ILLEGAL, FORM_ID_ILLEGAL, TO_USER_ID_ILLEGAL — the simulator's
names for those three cases).

Control (hidden from OpenAPI): `POST /alipay/_sim/apps` registers an app's public key and answers the Alipay public
key; `POST /alipay/_sim/codes` mints a my.getAuthCode code for a simulated user; `POST /alipay/_sim/form-ids` a
form id (a form submitted in the mini program); `GET /alipay/_sim/outbox?user_id=`; `GET /alipay/_sim/counts` the
template messages accepted in all; `POST /alipay/_sim/fail`
makes the next answers a system error or a response tampered with after signing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from collections import deque
from typing import Annotated, Any, Literal

import msgspec
from cryptography.hazmat.primitives import serialization
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, RequestBody, Schema
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from core.clock import SHANGHAI as BEIJING
from core.crypto import generate_rsa_key, rsa_sign, rsa_verify
from core.settings import Settings
from simulators.faults import FailureQueue

GATEWAY = "/alipay/gateway.do"
CODE_TTL = 300
ACCESS_TTL = 1_296_000
REFRESH_TTL = 2_592_000
FORM_ID_TTL = 7 * 86400
TIMESTAMP_SKEW = 15 * 60
OUTBOX_MAX = 50
METHODS = ("alipay.system.oauth.token", "alipay.user.info.share", "alipay.open.app.mini.templatemessage.send")
MAX_PARAM = 8192

Err = tuple[str, str, str, str]  # code, msg, sub_code, sub_msg
MISSING = "40001", "Missing Required Arguments"
INVALID = "40002", "Invalid Arguments"
BUSINESS = "40004", "Business Failed"


class AppRegistration(msgspec.Struct):
    app_id: Annotated[str, Meta(pattern=r"^[0-9]{16}$")]
    public_key_pem: Annotated[str, Meta(min_length=100, max_length=2000)]


class AlipayKey(msgspec.Struct):
    alipay_public_key_pem: str


class CodeRequest(msgspec.Struct):
    app_id: Annotated[str, Meta(pattern=r"^[0-9]{16}$")]
    user: Annotated[str, Meta(min_length=1, max_length=64, description="any key naming the simulated Alipay user")]


class CodeMinted(msgspec.Struct):
    auth_code: str
    user_id: str
    open_id: str


class FormIdRequest(msgspec.Struct):
    user_id: Annotated[str, Meta(pattern=r"^2088[0-9]{12}$")]


class FormId(msgspec.Struct):
    form_id: str


class FailRequest(msgspec.Struct):
    count: Annotated[int, Meta(ge=0, le=10_000)]
    mode: Literal["system_error", "tamper"] = "system_error"


class Delivered(msgspec.Struct):
    user_id: str
    user_template_id: str
    page: str
    data: dict[str, Any]
    received_at: float


class Outbox(msgspec.Struct):
    items: list[Delivered]


class Sent(msgspec.Struct):
    total: int


class Ok(msgspec.Struct):
    ok: bool = True


class _User(msgspec.Struct):
    app_id: str
    user_id: str
    open_id: str


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key = generate_rsa_key(2048)
        self.apps: dict[str, Any] = {}  # app_id -> RSA public key
        self.users: dict[str, _User] = {}  # user_id -> user
        self.codes: dict[str, tuple[str, float]] = {}  # auth_code -> (user_id, expires_at)
        self.access: dict[str, tuple[str, float]] = {}
        self.refresh: dict[str, tuple[str, float]] = {}
        self.form_ids: dict[str, tuple[str, float]] = {}  # form_id -> (user_id, expires_at)
        self.outbox: dict[str, deque[Delivered]] = {}
        self.sent = 0  # template messages accepted, over all users (the outboxes keep only the latest)
        self.failures: FailureQueue[FailRequest] = FailureQueue(self.lock)

    def public_pem(self) -> str:
        raw: bytes = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return raw.decode()


def sign_content(params: dict[str, str]) -> str:
    """Alipay's string to sign for a request: all parameters but `sign`, non-empty, sorted, `k=v` joined by `&`."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def _user_ids(app_id: str, user: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{app_id}|{user}".encode()).digest()
    user_id = "2088" + str(int.from_bytes(digest[:8], "big") % 10**12).zfill(12)
    open_id = "0" + base64.urlsafe_b64encode(digest[8:32]).decode().rstrip("=")
    return user_id, open_id


def _now_text() -> str:
    return dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _error(code: tuple[str, str], sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"code": code[0], "msg": code[1], "sub_code": sub_code, "sub_msg": sub_msg}


def _node(method: str) -> str:
    return method.replace(".", "_") + "_response"


class _Gateway:
    def __init__(self, state: _State) -> None:
        self.state = state

    def check(self, p: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
        """(node, error) when the public parameters or the signature are refused."""
        method = p.get("method", "")
        node = _node(method) if method in METHODS else "error_response"
        if not method:
            return node, _error(MISSING, "isv.missing-method", "缺少方法名参数")
        if method not in METHODS:
            return node, _error(INVALID, "isv.invalid-method", "不存在的方法名")
        app_id = p.get("app_id", "")
        if not app_id:
            return node, _error(MISSING, "isv.missing-app-id", "缺少AppID参数")
        key = self.state.apps.get(app_id)
        if key is None:
            return node, _error(INVALID, "isv.invalid-app-id", "无效的AppID参数")
        if not p.get("sign"):
            return node, _error(MISSING, "isv.missing-signature", "缺少签名参数")
        if p.get("sign_type") != "RSA2":
            return node, _error(INVALID, "isv.invalid-signature-type", "无效的签名类型")
        try:
            at = dt.datetime.strptime(p.get("timestamp", ""), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        except ValueError:
            return node, _error(INVALID, "isv.invalid-timestamp", "非法的时间戳参数")
        if abs(at.timestamp() - time.time()) > TIMESTAMP_SKEW:
            return node, _error(INVALID, "isv.invalid-timestamp", "非法的时间戳参数")
        try:
            signature = base64.b64decode(p["sign"], validate=True)
        except ValueError:
            signature = b""
        if not signature or not rsa_verify(key, signature, sign_content(p).encode("utf-8")):
            return node, _error(
                INVALID, "isv.invalid-signature", "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配"
            )
        return None

    def oauth_token(self, p: dict[str, str]) -> tuple[str, dict[str, Any]]:
        s = self.state
        grant = p.get("grant_type", "")
        now = time.time()
        if grant == "authorization_code":
            found = s.codes.pop(p.get("code", ""), None)
            if found is None or found[1] <= now or s.users[found[0]].app_id != p["app_id"]:
                return "error_response", _error(INVALID, "isv.code-invalid", "授权码code无效")
            user_id = found[0]
        elif grant == "refresh_token":
            found = s.refresh.pop(p.get("refresh_token", ""), None)
            if found is None or found[1] <= now:
                return "error_response", _error(INVALID, "isv.refresh-token-invalid", "刷新令牌refresh_token无效")
            user_id = found[0]
        else:
            return "error_response", _error(INVALID, "isv.grant-type-invalid", "grant_type参数不正确")
        access, refresh = "authusrB" + secrets.token_hex(16), "authusrB" + secrets.token_hex(16)
        s.access[access] = (user_id, now + ACCESS_TTL)
        s.refresh[refresh] = (user_id, now + REFRESH_TTL)
        user = s.users[user_id]
        return _node("alipay.system.oauth.token"), {
            "user_id": user.user_id,
            "open_id": user.open_id,
            "access_token": access,
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
            "re_expires_in": REFRESH_TTL,
            "auth_start": _now_text(),
        }

    def user_info(self, p: dict[str, str]) -> tuple[str, dict[str, Any]]:
        node = _node("alipay.user.info.share")
        found = self.state.access.get(p.get("auth_token", ""))
        if found is None or found[1] <= time.time():
            return node, {
                "code": "20001",
                "msg": "Insufficient Token Permissions",
                "sub_code": "aop.invalid-auth-token",
                "sub_msg": "无效的访问令牌",
            }
        user = self.state.users[found[0]]
        return node, {
            "code": "10000",
            "msg": "Success",
            "user_id": user.user_id,
            "open_id": user.open_id,
            "nick_name": "支付宝用户",
            "avatar": "https://tfs.alipayobjects.com/images/partner/sim.png",
        }

    def template_send(self, p: dict[str, str]) -> tuple[str, dict[str, Any]]:
        node = _node("alipay.open.app.mini.templatemessage.send")
        try:
            biz = json.loads(p.get("biz_content", ""))
            data = json.loads(biz["data"]) if isinstance(biz.get("data"), str) else None
            to_user, form_id, template, page = (
                str(biz[k]) for k in ("to_user_id", "form_id", "user_template_id", "page")
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return node, _error(MISSING, "isv.missing-biz-content", "缺少业务参数或格式不正确")
        s = self.state
        user = s.users.get(to_user)
        if user is None or user.app_id != p["app_id"]:
            return node, _error(BUSINESS, "TO_USER_ID_ILLEGAL", "用户ID不合法")
        if not template.startswith("tpl") or not isinstance(data, dict):
            return node, _error(BUSINESS, "USER_TEMPLATE_ILLEGAL", "模板不合法")
        found = s.form_ids.pop(form_id, None)
        if found is None or found[0] != to_user or found[1] <= time.time():
            return node, _error(BUSINESS, "FORM_ID_ILLEGAL", "form_id不合法或已使用")
        box = s.outbox.setdefault(to_user, deque(maxlen=OUTBOX_MAX))
        box.append(Delivered(to_user, template, page, data, time.time()))
        s.sent += 1
        return node, {"code": "10000", "msg": "Success"}

    def answer(self, p: dict[str, str]) -> str:
        failure = self.state.failures.take()
        with self.state.lock:
            if failure is not None and failure.mode == "system_error":
                node, body = (
                    "error_response",
                    _error(("20000", "Service Currently Unavailable"), "isp.unknow-error", "系统繁忙"),
                )
            else:
                refused = self.check(p)
                if refused is not None:
                    node, body = refused
                    return json.dumps({node: body}, ensure_ascii=False, separators=(",", ":"))  # unsigned, as Alipay
                method = p["method"]
                handler = {
                    "alipay.system.oauth.token": self.oauth_token,
                    "alipay.user.info.share": self.user_info,
                    "alipay.open.app.mini.templatemessage.send": self.template_send,
                }[method]
                node, body = handler(p)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        sign = base64.b64encode(rsa_sign(self.state.key, content.encode("utf-8"))).decode()
        if failure is not None and failure.mode == "tamper":  # a man in the middle changed the answer after signing
            content = content.replace('"user_id":"2088', '"user_id":"2089').replace('"10000"', '"10001"')
        return f'{{"{node}":{content},"sign":"{sign}"}}'


def _handlers(state: _State) -> list[object]:
    gateway = _Gateway(state)

    @post(
        "/gateway.do",
        summary="The open-platform gateway: one operation per `method`",
        tags=["gateway"],
        status_code=200,
        media_type=MediaType.JSON,
    )
    async def gateway_do(request: Request[Any, Any, Any]) -> Response[str]:
        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        raw = await request.body()
        if raw:
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        params = {k: v[:MAX_PARAM] for k, v in list(params.items())[:40]}
        return Response(gateway.answer(params), media_type="application/json;charset=utf-8")

    @post("/_sim/apps", include_in_schema=False, status_code=200, sync_to_thread=False)
    def apps(data: JSONBody[AppRegistration]) -> AlipayKey:
        """Control: the developer console — upload the app public key, copy the Alipay public key."""
        key = serialization.load_pem_public_key(data.public_key_pem.encode())
        with state.lock:
            state.apps[data.app_id] = key
        return AlipayKey(state.public_pem())

    @post("/_sim/codes", include_in_schema=False, status_code=201, sync_to_thread=False)
    def codes(data: JSONBody[CodeRequest]) -> CodeMinted:
        """Control: what my.getAuthCode gives the mini program of this simulated user."""
        user_id, open_id = _user_ids(data.app_id, data.user)
        code = secrets.token_hex(16)
        with state.lock:
            state.users.setdefault(user_id, _User(data.app_id, user_id, open_id))
            state.codes[code] = (user_id, time.time() + CODE_TTL)
        return CodeMinted(code, user_id, open_id)

    @post("/_sim/form-ids", include_in_schema=False, status_code=201, sync_to_thread=False)
    def form_ids(data: JSONBody[FormIdRequest]) -> FormId:
        """Control: the user submitted a form in the mini program; its form id allows one template message."""
        form_id = "MjA4O" + secrets.token_hex(14)
        with state.lock:
            state.form_ids[form_id] = (data.user_id, time.time() + FORM_ID_TTL)
        return FormId(form_id)

    @get("/_sim/outbox", include_in_schema=False, sync_to_thread=False)
    def outbox(user_id: Annotated[str, Parameter(pattern=r"^2088[0-9]{12}$")]) -> Outbox:
        with state.lock:
            return Outbox(items=list(state.outbox.get(user_id, ())))

    @get("/_sim/counts", include_in_schema=False, sync_to_thread=False)
    def counts() -> Sent:
        """Control: template messages accepted so far (a broadcast counts thousands)."""
        with state.lock:
            return Sent(state.sent)

    @post("/_sim/fail", include_in_schema=False, status_code=200, sync_to_thread=False)
    def fail(data: JSONBody[FailRequest]) -> Ok:
        """Control: the next `count` answers are a system error or tampered with after signing (0 clears)."""
        state.failures.control(data)
        return Ok()

    return [gateway_do, apps, codes, form_ids, outbox, counts, fail]


def _document(app: Litestar) -> None:
    doc = app.openapi_schema
    op = doc.paths[GATEWAY].post if doc.paths and GATEWAY in doc.paths else None
    assert op is not None
    text = Schema(type=OpenAPIType.STRING, max_length=MAX_PARAM)
    op.responses = {
        "200": OpenAPIResponse(
            description='`{"<method>_response": {...}, "sign": "..."}` or `{"error_response": {...}}`',
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
        ),
        **{k: v for k, v in (op.responses or {}).items() if k != "200"},
    }
    op.request_body = RequestBody(
        required=True,
        content={
            "application/x-www-form-urlencoded": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["app_id", "method", "sign_type", "sign", "timestamp"],
                    properties={
                        "app_id": text,
                        "method": Schema(type=OpenAPIType.STRING, enum=list(METHODS)),
                        "format": Schema(type=OpenAPIType.STRING, enum=["JSON"]),
                        "charset": Schema(type=OpenAPIType.STRING, enum=["utf-8"]),
                        "sign_type": Schema(type=OpenAPIType.STRING, enum=["RSA2"]),
                        "sign": text,
                        "timestamp": Schema(type=OpenAPIType.STRING, description="yyyy-MM-dd HH:mm:ss, Beijing"),
                        "version": Schema(type=OpenAPIType.STRING, enum=["1.0"]),
                        "grant_type": Schema(type=OpenAPIType.STRING, enum=["authorization_code", "refresh_token"]),
                        "code": text,
                        "refresh_token": text,
                        "auth_token": text,
                        "biz_content": text,
                    },
                )
            )
        },
    )


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    app = simple_sim("alipay", "Alipay open platform", settings, _handlers(_State()))
    _document(app)
    return app
