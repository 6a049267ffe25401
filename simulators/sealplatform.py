"""Simulator of the national / provincial electronic-seal platform (国家/省电子印章管理平台): 赋码 and 备案 of seals,
status synchronisation, sealing logs, and the seal look-up other provinces use for mutual recognition (互认).

The seal structures are GB/T 38540-2020 (SES_Seal); codes follow the national rule our seals use (GB/T 2260 region
code + kind digit + 7-digit number + ISO 7064 MOD 11-2 check character). The platform's own interface is not
published: the paths, fields and error codes here are modelled (see docs/domains/sealplatform.md). Every write
carries a `request_id` the platform de-duplicates on: a repeat gets the first answer, marked `duplicate`.

State is held in memory (one simulator process). Control endpoints under `/_sim/` take the platform down and up,
set the cache lifetime it states, register seals made by other provinces (their own CA and SES_Seal) and change a
seal's status at the platform (a revocation there, or a drift for reconciliation to find).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from asn1crypto import core as acore
from asn1crypto import x509 as ax509
from litestar import Litestar, Request, Response, get, post, put
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from core.problems import ProblemError, not_found
from core.settings import Settings
from simulators.ctid import strict_body

PlatformStatus = Literal["active", "suspended", "revoked", "destroyed"]
SealCode = Annotated[
    str,
    Meta(
        min_length=15,
        max_length=15,
        pattern=r"^\d{14}[\dX]$",
        description="unique seal code: region + kind + number + check",
        examples=["32050010000004X"],
    ),
]
RequestId = Annotated[
    str,
    Meta(
        min_length=8,
        max_length=128,
        pattern=r"^[A-Za-z0-9:._-]+$",
        description="idempotency key; a repeat gets the first answer",
        examples=["file:6f1c2d34-6b0e-4a52-9a5e-2b1f3c4d5e6f"],
    ),
]
Region = Annotated[str, Meta(min_length=6, max_length=6, pattern=r"^\d{6}$", examples=["320500"])]
Text = Annotated[str, Meta(min_length=1, max_length=64)]
B64 = Annotated[str, Meta(min_length=8, max_length=2_000_000, description="base64 DER")]
SealKind = Annotated[
    Literal["official", "contract", "finance", "personal"],
    Meta(description="official (单位公章), contract (合同专用章), finance (财务专用章), personal (个人名章)"),
]


class Filing(msgspec.Struct, kw_only=True):
    """赋码 and 备案 of one seal: the code under the national rule, the signed GB/T 38540 SES_Seal and its holder."""

    request_id: RequestId
    seal_code: SealCode
    seal_name: Text
    seal_kind: SealKind
    org_name: Text
    region_code: Region
    ses_seal: B64
    valid_from: dt.datetime
    valid_to: dt.datetime


class FilingReceipt(msgspec.Struct, kw_only=True):
    seal_code: str
    filing_no: Annotated[str, Meta(examples=["BA320500202612070001"])]
    status: PlatformStatus
    filed_at: dt.datetime
    duplicate: bool


class StatusChange(msgspec.Struct, kw_only=True):
    request_id: RequestId
    status: PlatformStatus
    reason: Annotated[str, Meta(max_length=200)] = ""
    changed_at: dt.datetime


class StatusReceipt(msgspec.Struct, kw_only=True):
    seal_code: str
    status: PlatformStatus
    duplicate: bool


class LogEntry(msgspec.Struct, kw_only=True):
    log_id: Annotated[str, Meta(min_length=1, max_length=64, description="unique per sender", examples=["320000:1"])]
    seal_code: SealCode
    action: Annotated[str, Meta(min_length=1, max_length=32, examples=["sign"])]
    at: dt.datetime
    doc_hash: Annotated[str, Meta(max_length=128)] = ""
    cert_serial: Annotated[str, Meta(max_length=64)] = ""
    result: Annotated[str, Meta(max_length=16)] = "ok"


class LogBatch(msgspec.Struct, kw_only=True):
    request_id: RequestId
    entries: Annotated[list[LogEntry], Meta(min_length=1, max_length=500)]


class LogReceipt(msgspec.Struct, kw_only=True):
    accepted: int
    duplicates: int


class SealRecord(msgspec.Struct, kw_only=True):
    """What the platform knows of a filed seal; `ca_certs` are the trust anchors of the filing province's seal CA
    (what mutual recognition rests on)."""

    seal_code: str
    seal_name: str
    seal_kind: str
    org_name: str
    region_code: str
    province: str
    status: PlatformStatus
    filing_no: str
    valid_from: dt.datetime
    valid_to: dt.datetime
    cert_serials: list[str]
    ca_certs: list[str]
    updated_at: dt.datetime


class StatusQuery(msgspec.Struct, kw_only=True):
    codes: Annotated[
        list[str], Meta(min_length=1, max_length=200, description="seal codes; one not filed here answers null")
    ]


class StatusItem(msgspec.Struct, kw_only=True):
    seal_code: str
    status: PlatformStatus | None  # None: not filed here


class StatusList(msgspec.Struct):
    items: list[StatusItem]


class Up(msgspec.Struct):
    status: str


class Mode(msgspec.Struct, kw_only=True):
    up: bool = True
    max_age: Annotated[int, Meta(ge=0, le=86400, description="seconds the look-up answer may be cached")] = 300


class ForeignSeal(msgspec.Struct, kw_only=True):
    """A seal another province made and filed: its SES_Seal and its seal CA's certificates."""

    seal_code: SealCode
    seal_name: Text
    seal_kind: SealKind = "official"
    org_name: Text
    region_code: Region
    province: Text
    ses_seal: B64
    ca_certs: Annotated[list[B64], Meta(min_length=1, max_length=4)]
    status: PlatformStatus = "active"


