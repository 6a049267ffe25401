"""Simulator of the Apple Push Notification service (provider API, token-based authentication).

`POST /apns/3/device/<token>` with `authorization: bearer <ES256 JWT>` (header `kid`, claims `iss` team id and
`iat`), `apns-topic`, `apns-priority`, `apns-expiration`, `apns-collapse-id` and a JSON payload. Answers like APNs:
200 with an `apns-id` header, or `{"reason": ...}` with 400 (BadDeviceToken, MissingTopic, BadPriority, ...),
403 (MissingProviderToken, InvalidProviderToken, ExpiredProviderToken), 410 Unregistered, 413 PayloadTooLarge,
429 TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable.

Control (hidden from OpenAPI): `POST /apns/_sim/keys` registers a provider's public JWK (the real service learns it
from the developer account), `POST /apns/_sim/unregister` marks a token as uninstalled, `POST /apns/_sim/fail`
makes the next sends fail, throttle or slow down. `GET /apns/_sim/received?token=` lists what the device shows (a
notification carrying an `apns-collapse-id` the device already holds replaces it, as APNs does); `POST
/apns/_sim/counts` counts that for many tokens.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from typing import Annotated, Any, Literal

import jwt
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.openapi.spec import Parameter as OAParameter
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from core.settings import Settings
from simulators.device_controls import Ok, device_controls
from simulators.faults import FailureQueue

TOKEN = re.compile(r"^[0-9a-f]{64}$")
MAX_PAYLOAD = 4096
PER_TOKEN = 50
MAX_TOKENS = 200_000
TOKEN_MAX_AGE = 3600
PUSH_PATH = "/apns/3/device/{token}"
_REASONS: dict[int, str] = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}


class ApnsError(msgspec.Struct, omit_defaults=True):
    reason: str
    timestamp: int | None = None  # with 410: when the token stopped being valid (ms since the epoch)


class Received(msgspec.Struct):
    apns_id: str
    token: str
    topic: str
    priority: int
    expiration: int
    collapse_id: str | None
    payload: dict[str, Any]
    received_at: dt.datetime


class ReceivedList(msgspec.Struct):
    items: list[Received]
    total: int


class KeyRegistration(msgspec.Struct):
    team_id: Annotated[str, Meta(pattern=r"^[A-Z0-9]{10}$")]
    key_id: Annotated[str, Meta(pattern=r"^[A-Z0-9]{10}$")]
    jwk: dict[str, Any]


class Unregister(msgspec.Struct):
    token: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]


class FailRequest(msgspec.Struct):
    count: Annotated[int, Meta(ge=0, le=100_000)]
    status: Literal[0, 429, 500, 503] = 503  # 0: succeed, only slowly
    delay_ms: Annotated[int, Meta(ge=0, le=10_000)] = 0
    retry_after: Annotated[int, Meta(ge=0, le=60)] = 0


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, tuple[str, Any]] = {}  # key id -> (team id, public key)
        self.verified: dict[str, tuple[float, str]] = {}  # provider token -> (valid until, key id)
        self.unregistered: dict[str, int] = {}
        self.failures: FailureQueue[FailRequest] = FailureQueue(self.lock)
        self.received: OrderedDict[str, deque[Received]] = OrderedDict()
        self.total = 0  # requests accepted
        self.collapsed = 0  # of which replaced a notification the device already showed

    def take_failure(self) -> FailRequest | None:
        return self.failures.take()

    def store(self, item: Received) -> None:
        """Keep what the device shows: a notification whose apns-collapse-id the device already holds replaces
        that one (APNs collapse semantics), so a repeat of the same notification is not a second delivery."""
        with self.lock:
            box = self.received.pop(item.token, None) or deque(maxlen=PER_TOKEN)
            same = [i for i, r in enumerate(box) if item.collapse_id and r.collapse_id == item.collapse_id]
            if same:
                del box[same[0]]
                self.collapsed += 1
            box.append(item)
            self.received[item.token] = box
            self.total += 1
            while len(self.received) > MAX_TOKENS:
                self.received.popitem(last=False)


def _err(
    status: int, reason: str, headers: dict[str, str] | None = None, timestamp: int | None = None
) -> Response[Any]:
    return Response(
        ApnsError(reason=reason, timestamp=timestamp),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _check_token(state: _State, authorization: str | None) -> str | None:
    """The reason the provider token is refused, or None. A verified token is remembered until it expires (APNs
    too checks a provider token once per connection, not per notification)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return "MissingProviderToken"
    token = authorization[7:].strip()
    known = state.verified.get(token)
    if known is not None and known[0] > time.time() and known[1] in state.keys:
        return None
    refused = _verify_token(state, token)
    if refused is None:
        kid = jwt.get_unverified_header(token)["kid"]
        iat = jwt.decode(token, options={"verify_signature": False})["iat"]
        with state.lock:
            if len(state.verified) > 1000:
                state.verified.clear()
            state.verified[token] = (iat + TOKEN_MAX_AGE, kid)
    return refused


