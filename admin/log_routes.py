"""Logs: search the operation and app-integration logs by every field, export CSV/XLSX, periodic reports;
masking management (the catalogue of sensitive fields and their levels)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, put
from litestar.di import Provide
from litestar.params import JSONBody, Parameter
from litestar.response import Stream

from admin import exports
from admin.auth import Guarded, guarded, needs
from admin.exports import CsvOrXlsx
from admin.guards import admin_of
from admin.org_routes import Cursor, Limit
from core.filters import TimeParam, time_range
from core.problems import not_found
from core.resources import Resources
from orgs import logs, masks, op_archive
from orgs.models import AdminPrincipal

Q = Annotated[str | None, Parameter(max_length=200)]
Code = Annotated[str | None, Parameter(max_length=40, pattern=r"^[0-9a-z-]{2,40}$")]
Status = Annotated[int | None, Parameter(ge=100, le=599)]
Fmt = Literal["csv", "xlsx"]
Req = Request[Any, Any, Any]

OP_COLUMNS = [
    ("at", "时间"),
    ("username", "操作人"),
    ("org_path", "所属机构"),
    ("ip", "来源IP"),
    ("action", "操作"),
    ("method", "方法"),
    ("path", "路径"),
    ("target", "对象"),
    ("result", "结果"),
    ("status", "状态码"),
    ("reason", "失败原因"),
    ("request_id", "请求编号"),
]
INT_COLUMNS = [
    ("at", "时间"),
    ("app_code", "应用"),
    ("direction", "方向"),
    ("interface", "接口"),
    ("method", "方法"),
    ("status", "状态码"),
    ("result", "结果"),
    ("latency_ms", "耗时(ms)"),
    ("ip", "来源IP"),
    ("region_code", "地区"),
    ("org_path", "所属机构"),
    ("detail", "说明"),
]


def op_query(
    username: Q = None,
    action: Q = None,
    result: Literal["ok", "fail"] | None = None,
    ip: Q = None,
    target: Q = None,
    status: Status = None,
    method: Annotated[str | None, Parameter(max_length=10)] = None,
    reason: Q = None,
    org_code: Code = None,
    since: TimeParam = None,
    until: TimeParam = None,
) -> logs.OpQuery:
    start, end = time_range(since, until)
    return logs.OpQuery(
        username=username,
        action=action,
        result=result,
        ip=ip,
        target=target,
        status=status,
        method=method,
        reason=reason,
        org_code=org_code,
        since=start,
        until=end,
    )


def int_query(
    app_code: Q = None,
    interface: Q = None,
    direction: Literal["inbound", "outbound"] | None = None,
    result: Literal["ok", "fail"] | None = None,
    status: Status = None,
    ip: Q = None,
    region_code: Annotated[str | None, Parameter(max_length=6)] = None,
    detail: Q = None,
    since: TimeParam = None,
    until: TimeParam = None,
) -> logs.IntegrationQuery:
    start, end = time_range(since, until)
    return logs.IntegrationQuery(
        app_code=app_code,
        interface=interface,
        direction=direction,
        result=result,
        status=status,
        ip=ip,
        region_code=region_code,
        detail=detail,
        since=start,
        until=end,
    )


# The filters of a search and of its export are the same query parameters, resolved once as a dependency.
OP_FILTERS = {"q": Provide(op_query, sync_to_thread=False)}
INT_FILTERS = {"q": Provide(int_query, sync_to_thread=False)}


async def viewer(request: Req, res: Resources) -> tuple[AdminPrincipal, masks.Masker]:
    """The caller and what its roles see unmasked."""
    p = admin_of(request)
    return p, await masks.masker(res, p)


async def export(
    request: Req,
    res: Resources,
    stream: Callable[[Resources, AdminPrincipal, masks.Masker, Any], AsyncIterator[msgspec.Struct]],
    q: Any,
    fmt: str,
    names: tuple[str, str],
    columns: Sequence[tuple[str, str]],
) -> Response[bytes]:
    """Every entry `stream` yields for `q`, masked, as a CSV or XLSX download named `names` (file, sheet title)."""
    p, m = await viewer(request, res)
    rows = await exports.collect(stream(res, p, m, q), columns)
    return await exports.respond(fmt, names[0], names[1], columns, rows)


class OperationLog(Guarded):
    path = "/v1/logs/operations"
    tags = ("logs",)
    dependencies = OP_FILTERS

    @get(summary="Search the operation log (newest first)", **needs("logs.read"))
    async def search_operations(
        self, request: Req, res: Resources, q: logs.OpQuery, cursor: Cursor = None, limit: Limit = 50
    ) -> logs.OpPage:
        return await logs.search_ops(res, *await viewer(request, res), q, cursor, limit)

    @get(
        "/export",
        summary="Export the matching operation-log entries (CSV or XLSX, masked)",
        operation_class=CsvOrXlsx,
        **needs("logs.export", "logs.export.operations"),
    )
    async def export_operations(
        self, request: Req, res: Resources, q: logs.OpQuery, format: Fmt = "csv"
    ) -> Response[bytes]:
        return await export(request, res, logs.stream_ops, q, format, ("operation-log", "操作日志"), OP_COLUMNS)


class IntegrationLog(Guarded):
    path = "/v1/logs/integration"
    tags = ("logs",)
    dependencies = INT_FILTERS

    @get(summary="Search the app-integration log", **needs("logs.read"))
    async def search_integration(
        self, request: Req, res: Resources, q: logs.IntegrationQuery, cursor: Cursor = None, limit: Limit = 50
    ) -> logs.IntegrationPage:
        return await logs.search_integration(res, *await viewer(request, res), q, cursor, limit)

    @get(
        "/export",
        summary="Export the matching app-integration log entries (CSV or XLSX, masked)",
        operation_class=CsvOrXlsx,
        **needs("logs.export", "logs.export.integration"),
    )
    async def export_integration(
        self, request: Req, res: Resources, q: logs.IntegrationQuery, format: Fmt = "csv"
    ) -> Response[bytes]:
        names = ("integration-log", "接入日志")
        return await export(request, res, logs.stream_integration, q, format, names, INT_COLUMNS)


@get(
    "/v1/logs/report",
    summary="Weekly, monthly, quarterly or yearly report of both logs",
    tags=["logs"],
    **guarded("logs.report"),
)
async def report(
    request: Req,
    res: Resources,
    period: logs.Period = "month",
    periods: Annotated[int, Parameter(ge=1, le=24)] = 6,
) -> logs.Report:
    return await logs.report(res, admin_of(request), period, periods)


class Masking(Guarded):
    """The catalogue of sensitive fields and their levels."""

    path = "/v1/masking/fields"
    tags = ("masking",)

    @get(summary="The catalogue of sensitive fields and their levels", **needs("masking.read"))
    async def mask_fields(self, res: Resources) -> masks.MaskFieldList:
        return masks.MaskFieldList(items=list((await masks.catalogue(res)).values()))

    @put(
        "/{field:str}",
        summary="Change a sensitive field's level (roles see it unmasked from their mask level up)",
        **needs("masking.edit", "masking.edit"),
    )
    async def update_mask_field(
        self, request: Req, res: Resources, field: str, data: JSONBody[masks.MaskFieldUpdate]
    ) -> masks.MaskField:
        return await masks.update(res, admin_of(request), field, data)


Month = Annotated[str, Parameter(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", max_length=7, description="YYYY-MM (UTC)")]


class OpLogArchives(Guarded):
    """Months of the operation log moved out of the online window, each with its chain head; a month downloads as
    JSON Lines carrying the chain hashes (docs/domains/orgs.md says how to verify them)."""

    path = "/v1/op-logs/archives"
    tags = ("logs",)

    @get(summary="Archived months of the operation log, newest first, with their chain heads", **needs("logs.read"))
    async def list_op_log_archives(self, res: Resources) -> op_archive.ArchivedMonths:
        return await op_archive.months(res)

    @get(
        "/{month:str}",
        summary="Download an archived month of the operation log (JSON Lines with the chain hashes, unmasked)",
        media_type="application/x-ndjson",
        **needs("logs.export", "logs.export.operations.archive"),
    )
    async def download_op_log_archive(self, res: Resources, month: Month) -> Stream:
        if month.startswith("0000"):  # the pattern admits year 0000, which no date has
            raise not_found("archived month")
        first = date(int(month[:4]), int(month[5:]), 1)
        if not await op_archive.exists(res, first):
            raise not_found("archived month")
        return Stream(
            op_archive.export(res, first),
            media_type="application/x-ndjson",
            headers={
                "Content-Disposition": f'attachment; filename="op-log-{month}.jsonl"',
                "Cache-Control": "no-store",
            },
        )


ROUTES: list[Any] = [OperationLog, IntegrationLog, report, Masking, OpLogArchives]
