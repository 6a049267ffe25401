"""Simulator of the integrated government-service platform (一体化政务服务平台, national/provincial): the 办件
data exchange (办件信息 records pushed in batches, de-duplicated on RECORD_ID, queried back by PROJID) and the
item catalogue with each item's service guide (办事指南).

Requests are authenticated as at the national platform's interface gateway: headers `x-tif-paasid`,
`x-tif-timestamp` (unix seconds), `x-tif-nonce` and `x-tif-signature` = upper-case hex SHA-256 of
`timestamp + token + nonce + timestamp`, the token being the secret shared with that paasid. Answers are
`{"code", "msg", "data"}` with `code` "00" for success (docs/domains/govplatform.md lists the codes).

State is held in memory. Control endpoints under /_sim/ take the platform down and up, make it lose its answers
(it records a batch but the caller sees a 503, so the caller retries and the platform must de-duplicate), change
its copy of a case (drift, for reconciliation to repair) and publish a new version of a guide.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar, Request, Response, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from msgspec import Meta

from affairs import govcodes
from core.settings import Settings

Text = Annotated[str, Meta(max_length=200)]
RecordId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ProjId = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9]+$")]
ServiceCode = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[0-9A-Z]+$")]
StatusCode = Literal["01", "02", "03", "04", "05", "06", "07", "08"]
SKEW = 300


class ProjectRecord(msgspec.Struct, frozen=True):
    """One 办件信息 record: one state of one case."""

    RECORD_ID: RecordId  # 记录唯一标识: the sender's idempotency key
    PROJID: ProjId  # 办件编号
    SERVICECODE: ServiceCode  # 事项编码 (实施编码)
    SERVICENAME: Text  # 事项名称
    APPLYNAME: Text  # 申请人名称 (masked)
    APPLY_CARDTYPE: Annotated[str, Meta(pattern=r"^\d{3}$")]  # 申请人证件类型: 111 居民身份证, 001 统一社会信用代码
    APPLY_CARDNUMBER: Annotated[str, Meta(max_length=40)]  # 申请人证件号码 (masked)
    DEPTID: Annotated[str, Meta(max_length=60)]  # 受理部门编码
    DEPTNAME: Text  # 受理部门名称
    STATUS: StatusCode  # 办件状态
    STATUS_NAME: Text
    TRANSACT_TIME: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")]  # 业务发生时间 (北京时间)
    AREACODE: Annotated[str, Meta(pattern=r"^\d{6}$")]  # 行政区划代码
    APPLYFROM: Annotated[str, Meta(max_length=2)] = "2"  # 申报来源: 1 窗口, 2 网上
    NOTE: Annotated[str, Meta(max_length=500)] = ""  # 办理意见


class Batch(msgspec.Struct):
    records: Annotated[list[ProjectRecord], Meta(min_length=1, max_length=500)]


class RecordResult(msgspec.Struct):
    RECORD_ID: str
    result: Literal["accepted", "duplicate", "rejected"]
    code: str = "00"


class BatchAnswer(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: int
    results: list[RecordResult]


class StatusQuery(msgspec.Struct):
    PROJIDS: Annotated[list[str], Meta(min_length=1, max_length=500)]  # unknown ones are left out of the answer


class ProjectState(msgspec.Struct):
    PROJID: str
    STATUS: str
    RECORD_ID: str
    TRANSACT_TIME: str


class Envelope(msgspec.Struct):
    code: str
    msg: str
    data: Any = None


class Availability(msgspec.Struct):
    state: Literal["up", "down"]
    lose_answers: Annotated[int, Meta(ge=0, le=1000)] = 0  # the next N batches are recorded but answered 503


class Drift(msgspec.Struct):
    STATUS: StatusCode | None = None  # None: the platform forgets the case altogether


class GuidePatch(msgspec.Struct):
    conditions: Annotated[list[Annotated[str, Meta(max_length=300)]], Meta(max_length=20)] | None = None
    time_limit: Annotated[str, Meta(max_length=100)] | None = None
    faq: Annotated[list[dict[str, Annotated[str, Meta(max_length=300)]]], Meta(max_length=20)] | None = None


class SimProject(msgspec.Struct):
    PROJID: str
    records: list[ProjectRecord]  # in the order the platform accepted them
    duplicates: int
    current: str | None  # the platform's current status of the case (drift changes it)


class SimStats(msgspec.Struct):
    up: bool
    accepted: int
    duplicates: int
    rejected: int
    batches: int
    projects: int


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    up: bool = True
    lose_answers: int = 0
    by_record: dict[str, ProjectRecord] = field(default_factory=dict)
    by_project: dict[str, list[ProjectRecord]] = field(default_factory=dict)
    current: dict[str, ProjectRecord | None] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    batches: int = 0
    nonces: dict[str, float] = field(default_factory=dict)
    guides: dict[str, dict[str, Any]] = field(default_factory=dict)


def catalogue_guides() -> dict[str, dict[str, Any]]:
    """The items the province registered (the 49 that are handled online or booked), each with its guide: the
    elements of an implementation list (实施清单) as C 0102 names them, generated from the item's own manifest."""
    from affairs.manifests import all_manifests

    out: dict[str, dict[str, Any]] = {}
    for m in all_manifests().values():
        if m["kind"] not in ("application", "appointment"):
            continue
        code = govcodes.item_code(m["code"], m["kind"])
        legal = m["subject"] == "legal"
        days = int(m["binding"].get("deadline_days", 20)) if m["kind"] == "application" else 0
        out[code] = {
            "SERVICECODE": code,
            "SERVICENAME": m["name"],
            "VERSION": 1,
            "UPDATE_TIME": "2026-11-20 09:00:00",
            "IMPLEMENTING_ORG": govcodes.IMPLEMENTING_ORG,
            "SERVICE_OBJECT": "企业法人" if legal else "自然人",
            "CONDITIONS": [
                "申请人为依法登记的企业，由法定代表人或其授权经办人申请"
                if legal
                else "申请人为具有完全民事行为能力的本人",
                f"符合《{m['category']}业务办理规定》所列条件",
            ],
            "MATERIALS": [
                {"NAME": x["name"], "REQUIRED": x["required"], "CERT_FREE": x["certificate_free"], "COPIES": 1}
                for x in m["materials"]
            ],
            "PROCESS": ["网上申报", "预审", "受理", "审查决定", "办结送达"]
            if m["kind"] == "application"
            else ["网上预约", "按时到场", "窗口办理"],
            "PLACES": [{"NAME": f"各设区市公安局{m['category']}业务窗口", "HOURS": "工作日 9:00-12:00 13:30-17:00"}],
            "TIME_LIMIT": f"承诺时限 {days} 个工作日" if days else "当场办结",
            "LEGAL_TIME_LIMIT": f"法定时限 {days * 2} 个工作日" if days else "当场办结",
            "FEES": [
                {"ITEM": f["item"], "AMOUNT_FEN": f["amount_fen"], "BASIS": f.get("basis", "")} for f in m["fees"]
            ],
            "FAQ": [
                {"Q": "可以委托他人办理吗？", "A": "可以，受托人需持本人身份证件及委托书。"},
                {"Q": "办理进度在哪里查询？", "A": "在苏证通“我的办件”中查询，状态变化会推送提醒。"},
            ],
            "CONSULT_PHONE": "12345",
        }
    return out


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Envelope, description=description, media_type="application/json")


