"""Simulator of CTID (居民身份证网上功能凭证 / 可信身份认证平台): the real-person check of name, ID number and face.

`POST /ctid/v1/verify` looks the (name, ID number) pair up in the synthetic register (simulators.population) and
compares it with a face *capture*. Captures are tokens issued by the control endpoint `POST /ctid/_sim/captures`:
base64url(JSON payload) "." base64url(HMAC-SM3), keyed with a secret fixed in the simulator, so a client cannot
forge one; the payload says whose face the capture shows and whether the liveness check saw a live person.

Control endpoints (`/ctid/_sim/...`) exist for tests and demos only. Two are left out of the OpenAPI document on
purpose: `POST /ctid/_sim/outage` (an API fuzzer must not take the simulator down for everybody else) and
`GET /ctid/_sim/people` (see there).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import math
import secrets
import threading
import time
from collections import deque
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Litestar, Request, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody, Parameter
from msgspec import Meta

from core.crypto import hmac_sm3, hmac_sm3_verify, sm3
from core.masking import mask_id_number, mask_name
from core.problems import PROBLEM_JSON, Problem, ProblemError, invalid, not_found
from core.regions import CityName
from core.settings import Settings
from simulators.population import SEED, Person, find, people, population

# 18-character resident ID (GB 11643; also the new 9xxx foreign permanent residence ID), the old 15-character
# foreign permanent residence ID, and Hong Kong/Macao/Taiwan travel permits (C/H/M/T + 8-10 digits, or 8 digits).
# Only resident IDs can be in the register.
ID_NUMBER_PATTERN = r"^([0-9]{17}[0-9Xx]|[A-Z]{3}[0-9]{12}|[CHMT][0-9]{8,10}|[0-9]{8})$"
IdNumber = Annotated[str, Meta(min_length=8, max_length=32, pattern=ID_NUMBER_PATTERN)]
CAPTURE_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
Result = Literal["pass", "not_same_person", "not_live", "mismatch"]
ResultCode = Literal["0", "1001", "1002", "1003"]
T = TypeVar("T")
City = CityName  # the names in simulators.population.CITIES

_CAPTURE_KEY = sm3(f"szt-ctid-sim-capture-key|{SEED}".encode())
_OUTCOMES: dict[Result, tuple[ResultCode, str]] = {
    "pass": ("0", "认证通过"),
    "not_same_person": ("1001", "人像比对不一致"),
    "not_live": ("1002", "活体检测未通过"),
    "mismatch": ("1003", "姓名与公民身份号码不一致或号码不存在"),
}


class VerifyRequest(msgspec.Struct):
    biz_seq: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="业务流水号")]
    name: Annotated[str, Meta(min_length=1, max_length=64, description="姓名")]
    id_number: IdNumber
    capture: Annotated[
        str,
        Meta(
            min_length=3,
            max_length=8192,
            pattern=CAPTURE_PATTERN,
            description="face capture token from the app's liveness SDK (here: from POST /ctid/_sim/captures)",
        ),
    ]


class VerifyResponse(msgspec.Struct):
    biz_seq: str
    result: Result
    result_code: ResultCode
    similarity: Annotated[float, Meta(ge=0, le=100)]
    message: str


class CaptureRequest(msgspec.Struct):
    id_number: Annotated[
        str,
        Meta(min_length=8, max_length=32, pattern=ID_NUMBER_PATTERN, examples=[population()[0].id_number]),
    ]
    live: bool = True
    same_person: bool = True


class CaptureResponse(msgspec.Struct):
    capture: str


class PersonOut(msgspec.Struct):
    name: str
    id_number: str
    sex: Literal["male", "female"]
    birth_date: dt.date
    city: str
    phone: str
    photo_digest: str


class PeoplePage(msgspec.Struct):
    items: list[PersonOut]
    next_offset: int | None


class Call(msgspec.Struct):
    at: dt.datetime
    biz_seq: str
    name: str  # masked
    id_number: str  # masked
    result: Result
    result_code: ResultCode


class CallList(msgspec.Struct):
    items: list[Call]


class OutageRequest(msgspec.Struct):
    seconds: Annotated[int, Meta(ge=0, le=300)]
    slow_ms: Annotated[int, Meta(ge=0, le=10_000)] = 0
    fail: bool = True  # during the window: answer 503 (True) or answer normally, only late (False)


class OutageState(msgspec.Struct):
    seconds_left: int
    slow_ms: int
    fail: bool


class _Payload(msgspec.Struct):
    v: int
    sub: str  # ID number of the person the capture shows
    live: bool
    n: str
    iat: int


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_capture(shows: str, *, live: bool = True) -> str:
    """A capture token showing the person with ID number `shows` (used by the control endpoint and tests)."""
    payload = msgspec.json.encode(_Payload(v=1, sub=shows, live=live, n=secrets.token_urlsafe(9), iat=int(time.time())))
    body = _b64e(payload)
    return body + "." + _b64e(hmac_sm3(_CAPTURE_KEY, body.encode()))


def read_capture(token: str) -> _Payload:
    """The payload of a genuine capture token; ProblemError 400 naming `capture` otherwise."""
    body, _, mac = token.partition(".")
    try:
        if not hmac_sm3_verify(_CAPTURE_KEY, body.encode(), _b64d(mac)):
            raise ValueError("bad signature")
        return msgspec.json.decode(_b64d(body), type=_Payload)
    except (ValueError, binascii.Error, msgspec.ValidationError) as exc:
        raise ProblemError(
            400,
            "ctid-invalid-capture",
            "Invalid face capture",
            "人像采集数据无效",
            "capture is not a genuine capture token",
            field="capture",
        ) from exc


async def strict_body(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """The body decoded without the type coercion Litestar allows (`0` or `"true"` for a bool, `"5"` for an int)."""
    try:
        return msgspec.json.decode(await request.body(), type=type_)
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.rpartition("at `$.")[2].rstrip("`") if "at `$." in text else "body"
        raise invalid(field, text) from exc


def _similarity(token: str, id_number: str, low: float, high: float) -> float:
    """A stable score in [low, high) for this capture and person, with two decimals."""
    h = int.from_bytes(sm3(f"{token}|{id_number}".encode())[:4], "big")
    return round(low + (high - low) * (h % 10_000) / 10_000, 2)


class _State:
    """What the simulator remembers, in process memory: recent calls and the injected outage."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: deque[Call] = deque(maxlen=200)
        self.outage_until = 0.0
        self.slow_ms = 0
        self.fail = True

    def outage(self) -> tuple[float, int, bool]:
        with self.lock:
            return self.outage_until - time.monotonic(), self.slow_ms, self.fail

    def set_outage(self, req: OutageRequest) -> OutageState:
        with self.lock:
            self.outage_until = time.monotonic() + req.seconds
            self.slow_ms, self.fail = (req.slow_ms, req.fail) if req.seconds else (0, True)
            return OutageState(seconds_left=req.seconds, slow_ms=self.slow_ms, fail=self.fail)

    def record(self, req: VerifyRequest, result: Result) -> None:
        call = Call(
            at=dt.datetime.now(dt.UTC),
            biz_seq=req.biz_seq,
            name=mask_name(req.name),
            id_number=mask_id_number(req.id_number),
            result=result,
            result_code=_OUTCOMES[result][0],
        )
        with self.lock:
            self.calls.append(call)

    def recent(self, limit: int) -> list[Call]:
        with self.lock:
            return list(self.calls)[::-1][:limit]


