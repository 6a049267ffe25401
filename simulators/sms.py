"""Simulator of the SMS gateway (template messages in the style of the common Chinese cloud SMS APIs).

`POST /sms/v1/batch` sends one template to up to 100 numbers, each with its own parameters and reference (like Aliyun
SendBatchSms), answering per number. `GET /sms/v1/messages?out_id=` finds a message by the caller's reference (like
QuerySendDetails), so a caller that lost the answer can learn whether it was sent. Sent messages are kept in process
memory, the newest 50 per phone, so tests can read the codes they were sent from `GET /sms/_sim/outbox?phone=`.
`POST /sms/_sim/fail` makes the next sends fail; it is left out of the OpenAPI document on purpose: an API fuzzer
must not be able to break sending for everybody else.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import OrderedDict, deque
from typing import Annotated, Literal

import httpx
import msgspec
from litestar import Litestar, get, post
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from affairs import signing
from core.problems import ProblemError
from core.settings import Settings

PHONE_PATTERN = r"^1[3-9][0-9]{9}$"
Phone = Annotated[str, Meta(min_length=11, max_length=11, pattern=PHONE_PATTERN, description="mainland mobile number")]
ParamName = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_]+$")]
ParamValue = Annotated[str, Meta(max_length=64)]
MAX_PARAMS = 10
PER_PHONE = 50
MAX_PHONES = 50_000
MAX_OUT_IDS = 1_000_000
FailStatus = Literal[429, 500, 503]
_FAILURES: dict[int, tuple[str, str, str]] = {
    429: ("sms-rate-limited", "SMS sending rate exceeded", "短信发送过于频繁"),
    500: ("sms-gateway-error", "SMS gateway error", "短信网关内部错误"),
    503: ("sms-unavailable", "SMS gateway unavailable", "短信网关暂不可用"),
}


class SendRequest(msgspec.Struct):
    phone: Phone
    template: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="模板编号")]
    params: Annotated[dict[ParamName, ParamValue], Meta(max_length=MAX_PARAMS)] = {}
    sign_name: Annotated[str, Meta(min_length=1, max_length=32, description="短信签名")] = "苏证通"
    out_id: Annotated[str, Meta(max_length=64, description="caller's own reference")] | None = None


MAX_BATCH = 100  # numbers per batch call, as Aliyun SendBatchSms allows


class BatchItem(msgspec.Struct):
    phone: Phone
    params: Annotated[dict[ParamName, ParamValue], Meta(max_length=MAX_PARAMS)] = {}
    out_id: Annotated[str, Meta(max_length=64, description="caller's own reference")] | None = None


class BatchRequest(msgspec.Struct):
    """One template to many numbers, each with its own parameters (SendBatchSms-style)."""

    template: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="模板编号")]
    items: Annotated[list[BatchItem], Meta(min_length=1, max_length=MAX_BATCH)]
    sign_name: Annotated[str, Meta(min_length=1, max_length=32, description="短信签名")] = "苏证通"


class BatchResult(msgspec.Struct, omit_defaults=True):
    """Per number: `OK` with the gateway's message id, or the failure's code and HTTP-like status."""

    phone: str
    code: str
    status: int = 200
    message_id: str | None = None
    out_id: str | None = None
    retry_after: int | None = None


class BatchResponse(msgspec.Struct):
    items: list[BatchResult]


class SendResponse(msgspec.Struct):
    message_id: str
    code: Literal["OK"]
    phone: str


class Message(msgspec.Struct):
    message_id: str
    phone: str
    template: str
    params: dict[str, str]
    sign_name: str
    out_id: str | None
    sent_at: dt.datetime


class Outbox(msgspec.Struct):
    items: list[Message]


class SendDetails(msgspec.Struct):
    """QuerySendDetails-style answer: the messages accepted under the caller's `out_id` (none, or one)."""

    items: list[Message]


class CountRequest(msgspec.Struct):
    phones: Annotated[list[str], Meta(max_length=20_000)]


class Counts(msgspec.Struct):
    counts: dict[str, int]
    total: int  # messages accepted since the simulator started


class FailRequest(msgspec.Struct):
    count: Annotated[int, Meta(ge=0, le=100_000)]
    status: FailStatus = 503
    phone: Phone | None = None  # None: whatever the phone


class ReplyRequest(msgspec.Struct):
    phone: Phone
    content: Annotated[str, Meta(min_length=1, max_length=140)]


class ReplyResult(msgspec.Struct):
    status_code: int
    body: str


class FailState(msgspec.Struct):
    phone: str | None
    count: int
    status: int


