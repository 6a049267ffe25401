"""Simulator of Huawei HarmonyOS Push Kit (REST API v3).

`POST /hms/v3/<project_id>/messages:send` with `Authorization: Bearer <service-account JWT>` (PS256; header
`kid`; claims `iss` the service account, `aud` the token endpoint, `iat`, `exp`) and a body
`{"payload": {"notification": {...}}, "target": {"token": [... up to 1000]}, "pushOptions": {...}}`.
Answers `{"code": "80000000", "msg": "Success", "requestId": ...}`; `80100000` when some tokens are illegal (their
list in `msg`, as Push Kit does); `80300007` (HTTP 400) when all are; `80100001` for a malformed request,
`80300010` for more than 1000 tokens, `80200001`/`80200003` (HTTP 401) for a bad or expired JWT. Throttling answers
HTTP 429 with `80300013` and `Retry-After`; an outage HTTP 503 `81000001` (codes of the simulator's choosing for
these two).

Control (hidden from OpenAPI): `POST /hms/_sim/keys` registers a service account's public JWK,
`POST /hms/_sim/unregister` makes a token illegal, `POST /hms/_sim/fail` makes the next sends fail or slow down.
`GET /hms/_sim/received?token=` lists what a token's device shows (a notification whose `notifyId` the device already
holds replaces it, as on HarmonyOS); `POST /hms/_sim/counts` counts that for many tokens.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import uuid
from collections import OrderedDict, deque
from typing import Annotated, Any, Literal

import jwt
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema, SecurityScheme
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from core.settings import Settings
from simulators.device_controls import Ok, device_controls
from simulators.faults import FailureQueue

AUDIENCE = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{32,256}$")
MAX_TOKENS_PER_REQUEST = 1000
MAX_BODY = 8192 + MAX_TOKENS_PER_REQUEST * 260
PER_TOKEN = 50
MAX_TRACKED = 200_000
SEND_PATH = "/hms/v3/{project_id}/messages:send"


class HmsResult(msgspec.Struct):
    code: str
    msg: str
    requestId: str


class Received(msgspec.Struct):
    request_id: str
    project_id: str
    token: str
    payload: dict[str, Any]
    push_options: dict[str, Any]
    received_at: dt.datetime


class ReceivedList(msgspec.Struct):
    items: list[Received]
    total: int


class KeyRegistration(msgspec.Struct):
    project_id: Annotated[str, Meta(pattern=r"^[0-9]{1,32}$")]
    key_id: Annotated[str, Meta(min_length=1, max_length=64)]
    iss: Annotated[str, Meta(min_length=1, max_length=128)]
    jwk: dict[str, Any]


class Unregister(msgspec.Struct):
    token: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{32,256}$")]


class FailRequest(msgspec.Struct):
    count: Annotated[int, Meta(ge=0, le=100_000)]
    status: Literal[0, 429, 500, 503] = 503
    delay_ms: Annotated[int, Meta(ge=0, le=10_000)] = 0
    retry_after: Annotated[int, Meta(ge=0, le=60)] = 1


def _notify_id(payload: dict[str, Any]) -> object:
    note = payload.get("notification")
    return note.get("notifyId") if isinstance(note, dict) else None


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, tuple[str, str, Any]] = {}  # kid -> (project, iss, public key)
        self.illegal: set[str] = set()
        self.failures: FailureQueue[FailRequest] = FailureQueue(self.lock)
        self.received: OrderedDict[str, deque[Received]] = OrderedDict()
        self.total = 0
        self.collapsed = 0

    def take_failure(self) -> FailRequest | None:
        return self.failures.take()

    def store(self, items: list[Received]) -> None:
        """Keep what each device shows: a notification with a `notifyId` the device already holds replaces it."""
        with self.lock:
            for item in items:
                box = self.received.pop(item.token, None) or deque(maxlen=PER_TOKEN)
                nid = _notify_id(item.payload)
                same = [i for i, r in enumerate(box) if nid is not None and _notify_id(r.payload) == nid]
                if same:
                    del box[same[0]]
                    self.collapsed += 1
                box.append(item)
                self.received[item.token] = box
            self.total += len(items)
            while len(self.received) > MAX_TRACKED:
                self.received.popitem(last=False)


def _answer(status: int, code: str, msg: str, headers: dict[str, str] | None = None) -> Response[HmsResult]:
    body = HmsResult(code=code, msg=msg, requestId=uuid.uuid4().hex)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _check_jwt(state: _State, project_id: str, authorization: str | None) -> tuple[str, str] | None:
    """(code, msg) when the service-account JWT is refused, else None."""
    if not authorization or not authorization.startswith("Bearer "):
        return "80200001", "Oauth authentication error"
    token = authorization[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return "80200001", "Oauth authentication error"
    kid = header.get("kid")
    if header.get("alg") != "PS256" or not isinstance(kid, str) or kid not in state.keys:
        return "80200001", "Oauth authentication error"
    project, iss, key = state.keys[kid]
    if project != project_id:
        return "80200001", "Oauth authentication error"
    try:
        jwt.decode(token, key, algorithms=["PS256"], issuer=iss, audience=AUDIENCE, options={"require": ["iat", "exp"]})
    except jwt.ExpiredSignatureError:
        return "80200003", "Oauth token expired"
    except jwt.PyJWTError:
        return "80200001", "Oauth authentication error"
    return None


def _handlers(state: _State) -> list[object]:
    responses = {
        code: ResponseSpec(HmsResult, description=desc, media_type="application/json")
        for code, desc in {
            400: "80100001 illegal parameters, 80300007 all tokens invalid, 80300010 too many tokens",
            401: "80200001 authentication error, 80200003 token expired",
            413: "80300008 message body too large",
            429: "80300013 flow control (simulator's code), with Retry-After",
            500: "81000001 internal error",
            503: "81000001 service unavailable (simulator's code), with Retry-After",
        }.items()
    }

    @post(
        "/v3/{project_id:str}/messages:send",
        summary="Send a notification to up to 1000 tokens",
        tags=["push-kit"],
        status_code=200,
        responses=responses,
        security=[{"service_account": []}],
    )
    async def send(request: Request[Any, Any, Any], project_id: str) -> Response[HmsResult]:
        refused = _check_jwt(state, project_id, request.headers.get("authorization"))
        if refused:  # the JWT names its project, so an unknown project id is refused here too
            return _answer(401, *refused)
        failure = state.take_failure()
        if failure is not None:
            if failure.delay_ms:
                await asyncio.sleep(failure.delay_ms / 1000)
            if failure.status == 429:
                return _answer(429, "80300013", "Flow control", {"Retry-After": str(failure.retry_after)})
            if failure.status:
                headers = {"Retry-After": str(failure.retry_after)} if failure.status == 503 else None
                return _answer(failure.status, "81000001", "System internal error", headers)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _answer(413, "80300008", "The message body size exceeds the default value")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _answer(400, "80100001", "Some request parameters are invalid")
        target = body.get("target") if isinstance(body, dict) else None
        tokens = target.get("token") if isinstance(target, dict) else None
        payload = body.get("payload") if isinstance(body, dict) else None
        options = body.get("pushOptions", {}) if isinstance(body, dict) else None
        if (
            not isinstance(tokens, list)
            or not tokens
            or not all(isinstance(t, str) for t in tokens)
            or not isinstance(payload, dict)
            or not isinstance(options, dict)
        ):
            return _answer(400, "80100001", "Some request parameters are invalid")
        if len(tokens) > MAX_TOKENS_PER_REQUEST:
            return _answer(400, "80300010", "The number of tokens exceeds the limit")
        illegal = [t for t in tokens if not TOKEN.match(t) or t in state.illegal]
        good = [t for t in dict.fromkeys(tokens) if t not in illegal]
        if not good:
            return _answer(400, "80300007", "All the tokens are invalid")
        request_id = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        state.store([Received(request_id, project_id, t, payload, options, now) for t in good])
        if illegal:
            detail = json.dumps({"success": len(good), "failure": len(illegal), "illegal_tokens": illegal})
            return Response(HmsResult(code="80100000", msg=detail, requestId=request_id))
        return Response(HmsResult(code="80000000", msg="Success", requestId=request_id))

    @get("/_sim/received", summary="Control: notifications sent to a token", tags=["sim"], sync_to_thread=False)
    def received(
        token: Annotated[str, Parameter(min_length=32, max_length=256, pattern=r"^[A-Za-z0-9_.:-]{32,256}$")],
        limit: Annotated[int, Parameter(ge=1, le=PER_TOKEN)] = PER_TOKEN,
    ) -> ReceivedList:
        with state.lock:
            return ReceivedList(items=list(state.received.get(token, ()))[::-1][:limit], total=state.total)

    @post("/_sim/keys", status_code=200, include_in_schema=False, sync_to_thread=False)
    def keys(data: JSONBody[KeyRegistration]) -> Ok:
        """Control: register a service account's PS256 public key (JWK)."""
        key = jwt.PyJWK(data.jwk, algorithm="PS256").key
        with state.lock:
            state.keys[data.key_id] = (data.project_id, data.iss, key)
        return Ok()

    @post("/_sim/unregister", status_code=200, include_in_schema=False, sync_to_thread=False)
    def unregister(data: JSONBody[Unregister]) -> Ok:
        """Control: the token becomes illegal (app uninstalled)."""
        with state.lock:
            state.illegal.add(data.token)
        return Ok()

    return [send, received, keys, unregister, *device_controls(state, FailRequest)]


def _document(app: Litestar) -> None:
    doc = app.openapi_schema
    op = doc.paths[SEND_PATH].post if doc.paths and SEND_PATH in doc.paths else None
    assert op is not None
    str_schema = Schema(type=OpenAPIType.STRING)
    op.request_body = RequestBody(
        required=True,
        content={
            "application/json": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["payload", "target"],
                    properties={
                        "payload": Schema(type=OpenAPIType.OBJECT, description="notification: title, body, ..."),
                        "target": Schema(
                            type=OpenAPIType.OBJECT,
                            required=["token"],
                            properties={
                                "token": Schema(type=OpenAPIType.ARRAY, items=str_schema, min_items=1, max_items=1000)
                            },
                        ),
                        "pushOptions": Schema(type=OpenAPIType.OBJECT, description="ttl, testMessage, biTag"),
                    },
                )
            )
        },
    )
    if doc.components is not None:
        schemes = dict(doc.components.security_schemes or {})
        schemes["service_account"] = SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description="service-account JWT (PS256)"
        )
        doc.components.security_schemes = schemes


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    app = simple_sim("hms", "Huawei Push Kit", settings, _handlers(_State()))
    _document(app)
    return app