class SimStatus(msgspec.Struct, kw_only=True):
    status: PlatformStatus


class Counters(msgspec.Struct, kw_only=True):
    seal_code: str
    status: PlatformStatus
    filings: int
    status_changes: int
    duplicates: int
    log_entries: int
    lookups: int


class Totals(msgspec.Struct, kw_only=True):
    up: bool
    seals: int
    filings: int
    status_changes: int
    duplicates: int
    log_entries: int
    refused: int


@dataclass
class _Seal:
    record: SealRecord
    filing_request: str = ""
    filings: int = 0
    status_changes: int = 0
    duplicates: int = 0
    log_entries: int = 0
    lookups: int = 0


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    up: bool = True
    max_age: int = 300
    seals: dict[str, _Seal] = field(default_factory=dict)
    answers: dict[str, msgspec.Struct] = field(default_factory=dict)  # request_id -> first answer
    logs: set[str] = field(default_factory=set)
    refused: int = 0
    sequence: int = 0


PROVINCES = {"32": "江苏省", "33": "浙江省", "34": "安徽省", "31": "上海市", "11": "北京市", "37": "山东省"}


def _check_char(body: str) -> str:
    total = sum(int(ch) * (2 ** (len(body) - i) % 11) for i, ch in enumerate(body))
    return "10X98765432"[total % 11]


def _problem(status: int, slug: str, title: str, zh: str, detail: str, fld: str | None = None) -> ProblemError:
    return ProblemError(status, f"sealplatform-{slug}", title, zh, detail, field=fld)