def decide(req: VerifyRequest) -> VerifyResponse:
    """The verdict for one request: register first, then liveness, then the face comparison."""
    person = find(req.id_number)
    result: Result
    similarity = 0.0
    if person is None or person.name != req.name:
        result = "mismatch"
    else:
        shown = read_capture(req.capture)
        if not shown.live:
            result = "not_live"
        elif shown.sub != person.id_number:
            result, similarity = "not_same_person", _similarity(req.capture, person.id_number, 12.0, 58.0)
        else:
            result, similarity = "pass", _similarity(req.capture, person.id_number, 85.0, 99.0)
    code, message = _OUTCOMES[result]
    return VerifyResponse(req.biz_seq, result, code, similarity, message)


def _person_out(p: Person) -> PersonOut:
    return PersonOut(p.name, p.id_number, p.sex, p.birth_date, p.city, p.phone, p.photo_digest)


def _handlers(state: _State) -> list[object]:
    unavailable = ResponseSpec(
        data_container=Problem,
        generate_examples=False,
        description="The platform is unavailable (type urn:szt:problem:ctid-unavailable); retry later",
        media_type=PROBLEM_JSON,
    )

    @post(
        "/v1/verify",
        status_code=200,
        summary="Real-person check: name + ID number against the register, face capture against the person",
        tags=["ctid"],
        responses={503: unavailable},
    )
    async def verify(data: JSONBody[VerifyRequest]) -> VerifyResponse:
        left, slow_ms, fail = state.outage()
        if left > 0:
            if slow_ms:
                await asyncio.sleep(slow_ms / 1000)
            if fail:
                raise ProblemError(
                    503,
                    "ctid-unavailable",
                    "CTID platform unavailable",
                    "可信身份认证平台暂不可用",
                    "simulated outage",
                    headers={"Retry-After": str(max(1, math.ceil(left)))},
                )
        answer = decide(data)
        state.record(data, answer.result)
        return answer

    @post("/_sim/outage", status_code=200, include_in_schema=False, sync_to_thread=False)
    def outage(data: JSONBody[OutageRequest]) -> OutageState:
        """Control: for `seconds`, delay /v1/verify by `slow_ms`, then answer 503 (`fail`) or normally."""
        return state.set_outage(data)

    # Not in the OpenAPI document: a fuzzer that learnt real (name, ID number) pairs here would pair them with
    # schema-valid but forged captures, which are rightly refused with 400.
    @get("/_sim/people", include_in_schema=False, sync_to_thread=False)
    def list_people(
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        city: FromQuery[City | None] = None,
    ) -> PeoplePage:
        """Control: page through the synthetic register (optionally one city)."""
        page, following = people(offset, limit, city)
        return PeoplePage(items=[_person_out(p) for p in page], next_offset=following)

    @post("/_sim/captures", status_code=201, summary="Control: a face capture token", tags=["sim"])
    async def capture(request: Request[Any, Any, Any], data: JSONBody[CaptureRequest]) -> CaptureResponse:
        """A capture of the person with `id_number` (or, with `same_person` false, of somebody else); 404 if unknown."""
        data = await strict_body(request, CaptureRequest)
        person = find(data.id_number)
        if person is None:
            raise not_found("person")
        shows = person.id_number
        if not data.same_person:
            everyone = population()
            other = (everyone.index(person) + 1 + secrets.randbelow(len(everyone) - 1)) % len(everyone)
            shows = everyone[other].id_number
        return CaptureResponse(capture=issue_capture(shows, live=data.live))

    @get("/_sim/calls", summary="Control: the latest verify calls, newest first", tags=["sim"], sync_to_thread=False)
    def calls(limit: Annotated[int, Parameter(ge=1, le=200)] = 20) -> CallList:
        return CallList(items=state.recent(limit))

    return [verify, outage, list_people, capture, calls]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("ctid", "CTID real-person check", settings, _handlers(_State()))