GATEWAY = {
    401: _spec("Gateway authentication refused (10001-10004)"),
    503: _spec("The platform is down (50300) or its answer was lost (50400)"),
}
ITEM = {**GATEWAY, 404: _spec("Unknown item code (20001)")}


def signature(timestamp: str, token: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode()).hexdigest().upper()


def _fail(status: int, code: str, msg: str) -> Response[Envelope]:
    return Response(Envelope(code, msg), status_code=status)


def _handlers(settings: Settings) -> list[object]:
    st = _State()
    token = govcodes.token(settings.var_path)

    def guides() -> dict[str, dict[str, Any]]:
        if not st.guides:
            st.guides = catalogue_guides()
        return st.guides

    def refused(request: Request[Any, Any, Any]) -> Response[Envelope] | None:
        if not st.up:
            return _fail(503, "50300", "服务暂不可用")
        h = request.headers
        ts, nonce, sig = h.get("x-tif-timestamp", ""), h.get("x-tif-nonce", ""), h.get("x-tif-signature", "")
        if h.get("x-tif-paasid") != govcodes.PAASID or not ts.isdigit() or not nonce:
            return _fail(401, "10001", "缺少网关认证信息")
        if abs(int(ts) - time.time()) > SKEW:
            return _fail(401, "10002", "时间戳超出允许范围")
        if not hmac.compare_digest(sig, signature(ts, token, nonce)):
            return _fail(401, "10003", "签名校验失败")
        with st.lock:
            now = time.time()
            if nonce in st.nonces:
                return _fail(401, "10004", "请求重放")
            st.nonces[nonce] = now
            if len(st.nonces) > 100_000:
                st.nonces = {k: v for k, v in st.nonces.items() if now - v < 2 * SKEW}
        return None

    @post("/v1/projects/batch", status_code=200, summary="Push 办件信息 records (de-duplicated on RECORD_ID)",
          tags=["办件"], responses=GATEWAY)  # fmt: skip
    async def push(request: Request[Any, Any, Any], data: Batch) -> Response[Envelope]:
        bad = refused(request)
        if bad is not None:
            return bad
        catalogue = guides()
        results = []
        with st.lock:
            st.batches += 1
            for rec in data.records:
                if rec.RECORD_ID in st.by_record:
                    st.duplicates[rec.PROJID] = st.duplicates.get(rec.PROJID, 0) + 1
                    results.append(RecordResult(rec.RECORD_ID, "duplicate"))
                elif rec.SERVICECODE not in catalogue:
                    st.rejected += 1
                    results.append(RecordResult(rec.RECORD_ID, "rejected", "20001"))  # 事项编码不存在
                else:
                    st.by_record[rec.RECORD_ID] = rec
                    st.by_project.setdefault(rec.PROJID, []).append(rec)
                    st.current[rec.PROJID] = rec
                    results.append(RecordResult(rec.RECORD_ID, "accepted"))
            lose = st.lose_answers > 0
            st.lose_answers -= 1 if lose else 0
        if lose:
            return _fail(503, "50400", "网关超时")
        n = {k: sum(1 for r in results if r.result == k) for k in ("accepted", "duplicate", "rejected")}
        return Response(Envelope("00", "成功", BatchAnswer(n["accepted"], n["duplicate"], n["rejected"], results)))

    @post("/v1/projects/status-query", status_code=200, summary="The platform's current state of cases", tags=["办件"],
          responses=GATEWAY)  # fmt: skip
    async def status_query(request: Request[Any, Any, Any], data: StatusQuery) -> Response[Envelope]:
        bad = refused(request)
        if bad is not None:
            return bad
        with st.lock:
            items = [
                ProjectState(p, r.STATUS, r.RECORD_ID, r.TRANSACT_TIME)
                for p in data.PROJIDS
                if (r := st.current.get(p)) is not None
            ]
        return Response(Envelope("00", "成功", {"items": items}))

    @get("/v1/items", summary="The item catalogue (事项目录): code, name and guide version of each item", tags=["事项"],
         responses=GATEWAY)  # fmt: skip
    async def items(request: Request[Any, Any, Any]) -> Response[Envelope]:
        bad = refused(request)
        if bad is not None:
            return bad
        rows = [
            {
                "SERVICECODE": c,
                "SERVICENAME": g["SERVICENAME"],
                "VERSION": g["VERSION"],
                "UPDATE_TIME": g["UPDATE_TIME"],
            }
            for c, g in sorted(guides().items())
        ]
        return Response(Envelope("00", "成功", {"items": rows}))

    @get("/v1/items/{code:str}/guide", summary="One item's service guide (办事指南)", tags=["事项"], responses=ITEM)
    async def guide(
        request: Request[Any, Any, Any], code: Annotated[str, Parameter(max_length=40, pattern=r"^[0-9A-Z]+$")]
    ) -> Response[Envelope]:
        bad = refused(request)
        if bad is not None:
            return bad
        g = guides().get(code)
        if g is None:
            return _fail(404, "20001", "事项编码不存在")
        return Response(Envelope("00", "成功", g))

    @get("/v1/ping", summary="Gateway reachability (503 while the platform is down)", tags=["事项"],
         responses={503: GATEWAY[503]})  # fmt: skip
    async def ping() -> Response[Envelope]:
        return Response(Envelope("00", "成功")) if st.up else _fail(503, "50300", "服务暂不可用")

    def current_stats() -> SimStats:
        with st.lock:
            return SimStats(
                st.up, len(st.by_record), sum(st.duplicates.values()), st.rejected, st.batches, len(st.by_project)
            )

    def project_of(projid: str) -> SimProject:
        with st.lock:
            cur = st.current.get(projid)
            return SimProject(
                projid, list(st.by_project.get(projid, [])), st.duplicates.get(projid, 0), cur.STATUS if cur else None
            )

    @post("/_sim/availability", status_code=200, summary="Control: take the platform down or up", tags=["sim"])
    async def availability(data: Availability) -> SimStats:
        with st.lock:
            st.up, st.lose_answers = data.state == "up", data.lose_answers
        return current_stats()

    @get("/_sim/stats", summary="Control: what the platform holds", tags=["sim"])
    async def stats() -> SimStats:
        return current_stats()

    @get("/_sim/projects/{projid:str}", summary="Control: the records of one case, as received", tags=["sim"])
    async def project(projid: Annotated[str, Parameter(max_length=40, pattern=r"^[A-Za-z0-9]+$")]) -> SimProject:
        return project_of(projid)

    @post("/_sim/projects/{projid:str}/drift", status_code=200, summary="Control: change or forget a case",
          tags=["sim"])  # fmt: skip
    async def drift(
        projid: Annotated[str, Parameter(max_length=40, pattern=r"^[A-Za-z0-9]+$")], data: Drift
    ) -> SimProject:
        with st.lock:
            cur = st.current.get(projid)
            if data.STATUS is None or cur is None:
                st.current.pop(projid, None)
            else:
                st.current[projid] = msgspec.structs.replace(cur, STATUS=data.STATUS)
        return project_of(projid)

    @put("/_sim/items/{code:str}/guide", summary="Control: publish a new version of an item's guide", tags=["sim"],
         responses={404: ITEM[404]})  # fmt: skip
    async def edit_guide(
        code: Annotated[str, Parameter(max_length=40, pattern=r"^[0-9A-Z]+$")], data: GuidePatch
    ) -> dict[str, Any]:
        g = guides().get(code)
        if g is None:
            return _fail(404, "20001", "事项编码不存在")  # type: ignore[return-value]
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        key = {"conditions": "CONDITIONS", "time_limit": "TIME_LIMIT", "faq": "FAQ"}
        with st.lock:
            for k, v in changes.items():
                g[key[k]] = v
            g["VERSION"] += 1
            g["UPDATE_TIME"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 8 * 3600))
        return g

    return [push, status_query, items, guide, ping, availability, stats, project, drift, edit_guide]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim(
        "govplatform",
        "Integrated government-service platform (一体化政务服务平台): 办件 exchange, item catalogue",
        settings,
        _handlers(settings),
    )