def _b64(value: str, fld: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _problem(400, "invalid", "Invalid request", "请求参数无效", "not base64", fld) from exc


def _seal_facts(der: bytes, fld: str = "ses_seal") -> tuple[str, list[str]]:
    """The esID and the signer certificates' serials of a GB/T 38540 SES_Seal (v4: eSealInfo.property.certList;
    v1 GM/T 0031 has the list one element earlier)."""
    try:
        seal = acore.load(der)
        info = seal[0]
        es_id = str(info[1].native)
        prop = info[2]
        cert_list = prop[3] if int(info[0][1].native) == 4 else prop[2]
        serials = [
            str(ax509.Certificate.load(acore.OctetString.load(cert_list[i].dump()).native).serial_number)
            for i in range(len(cert_list))
        ]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _problem(400, "invalid", "Invalid request", "请求参数无效", "not a GB/T 38540 SES_Seal", fld) from exc
    return es_id, serials


def _handlers() -> list[object]:
    state = _State()

    def gate() -> None:
        if not state.up:
            state.refused += 1
            raise ProblemError(
                503,
                "sealplatform-unavailable",
                "Seal platform unavailable",
                "印章平台暂不可用",
                "maintenance",
                headers={"Retry-After": "5"},
            )

    def seal_of(code: str) -> _Seal:
        found = state.seals.get(code)
        if found is None:
            raise not_found(f"seal {code}")
        return found

    @get("/v1/health", summary="Platform availability (503 while down)", tags=["sealplatform"], sync_to_thread=False)
    def health() -> Up:
        with state.lock:
            gate()
        return Up("up")

    @post(
        "/v1/seal-filings",
        status_code=200,
        summary="赋码 and 备案: confirm a seal's unique code and file its SES_Seal",
        tags=["sealplatform"],
    )
    async def file_seal(request: Request[Any, Any, Any], data: JSONBody[Filing]) -> FilingReceipt:
        data = await strict_body(request, Filing)
        with state.lock:
            gate()
            first = state.answers.get(data.request_id)
            if isinstance(first, FilingReceipt):
                state.seals[first.seal_code].duplicates += 1
                return msgspec.structs.replace(first, duplicate=True)
            if _check_char(data.seal_code[:14]) != data.seal_code[14] or not data.seal_code.startswith(
                data.region_code[:2]
            ):
                raise _problem(
                    400, "code-rule", "Code breaks the coding rule", "印章编码不符合规则", data.seal_code, "seal_code"
                )
            der = _b64(data.ses_seal, "ses_seal")
            es_id, serials = _seal_facts(der)
            if es_id != data.seal_code:
                raise _problem(400, "invalid", "Invalid request", "请求参数无效", "esID is not seal_code", "ses_seal")
            if data.seal_code in state.seals:
                raise _problem(409, "code-taken", "Code already filed", "印章编码已被赋予其他印章", data.seal_code)
            state.sequence += 1
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            record = SealRecord(
                seal_code=data.seal_code,
                seal_name=data.seal_name,
                seal_kind=data.seal_kind,
                org_name=data.org_name,
                region_code=data.region_code,
                province=PROVINCES.get(data.region_code[:2], data.region_code[:2]),
                status="active",
                filing_no=f"BA{data.region_code}{now:%Y%m%d}{state.sequence:04d}",
                valid_from=data.valid_from,
                valid_to=data.valid_to,
                cert_serials=serials,
                ca_certs=[],
                updated_at=now,
            )
            state.seals[data.seal_code] = _Seal(record, data.request_id, filings=1)
            receipt = FilingReceipt(
                seal_code=data.seal_code, filing_no=record.filing_no, status="active", filed_at=now, duplicate=False
            )
            state.answers[data.request_id] = receipt
            return receipt

    @post(
        "/v1/seals/{code:str}/status-changes",
        status_code=200,
        summary="A filed seal's status changed (suspend, resume, revoke, destroy)",
        tags=["sealplatform"],
    )
    async def change_status(
        request: Request[Any, Any, Any],
        code: Annotated[str, Parameter(pattern=r"^\d{14}[\dX]$")],
        data: JSONBody[StatusChange],
    ) -> StatusReceipt:
        data = await strict_body(request, StatusChange)
        with state.lock:
            gate()
            seal = seal_of(code)
            first = state.answers.get(data.request_id)
            if isinstance(first, StatusReceipt):
                seal.duplicates += 1
                return msgspec.structs.replace(first, duplicate=True)
            if seal.record.status == "destroyed" and data.status != "destroyed":
                raise _problem(409, "seal-destroyed", "Seal destroyed", "印章已销毁", code, "status")
            seal.record.status = data.status
            seal.record.updated_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
            seal.status_changes += 1
            receipt = StatusReceipt(seal_code=code, status=data.status, duplicate=False)
            state.answers[data.request_id] = receipt
            return receipt

    @post("/v1/seal-logs", status_code=200, summary="Sealing logs (用印日志)", tags=["sealplatform"])
    async def seal_logs(request: Request[Any, Any, Any], data: JSONBody[LogBatch]) -> LogReceipt:
        data = await strict_body(request, LogBatch)
        with state.lock:
            gate()
            accepted = duplicates = 0
            for entry in data.entries:
                if entry.log_id in state.logs:
                    duplicates += 1
                    continue
                state.logs.add(entry.log_id)
                accepted += 1
                if entry.seal_code in state.seals:
                    state.seals[entry.seal_code].log_entries += 1
            return LogReceipt(accepted=accepted, duplicates=duplicates)

    @get(
        "/v1/seals/{code:str}",
        summary="Look a seal up (mutual recognition); Cache-Control states how long the answer holds",
        tags=["sealplatform"],
        sync_to_thread=False,
    )
    def lookup(code: Annotated[str, Parameter(pattern=r"^\d{14}[\dX]$")]) -> Response[SealRecord]:
        with state.lock:
            gate()
            seal = seal_of(code)
            seal.lookups += 1
            record = msgspec.structs.replace(seal.record)
            max_age = state.max_age
        return Response(record, headers={"Cache-Control": f"max-age={max_age}"})

    @post(
        "/v1/seals/status-query",
        status_code=200,
        summary="Statuses of many seals at once (reconciliation)",
        tags=["sealplatform"],
    )
    async def status_query(request: Request[Any, Any, Any], data: JSONBody[StatusQuery]) -> StatusList:
        data = await strict_body(request, StatusQuery)
        with state.lock:
            gate()
            return StatusList(
                [
                    StatusItem(seal_code=c, status=state.seals[c].record.status if c in state.seals else None)
                    for c in data.codes
                ]
            )

    # ---------------------------------------------------------------- control

    def totals() -> Totals:
        seals = list(state.seals.values())
        return Totals(
            up=state.up,
            seals=len(seals),
            filings=sum(s.filings for s in seals),
            status_changes=sum(s.status_changes for s in seals),
            duplicates=sum(s.duplicates for s in seals),
            log_entries=len(state.logs),
            refused=state.refused,
        )

    # Left out of the OpenAPI document on purpose (as /ctid/_sim/outage): an API fuzzer must not take the platform
    # down for everybody else. Documented in docs/domains/sealplatform.md.
    @put("/_sim/mode", include_in_schema=False)
    async def set_mode(request: Request[Any, Any, Any], data: JSONBody[Mode]) -> Totals:
        data = await strict_body(request, Mode)
        with state.lock:
            state.up, state.max_age = data.up, data.max_age
            return totals()

    @get("/_sim/stats", summary="Control: totals received", tags=["sim"], sync_to_thread=False)
    def stats() -> Totals:
        with state.lock:
            return totals()

    def counters(code: str) -> Counters:
        s = seal_of(code)
        return Counters(
            seal_code=code,
            status=s.record.status,
            filings=s.filings,
            status_changes=s.status_changes,
            duplicates=s.duplicates,
            log_entries=s.log_entries,
            lookups=s.lookups,
        )

    @get("/_sim/seals/{code:str}", summary="Control: one seal's record counters", tags=["sim"], sync_to_thread=False)
    def seal_counters(code: Annotated[str, Parameter(pattern=r"^\d{14}[\dX]$")]) -> Counters:
        with state.lock:
            return counters(code)

    @post("/_sim/seals", summary="Control: a seal made and filed by another province", tags=["sim"])
    async def add_foreign(request: Request[Any, Any, Any], data: JSONBody[ForeignSeal]) -> Counters:
        data = await strict_body(request, ForeignSeal)
        der = _b64(data.ses_seal, "ses_seal")
        es_id, serials = _seal_facts(der)
        if es_id != data.seal_code:
            raise _problem(400, "invalid", "Invalid request", "请求参数无效", "esID is not seal_code", "ses_seal")
        for i, c in enumerate(data.ca_certs):
            try:
                ax509.Certificate.load(_b64(c, f"ca_certs[{i}]")).subject  # noqa: B018 - parse now
            except ValueError as exc:
                raise _problem(
                    400, "invalid", "Invalid request", "请求参数无效", "not a certificate", "ca_certs"
                ) from (exc)
        seal = acore.load(der)
        prop = seal[0][2]
        v4 = int(seal[0][0][1].native) == 4
        start, end = (prop[5].native, prop[6].native) if v4 else (prop[4].native, prop[5].native)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with state.lock:
            state.sequence += 1
            record = SealRecord(
                seal_code=data.seal_code,
                seal_name=data.seal_name,
                seal_kind=data.seal_kind,
                org_name=data.org_name,
                region_code=data.region_code,
                province=data.province,
                status=data.status,
                filing_no=f"BA{data.region_code}{now:%Y%m%d}{state.sequence:04d}",
                valid_from=start,
                valid_to=end,
                cert_serials=serials,
                ca_certs=list(data.ca_certs),
                updated_at=now,
            )
            state.seals[data.seal_code] = _Seal(record, filings=1)
            return counters(data.seal_code)

    @put("/_sim/seals/{code:str}/status", summary="Control: change a seal's status at the platform", tags=["sim"])
    async def set_status(
        request: Request[Any, Any, Any],
        code: Annotated[str, Parameter(pattern=r"^\d{14}[\dX]$")],
        data: JSONBody[SimStatus],
    ) -> Counters:
        data = await strict_body(request, SimStatus)
        with state.lock:
            seal = seal_of(code)
            seal.record.status = data.status
            seal.record.updated_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
            return counters(code)

    return [
        health,
        file_seal,
        change_status,
        seal_logs,
        lookup,
        status_query,
        set_mode,
        stats,
        seal_counters,
        add_foreign,
        set_status,
    ]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("sealplatform", "national / provincial e-seal platform (电子印章管理平台)", settings, _handlers())
