"""Simulator of the provincial 好差评 system (省级政务服务“好差评”系统): it receives evaluations and the rectification
steps of bad ones in the national evaluation fields (GB/T 39735-2020 and the national 好差评 data interface: `pf`
评价渠道, `taskCode` 事项编码, `projectNo` 办件编号, `evaluateType` 评价方式, `alternate` 评价等级 1–5, `appraisald`
标签), de-duplicates every report on its `serialNo`, and answers queries for reconciliation. The Jiangsu
对接技术方案 is not public: the envelope (`{"code": "0", "msg", "data"}`), the paths and the request signature
(szt-biz/1 HMAC-SM3, system key `haocp`) are modelled, see docs/domains/haocp.md.

Control endpoints (under `/_sim/`, signed like the interface so that an API fuzzer cannot take the system down):
`POST /_sim/outage` (down/up), `POST /_sim/drift` (forget a case or change its level, as drift at the party),
and the unsigned `GET /_sim/counts` (what was received, per case) that tests count deliveries with."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from msgspec import Meta

from affairs import signing
from core.problems import invalid
from core.settings import Settings

SIGNED = (
    "Signed per szt-biz/1 (X-Szt-System, X-Szt-Timestamp, X-Szt-Nonce, X-Szt-Signature: HMAC-SM3 with the key "
    "of system `haocp`)."
)
MAX_CASES = 200_000
ProjectNo = Annotated[str, Meta(min_length=1, max_length=64, description="办件编号", examples=["SZT202612070001"])]
Level = Annotated[int, Meta(ge=1, le=5, description="评价等级: 1 非常不满意 … 5 非常满意")]
Serial = Annotated[str, Meta(min_length=1, max_length=200, description="the idempotency key (de-duplicated on)")]
Short = Annotated[str, Meta(max_length=200)]
Long = Annotated[str, Meta(max_length=1000)]


class Evaluation(msgspec.Struct):
    evaluationId: Short
    projectNo: ProjectNo
    taskCode: Short
    deptCode: Short
    pf: Literal["1", "2", "3", "4", "5", "6", "7"]
    evaluateType: Literal["1", "2", "3"]
    alternate: Level
    satisfaction: Literal["非常不满意", "不满意", "基本满意", "满意", "非常满意"]
    assessNumber: Annotated[int, Meta(ge=1, le=2, description="1 first rating, 2 the second after a return visit")]
    assessTime: datetime
    taskName: Short = ""
    appraisald: Annotated[list[Annotated[str, Meta(max_length=8)]], Meta(max_length=16)] = []
    appraisaldName: Annotated[list[Annotated[str, Meta(max_length=20)]], Meta(max_length=16)] = []
    writingAppraisal: Long = ""


class EvaluationReport(msgspec.Struct):
    serialNo: Serial
    evaluation: Evaluation


class Rectification(msgspec.Struct):
    projectNo: ProjectNo
    rectifyId: Short
    step: Literal["opened", "verify", "appeal", "appeal_review", "rectify", "visit", "second_rating", "sync"]
    stepName: Short
    rectifyStatus: Literal["open", "rectifying", "appealed", "rectified", "visiting", "closed"]
    handleTime: datetime
    deptCode: Short = ""
    note: Long = ""
    handler: Short = ""
    deadline: datetime | None = None
    overdue: bool = False


class RectificationReport(msgspec.Struct):
    serialNo: Serial
    rectification: Rectification


class Query(msgspec.Struct):
    projectNos: Annotated[list[ProjectNo], Meta(min_length=1, max_length=100)]


class Received(msgspec.Struct):
    serialNo: str
    duplicate: bool
    receivedAt: datetime


class Answer(msgspec.Struct):
    code: str
    msg: str
    data: Any = None


class Held(msgspec.Struct):
    """What the system holds for one case."""

    projectNo: str
    assessNumber: int
    alternate: int
    rectifyStatus: str


class OutageIn(msgspec.Struct):
    down: bool


class DriftIn(msgspec.Struct):
    projectNo: ProjectNo
    action: Literal["forget", "level", "status"]
    level: Level | None = None
    status: Literal["open", "rectifying", "appealed", "rectified", "visiting", "closed"] | None = None


class CaseCounts(msgspec.Struct):
    projectNo: str
    evaluations: int  # reports accepted (each serialNo once)
    rectifications: int
    duplicates: int  # resends of a serialNo already held, answered `duplicate: true`
    steps: list[str]
    held: Held | None


class Counts(msgspec.Struct):
    down: bool
    accepted: int
    duplicates: int
    refused_down: int  # calls answered 503 while down
    case: CaseCounts | None = None


class _Case:
    def __init__(self) -> None:
        self.evaluations: dict[int, Evaluation] = {}
        self.steps: list[Rectification] = []
        self.n_eval = 0
        self.n_rect = 0
        self.duplicates = 0


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.serials: set[str] = set()
        self.cases: OrderedDict[str, _Case] = OrderedDict()
        self.accepted = self.duplicates = self.refused_down = 0
        self.nonces: OrderedDict[str, None] = OrderedDict()

    def case(self, project_no: str) -> _Case:
        c = self.cases.get(project_no)
        if c is None:
            c = self.cases[project_no] = _Case()
            while len(self.cases) > MAX_CASES:
                self.cases.popitem(last=False)
        return c

    def held(self, project_no: str) -> Held | None:
        c = self.cases.get(project_no)
        if c is None or not c.evaluations:
            return None
        last = max(c.evaluations)
        status = c.steps[-1].rectifyStatus if c.steps else ""
        return Held(project_no, last, c.evaluations[last].alternate, status)


def _answer(status: int, code: str, msg: str, data: Any = None) -> Response[Answer]:
    return Response(Answer(code, msg, data), status_code=status)


ERRORS = {
    401: ResponseSpec(data_container=Answer, description="4010 signature refused"),
    503: ResponseSpec(data_container=Answer, description="5030 the system is down (see /_sim/outage)"),
}


def _handlers(settings: Settings) -> list[object]:
    state = _State()
    key = signing.system_key(settings.var_path, "haocp")

    async def gate(request: Request[Any, Any, Any], *, control: bool = False) -> Response[Answer] | None:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        reason = signing.check(key, headers, request.method, request.url.path, body)
        with state.lock:
            if reason is None:
                nonce = headers["x-szt-nonce"]
                if nonce in state.nonces:
                    reason = "replayed"
                else:
                    state.nonces[nonce] = None
                    while len(state.nonces) > 100_000:
                        state.nonces.popitem(last=False)
            if reason is not None:
                return _answer(401, "4010", f"签名校验失败: {reason}")
            if state.down and not control:
                state.refused_down += 1
                return _answer(503, "5030", "系统维护中，请稍后重试")
        return None

    def take(serial: str, project_no: str) -> tuple[_Case, bool]:
        c = state.case(project_no)
        if serial in state.serials:
            state.duplicates += 1
            c.duplicates += 1
            return c, True
        state.serials.add(serial)
        state.accepted += 1
        return c, False

    @post("/v1/evaluations", status_code=200, summary="Report an evaluation (评价数据上报)", description=SIGNED,
          tags=["haocp"], responses=ERRORS)  # fmt: skip
    async def evaluations(request: Request[Any, Any, Any], data: EvaluationReport) -> Response[Answer]:
        refused = await gate(request)
        if refused is not None:
            return refused
        e = data.evaluation
        with state.lock:
            c, dup = take(data.serialNo, e.projectNo)
            if not dup:
                c.evaluations[e.assessNumber] = e
                c.n_eval += 1
        return _answer(200, "0", "成功", Received(data.serialNo, dup, datetime.now(UTC)))

    @post("/v1/rectifications", status_code=200, summary="Report a rectification step (差评整改上报)",
          description=SIGNED, tags=["haocp"], responses=ERRORS)  # fmt: skip
    async def rectifications(request: Request[Any, Any, Any], data: RectificationReport) -> Response[Answer]:
        refused = await gate(request)
        if refused is not None:
            return refused
        r = data.rectification
        with state.lock:
            c, dup = take(data.serialNo, r.projectNo)
            if not dup:
                c.steps.append(r)
                c.n_rect += 1
        return _answer(200, "0", "成功", Received(data.serialNo, dup, datetime.now(UTC)))

    @post("/v1/evaluations/query", status_code=200, summary="What the system holds for cases (对账查询)",
          description=SIGNED, tags=["haocp"], responses=ERRORS)  # fmt: skip
    async def query(request: Request[Any, Any, Any], data: Query) -> Response[Answer]:
        refused = await gate(request)
        if refused is not None:
            return refused
        with state.lock:
            held = [h for h in (state.held(p) for p in data.projectNos) if h is not None]
        return _answer(200, "0", "成功", held)

    @get("/v1/status", summary="Whether the system takes reports", tags=["haocp"],
         responses={503: ResponseSpec(data_container=Answer, description="down")})  # fmt: skip
    async def status() -> Response[Answer]:
        with state.lock:
            down = state.down
        return _answer(503, "5030", "系统维护中") if down else _answer(200, "0", "正常")

    @post("/_sim/outage", status_code=200, summary="Control: take the system down or bring it up",
          description=SIGNED, tags=["sim"], responses=ERRORS)  # fmt: skip
    async def outage(request: Request[Any, Any, Any], data: OutageIn) -> Response[Answer]:
        refused = await gate(request, control=True)
        if refused is not None:
            return refused
        with state.lock:
            state.down = data.down
        return _answer(200, "0", "down" if data.down else "up")

    @post("/_sim/drift", status_code=200, summary="Control: make the system's record of a case drift",
          description=SIGNED + " `forget` drops the case (and its serial numbers); `level` changes its latest "
          "evaluation's level; `status` its rectification state.", tags=["sim"], responses=ERRORS)  # fmt: skip
    async def drift(request: Request[Any, Any, Any], data: DriftIn) -> Response[Answer]:
        refused = await gate(request, control=True)
        if refused is not None:
            return refused
        with state.lock:
            c = state.cases.get(data.projectNo)
            if c is None or not c.evaluations:
                return _answer(404, "4040", "无此办件")
            if data.action == "forget":
                del state.cases[data.projectNo]
            elif data.action == "level":
                if data.level is None:
                    raise invalid("level", "level is required")
                last = max(c.evaluations)
                c.evaluations[last] = msgspec.structs.replace(c.evaluations[last], alternate=data.level)
            else:
                if data.status is None or not c.steps:
                    raise invalid("status", "status is required, and the case has rectification steps")
                c.steps[-1] = msgspec.structs.replace(c.steps[-1], rectifyStatus=data.status)
        return _answer(200, "0", "成功")

    @get("/_sim/counts", summary="Control: reports received, overall and for one case", tags=["sim"],
         sync_to_thread=False)  # fmt: skip
    def counts(project_no: Annotated[str | None, Parameter(query="projectNo", max_length=64)] = None) -> Counts:
        with state.lock:
            case = None
            if project_no:
                c = state.cases.get(project_no)
                if c is not None:
                    case = CaseCounts(
                        project_no, c.n_eval, c.n_rect, c.duplicates, [s.step for s in c.steps], state.held(project_no)
                    )
            return Counts(state.down, state.accepted, state.duplicates, state.refused_down, case)

    return [evaluations, rectifications, query, status, outage, drift, counts]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("haocp", "provincial 好差评 system", settings, _handlers(settings))