def _verify_token(state: _State, token: str) -> str | None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return "InvalidProviderToken"
    kid = header.get("kid")
    if header.get("alg") != "ES256" or not isinstance(kid, str) or kid not in state.keys:
        return "InvalidProviderToken"
    team, key = state.keys[kid]
    try:
        claims = jwt.decode(token, key, algorithms=["ES256"], issuer=team, options={"require": ["iss", "iat"]})
    except jwt.PyJWTError:
        return "InvalidProviderToken"
    iat = claims.get("iat")
    if not isinstance(iat, int) or iat > time.time() + 60:
        return "InvalidProviderToken"
    if iat < time.time() - TOKEN_MAX_AGE:
        return "ExpiredProviderToken"
    return None


def _handlers(state: _State) -> list[object]:
    responses = {
        code: ResponseSpec(ApnsError, description=desc, media_type="application/json")
        for code, desc in {
            400: "BadDeviceToken, MissingTopic, BadPriority, BadExpirationDate, BadCollapseId, BadPayload, ...",
            403: "MissingProviderToken, InvalidProviderToken, ExpiredProviderToken",
            410: "Unregistered: the app is no longer installed",
            413: "PayloadTooLarge (over 4096 bytes)",
            429: "TooManyRequests",
            500: "InternalServerError",
            503: "ServiceUnavailable",
        }.items()
    }

    @post(
        "/3/device/{token:str}",
        summary="Send a notification to one device",
        tags=["apns"],
        status_code=200,
        responses=responses,
        security=[{"provider_token": []}],
    )
    async def push(request: Request[Any, Any, Any], token: str) -> Response[None]:
        refused = _check_token(state, request.headers.get("authorization"))
        if refused:
            return _err(403, refused)
        failure = state.take_failure()
        if failure is not None:
            if failure.delay_ms:
                await asyncio.sleep(failure.delay_ms / 1000)
            if failure.status:
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else None
                return _err(failure.status, _REASONS[failure.status], headers)
        if not TOKEN.match(token):
            return _err(400, "BadDeviceToken")
        h = request.headers
        topic = h.get("apns-topic", "")
        if not topic or len(topic) > 255:
            return _err(400, "MissingTopic")
        priority_raw = h.get("apns-priority", "10")
        if priority_raw not in ("1", "5", "10"):
            return _err(400, "BadPriority")
        expiration_raw = h.get("apns-expiration", "0")
        if not expiration_raw.isdigit() or len(expiration_raw) > 12:
            return _err(400, "BadExpirationDate")
        collapse = h.get("apns-collapse-id")
        if collapse is not None and (not collapse or len(collapse.encode()) > 64):
            return _err(400, "BadCollapseId")
        apns_id = h.get("apns-id") or str(uuid.uuid4())
        try:
            apns_id = str(uuid.UUID(apns_id))
        except ValueError:
            return _err(400, "BadMessageId")
        raw = await request.body()
        if not raw:
            return _err(400, "PayloadEmpty")
        if len(raw) > MAX_PAYLOAD:
            return _err(413, "PayloadTooLarge")
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _err(400, "BadPayload")
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return _err(400, "BadPayload")
        gone = state.unregistered.get(token)
        if gone is not None:
            return _err(410, "Unregistered", timestamp=gone)
        state.store(
            Received(
                apns_id=apns_id,
                token=token,
                topic=topic,
                priority=int(priority_raw),
                expiration=int(expiration_raw),
                collapse_id=collapse,
                payload=payload,
                received_at=dt.datetime.now(dt.UTC),
            )
        )
        return Response(None, status_code=200, headers={"apns-id": apns_id, "apns-unique-id": str(uuid.uuid4())})

    @get("/_sim/received", summary="Control: notifications accepted for a token", tags=["sim"], sync_to_thread=False)
    def received(
        token: Annotated[str, Parameter(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")],
        limit: Annotated[int, Parameter(ge=1, le=PER_TOKEN)] = PER_TOKEN,
    ) -> ReceivedList:
        with state.lock:
            items = list(state.received.get(token, ()))[::-1][:limit]
            return ReceivedList(items=items, total=state.total)

    @post("/_sim/keys", status_code=200, include_in_schema=False, sync_to_thread=False)
    def keys(data: JSONBody[KeyRegistration]) -> Ok:
        """Control: register a provider's ES256 public key (JWK) under its key id and team id."""
        key = jwt.PyJWK(data.jwk, algorithm="ES256").key
        with state.lock:
            state.keys[data.key_id] = (data.team_id, key)
            state.verified = {t: v for t, v in state.verified.items() if v[1] != data.key_id}
        return Ok()

    @post("/_sim/unregister", status_code=200, include_in_schema=False, sync_to_thread=False)
    def unregister(data: JSONBody[Unregister]) -> Ok:
        """Control: the app was removed from this device; sends to the token answer 410 Unregistered."""
        with state.lock:
            state.unregistered[data.token] = int(time.time() * 1000)
        return Ok()

    return [push, received, keys, unregister, *device_controls(state, FailRequest)]


def _document(app: Litestar) -> None:
    """The payload is read raw (APNs answers every error in its own shape), so state the body and headers here."""
    doc = app.openapi_schema
    op = doc.paths[PUSH_PATH].post if doc.paths and PUSH_PATH in doc.paths else None
    assert op is not None
    op.request_body = RequestBody(
        required=True,
        description="notification payload, at most 4096 bytes",
        content={
            "application/json": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["aps"],
                    properties={"aps": Schema(type=OpenAPIType.OBJECT, description="alert, badge, sound, ...")},
                )
            )
        },
    )
    params = [
        OAParameter(name="apns-topic", param_in="header", required=False, description="the app's bundle id"),
        OAParameter(name="apns-priority", param_in="header", required=False, description="10, 5 or 1"),
        OAParameter(name="apns-expiration", param_in="header", required=False, description="UNIX seconds; 0: once"),
        OAParameter(name="apns-collapse-id", param_in="header", required=False, description="at most 64 bytes"),
        OAParameter(name="apns-id", param_in="header", required=False, description="UUID of the notification"),
    ]
    for p in params:
        p.schema = Schema(type=OpenAPIType.STRING)
    op.parameters = [*(op.parameters or []), *params]
    if doc.components is not None:
        schemes = dict(doc.components.security_schemes or {})
        from litestar.openapi.spec import SecurityScheme

        schemes["provider_token"] = SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description="ES256 provider token"
        )
        doc.components.security_schemes = schemes


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    app = simple_sim("apns", "Apple Push Notification service", settings, _handlers(_State()))
    _document(app)
    return app