class _State:
    """Sent messages per phone (least recently used phones forgotten first) and the injected failures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.boxes: OrderedDict[str, deque[Message]] = OrderedDict()
        self.by_out_id: OrderedDict[str, Message] = OrderedDict()
        self.total = 0
        self.failures: dict[str | None, tuple[int, int]] = {}  # phone or None -> (remaining, status)

    def set_failure(self, req: FailRequest) -> FailState:
        with self.lock:
            if req.count:
                self.failures[req.phone] = (req.count, req.status)
            else:
                self.failures.pop(req.phone, None)
        return FailState(phone=req.phone, count=req.count, status=req.status)

    def take_failure(self, phone: str) -> int | None:
        """The status this send must fail with, if a failure is pending for the phone or for any phone."""
        with self.lock:
            for key in (phone, None):
                pending = self.failures.get(key)
                if pending:
                    remaining, status = pending
                    if remaining > 1:
                        self.failures[key] = (remaining - 1, status)
                    else:
                        del self.failures[key]
                    return status
        return None

    def store(self, msg: Message) -> None:
        with self.lock:
            box = self.boxes.pop(msg.phone, None) or deque(maxlen=PER_PHONE)
            box.append(msg)
            self.total += 1
            self.boxes[msg.phone] = box
            while len(self.boxes) > MAX_PHONES:
                self.boxes.popitem(last=False)
            if msg.out_id:
                self.by_out_id[msg.out_id] = msg
                while len(self.by_out_id) > MAX_OUT_IDS:
                    self.by_out_id.popitem(last=False)

    def outbox(self, phone: str, limit: int) -> list[Message]:
        with self.lock:
            return list(self.boxes.get(phone, ()))[::-1][:limit]


def _handlers(state: _State, settings: Settings) -> list[object]:
    @post("/v1/messages", status_code=200, summary="Send a template SMS", tags=["sms"], sync_to_thread=False)
    def send(data: JSONBody[SendRequest]) -> SendResponse:
        status = state.take_failure(data.phone)
        if status is not None:
            slug, title, title_zh = _FAILURES[status]
            headers = {"Retry-After": "1"} if status == 429 else {}
            raise ProblemError(status, slug, title, title_zh, "simulated failure", headers=headers)
        msg = Message(
            message_id=uuid.uuid4().hex,
            phone=data.phone,
            template=data.template,
            params=dict(data.params),
            sign_name=data.sign_name,
            out_id=data.out_id,
            sent_at=dt.datetime.now(dt.UTC),
        )
        state.store(msg)
        return SendResponse(message_id=msg.message_id, code="OK", phone=data.phone)

    @post(
        "/v1/batch", status_code=200, summary="Send a template SMS to many numbers", tags=["sms"], sync_to_thread=False
    )
    def send_batch(data: JSONBody[BatchRequest]) -> BatchResponse:
        """Each number succeeds or fails on its own (an injected failure applies per number, like single sends)."""
        out: list[BatchResult] = []
        now = dt.datetime.now(dt.UTC)
        for item in data.items:
            status = state.take_failure(item.phone)
            if status is not None:
                retry = 1 if status == 429 else None
                out.append(BatchResult(item.phone, _FAILURES[status][0], status, out_id=item.out_id, retry_after=retry))
                continue
            msg = Message(
                message_id=uuid.uuid4().hex,
                phone=item.phone,
                template=data.template,
                params=dict(item.params),
                sign_name=data.sign_name,
                out_id=item.out_id,
                sent_at=now,
            )
            state.store(msg)
            out.append(BatchResult(item.phone, "OK", message_id=msg.message_id, out_id=item.out_id))
        return BatchResponse(items=out)

    @get("/_sim/outbox", summary="Control: messages sent to a phone, newest first", tags=["sim"], sync_to_thread=False)
    def outbox(
        phone: Annotated[str, Parameter(min_length=11, max_length=11, pattern=PHONE_PATTERN)],
        limit: Annotated[int, Parameter(ge=1, le=PER_PHONE)] = PER_PHONE,
    ) -> Outbox:
        return Outbox(items=state.outbox(phone, limit))

    @post("/_sim/fail", status_code=200, include_in_schema=False, sync_to_thread=False)
    def fail(data: JSONBody[FailRequest]) -> FailState:
        """Control: the next `count` sends (to `phone`, or to any phone when null) fail with `status`; 0 clears."""
        return state.set_failure(data)

    @get("/v1/messages", summary="Query a sent message by the caller's out_id", tags=["sms"], sync_to_thread=False)
    def details(out_id: Annotated[str | None, Parameter(max_length=64)] = None) -> SendDetails:
        with state.lock:
            found = state.by_out_id.get(out_id) if out_id else None
        return SendDetails(items=[found] if found else [])

    @post("/_sim/counts", status_code=200, include_in_schema=False, sync_to_thread=False)
    def counts(data: JSONBody[CountRequest]) -> Counts:
        """Control: messages each phone received."""
        with state.lock:
            return Counts(counts={p: len(state.boxes.get(p, ())) for p in data.phones}, total=state.total)

    @post("/_sim/replies", status_code=200, include_in_schema=False)
    async def reply(data: JSONBody[ReplyRequest]) -> ReplyResult:
        """Control: the phone replies to us (上行短信); the gateway calls back the province (signed, system sms)."""
        return await _uplink(settings, data)

    return [send, send_batch, outbox, fail, details, counts, reply]


UPLINK_PATH = "/affairs/v1/sms/replies"


async def _uplink(settings: Settings, data: ReplyRequest) -> ReplyResult:
    body = json.dumps(
        {
            "phone_number": data.phone,
            "content": data.content,
            "send_time": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}",
            "dest_code": "",
            "sequence_id": 0,
        },
        ensure_ascii=False,
    ).encode()
    headers = signing.sign_headers(signing.system_key(settings.var_path, "sms"), "sms", "POST", UPLINK_PATH, body)
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            settings.base_url + UPLINK_PATH, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    return ReplyResult(r.status_code, r.text[:300])


def _document_params(app: Litestar) -> None:
    """Litestar drops the constraints of a dict's keys, values and size from the schema: state them."""
    components = app.openapi_schema.components
    request = (components.schemas or {})["SendRequest"]
    assert request.properties is not None
    params = Schema(
        type=OpenAPIType.OBJECT,
        description="template variables",
        max_properties=MAX_PARAMS,
        property_names=Schema(type=OpenAPIType.STRING, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_]+$"),
        additional_properties=Schema(type=OpenAPIType.STRING, max_length=64),
        default={},
    )
    request.properties["params"] = params
    item = (components.schemas or {})["BatchItem"]
    assert item.properties is not None
    item.properties["params"] = params


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    app = simple_sim("sms", "SMS gateway", settings, _handlers(_State(), settings))
    _document_params(app)
    return app
