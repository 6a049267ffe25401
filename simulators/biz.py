"""Simulator of the police business systems, one per police type (neibao crj jiaoguan zhian jianguan other),
speaking the adapter protocol szt-biz/1 (docs/integration.md): signed submissions, supplements, withdrawals and
queries in; signed status callbacks out. Each system moves its cases on its own schedule (one step every
SZT_BIZ_STEP_SECONDS, default 30) along submitted → pre_review → accepted → handling → completed, unless a test
took the case over with `POST /biz/_sim/cases/{ref}/status`, which moves it at once.

Registers it answers from: vehicles (plate → owner, from the synthetic population), lawyers' licences, criminal
records (empty unless a test adds one), document and ID-card progress, and how many people share a name."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal

import httpx
import msgspec
from litestar import Litestar, Request, get, post
from litestar.params import Parameter
from msgspec import Meta

from affairs import signing
from core import regions
from core.crypto import sm3
from core.problems import ProblemError
from core.settings import Settings
from simulators import population

SYSTEMS = ("neibao", "crj", "jiaoguan", "zhian", "jianguan", "other")
HAPPY = ("submitted", "pre_review", "accepted", "handling", "completed")
PLATE_LETTER = {c.name: c.plate for c in regions.CITIES}
VEHICLES = 1500
Req = Request[Any, Any, Any]


@dataclass
class SimCase:
    ref: str
    system: str
    case_no: str
    app_code: str
    callback_url: str
    status: str = "submitted"
    manual: bool = False
    next_at: float = 0.0
    supplements: int = 0
    form: dict[str, Any] = field(default_factory=dict)


class Submission(msgspec.Struct):
    case_no: str
    app_code: str
    form: dict[str, Any]
    callback_url: str
    manifest_version: int = 1
    attachments: list[dict[str, Any]] = []
    enterprise_id: str | None = None


class Accepted(msgspec.Struct):
    ref: str
    status: str


class QueryIn(msgspec.Struct):
    type: str
    params: dict[str, str] = {}


class Command(msgspec.Struct):
    status: Literal["pre_review", "accepted", "handling", "completed", "returned", "supplement_requested"]
    note: Annotated[str, Meta(max_length=200)] = ""
    materials: Annotated[list[Annotated[str, Meta(max_length=60)]], Meta(max_length=10)] = []


class Forge(msgspec.Struct):
    case_no: str
    status: str
    mode: Literal["bad-signature", "unsigned", "replay", "stale"]


class CallbackResult(msgspec.Struct):
    status_code: int
    body: str


class SimCaseView(msgspec.Struct):
    ref: str
    system: str
    case_no: str
    app_code: str
    status: str
    supplements: int


class Record(msgspec.Struct):
    id_number: str


class Vehicle(msgspec.Struct):
    plate: str
    city: str


@cache
def vehicles() -> dict[str, population.Person]:
    out: dict[str, population.Person] = {}
    for i, p in enumerate(population.population()[:VEHICLES]):
        out[f"苏{PLATE_LETTER[p.city]}{i:05d}"] = p
    return out


def lawyer_licence_ok(no: str) -> bool:
    return len(no) == 17 and no.isdigit() and int(no[-1]) == sum(int(c) for c in no[:16]) % 10


class _State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cases: dict[str, SimCase] = {}
        self.by_case_no: dict[str, str] = {}
        self.records: set[str] = set()
        self.step = settings.biz_step_seconds
        self.http: httpx.AsyncClient | None = None
        self.last_sent: dict[str, tuple[dict[str, str], bytes, str]] = {}
        self.lock = asyncio.Lock()

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=10)
        return self.http

    def key(self, system: str) -> bytes:
        return signing.system_key(self.settings.var_path, system)

    async def nonce_fresh(self, system: str, nonce: str) -> bool:
        async with self.lock:
            seen = self.__dict__.setdefault("_nonces", {})
            now = time.time()
            for n, at in list(seen.items()):
                if now - at > signing.NONCE_TTL:
                    del seen[n]
            if (system, nonce) in seen:
                return False
            seen[(system, nonce)] = now
            return True

    async def verify(self, request: Req, system: str) -> bytes:
        if system not in SYSTEMS:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no such business system")
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        reason = signing.check(self.key(system), headers, request.method, request.url.path, body)
        if reason is None and not await self.nonce_fresh(system, headers.get("x-szt-nonce", "")):
            reason = "replayed"
        if reason is not None:
            raise ProblemError(401, "bad-signature", "Request signature refused", "签名校验失败", reason)
        return body

    async def callback(
        self, case: SimCase, status: str, note: str = "", materials: list[str] | None = None
    ) -> httpx.Response:
        payload = {
            "ref": case.ref,
            "case_no": case.case_no,
            "status": status,
            "note": note,
            "materials": materials or [],
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        path = httpx.URL(case.callback_url).path
        headers = signing.sign_headers(self.key(case.system), case.system, "POST", path, body)
        self.last_sent[case.case_no] = (headers, body, case.callback_url)
        r = await self.client().post(
            case.callback_url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        if r.status_code == 200:
            case.status = status
        return r

    async def tick(self) -> None:
        now = time.time()
        for case in list(self.cases.values()):
            if case.manual or case.status not in HAPPY[:-1] or case.next_at > now:
                continue
            nxt = HAPPY[HAPPY.index(case.status) + 1]
            case.next_at = now + self.step
            with contextlib.suppress(httpx.HTTPError):
                await self.callback(case, nxt, "自动流转")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.step))
            with contextlib.suppress(Exception):
                await self.tick()


def _answer(state: _State, system: str, q: QueryIn) -> dict[str, Any]:
    p = q.params
    if q.type == "vehicle_owner" and system == "jiaoguan":
        owner = vehicles().get(p.get("plate", ""))
        return {
            "found": owner is not None,
            "id_number": owner.id_number if owner else "",
            "phone": owner.phone if owner else "",
        }
    if q.type == "lawyer_licence" and system == "jianguan":
        return {"valid": lawyer_licence_ok(p.get("licence", ""))}
    if q.type == "criminal_record" and system == "zhian":
        return {"has_record": p.get("id_number", "").upper() in state.records}
    if q.type == "name_count" and system == "zhian":
        name, region = p.get("name", ""), p.get("region", "")
        prefix = region[:4] if region.endswith("00") else region
        n = sum(1 for x in population.population() if x.name == name and x.id_number.startswith(prefix))
        return {"count": n}
    if q.type == "idcard_progress" and system == "zhian":
        d = sm3(p.get("id_number", "").encode())
        return {"stage": ("已受理", "制证中", "待领取", "已领取")[d[0] % 4], "office": "户籍窗口"}
    if q.type == "document_status" and system == "crj":
        d = sm3(p.get("id_number", "").encode())
        docs = [("普通护照", d[0]), ("往来港澳通行证", d[1]), ("往来台湾通行证", d[2])]
        return {"items": [{"document": n, "status": ("有效", "未申领", "制证中", "已过期")[b % 4]} for n, b in docs]}
    raise ProblemError(400, "unknown-query", "Unknown query", "未知查询", f"{system} does not answer {q.type}")


def _handlers(state: _State) -> list[object]:
    @post("/v1/{system:str}/submissions", status_code=202, summary="Receive a case (signed)", tags=["szt-biz/1"])
    async def submit(request: Req, system: str) -> Accepted:
        body = await state.verify(request, system)
        sub = msgspec.json.decode(body, type=Submission)
        if sub.case_no in state.by_case_no:  # a redelivery: the same case, the same reference
            return Accepted(state.by_case_no[sub.case_no], state.cases[state.by_case_no[sub.case_no]].status)
        ref = f"{system.upper()}-{secrets.token_hex(6)}"
        state.cases[ref] = SimCase(
            ref, system, sub.case_no, sub.app_code, sub.callback_url, next_at=time.time() + state.step, form=sub.form
        )
        state.by_case_no[sub.case_no] = ref
        return Accepted(ref, "submitted")

    @post(
        "/v1/{system:str}/submissions/{ref:str}/supplements",
        status_code=200,
        summary="Receive supplied materials",
        tags=["szt-biz/1"],
    )
    async def supplement(request: Req, system: str, ref: str) -> Accepted:
        await state.verify(request, system)
        case = state.cases.get(ref)
        if case is None:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no such case")
        case.supplements += 1
        case.status = "pre_review"
        return Accepted(ref, case.status)

    @post(
        "/v1/{system:str}/submissions/{ref:str}/withdrawals",
        status_code=200,
        summary="Applicant withdrew",
        tags=["szt-biz/1"],
    )
    async def withdraw(request: Req, system: str, ref: str) -> Accepted:
        await state.verify(request, system)
        case = state.cases.get(ref)
        if case is None:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no such case")
        case.status = "withdrawn"
        return Accepted(ref, case.status)

    @post("/v1/{system:str}/queries", status_code=200, summary="Answer a query (signed)", tags=["szt-biz/1"])
    async def query(request: Req, system: str) -> dict[str, Any]:
        body = await state.verify(request, system)
        return _answer(state, system, msgspec.json.decode(body, type=QueryIn))

    @get("/_sim/cases", summary="Control: the case a system holds for a case number", tags=["sim"])
    async def find_case(case_no: Annotated[str, Parameter(max_length=32)]) -> SimCaseView:
        ref = state.by_case_no.get(case_no)
        if ref is None:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no such case")
        c = state.cases[ref]
        return SimCaseView(c.ref, c.system, c.case_no, c.app_code, c.status, c.supplements)

    @post("/_sim/cases/{ref:str}/status", status_code=200, summary="Control: move a case now", tags=["sim"])
    async def command(ref: str, data: Command) -> CallbackResult:
        case = state.cases.get(ref)
        if case is None:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no such case")
        case.manual = True
        r = await state.callback(case, data.status, data.note, data.materials)
        return CallbackResult(r.status_code, r.text[:500])

    @post("/_sim/callbacks/forge", status_code=200, include_in_schema=False)
    async def forge(data: Forge) -> CallbackResult:
        """Control: send a callback that must be refused (bad signature, none, a replay of the last one, stale)."""
        ref = state.by_case_no.get(data.case_no)
        if ref is None:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no such case")
        case = state.cases[ref]
        case.manual = True
        payload = {"ref": ref, "case_no": case.case_no, "status": data.status, "note": "forged", "materials": []}
        body = json.dumps(payload).encode()
        path = httpx.URL(case.callback_url).path
        headers = signing.sign_headers(state.key(case.system), case.system, "POST", path, body)
        if data.mode == "bad-signature":
            headers["X-Szt-Signature"] = signing.sign_headers(b"\x00" * 32, case.system, "POST", path, body)[
                "X-Szt-Signature"
            ]
        elif data.mode == "unsigned":
            headers.pop("X-Szt-Signature")
        elif data.mode == "stale":
            headers["X-Szt-Timestamp"] = str(int(time.time()) - 3600)
        elif data.mode == "replay":
            if case.case_no not in state.last_sent:
                raise ProblemError(409, "conflict", "Conflict", "请求冲突", "nothing sent yet to replay")
            headers, body, _ = state.last_sent[case.case_no]
        r = await state.client().post(
            case.callback_url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        return CallbackResult(r.status_code, r.text[:500])

    @post("/_sim/records", status_code=200, include_in_schema=False)
    async def add_record(data: Record) -> Record:
        state.records.add(data.id_number.upper())
        return data

    @get("/_sim/vehicles", summary="Control: registered vehicles (plate and city, never the owner)", tags=["sim"])
    async def list_vehicles(offset: Annotated[int, Parameter(ge=0, le=VEHICLES)] = 0) -> list[Vehicle]:
        items = list(vehicles().items())[offset : offset + 10]
        return [Vehicle(plate, p.city) for plate, p in items]

    @get("/_sim/lawyers", summary="Control: a valid lawyer's licence number", tags=["sim"])
    async def lawyer() -> dict[str, str]:
        body = "1320" + "".join(str(secrets.randbelow(10)) for _ in range(12))
        return {"licence": body + str(sum(int(c) for c in body) % 10)}

    return [submit, supplement, withdraw, query, find_case, command, forge, add_record, list_vehicles, lawyer]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    state = _State(settings)
    app = simple_sim("biz", "police business systems", settings, _handlers(state))
    tasks: list[asyncio.Task[None]] = []

    async def start(app: Litestar) -> None:
        tasks.append(asyncio.get_running_loop().create_task(state.run()))

    app.on_startup.append(start)
    return app
