"""Logs: search the operation and app-integration logs by every field, export CSV/XLSX, periodic reports;
masking management (the catalogue of sensitive fields and their levels)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Request, Response, get, put
from litestar.di import Provide
from litestar.params import JSONBody, Parameter

from admin import exports
from admin.auth import guarded
from admin.guards import admin_of
from admin.org_routes import Cursor, Limit
from core.resources import Resources
from orgs import logs, masks

Q = Annotated[str | None, Parameter(max_length=200)]
Code = Annotated[str | None, Parameter(max_length=40, pattern=r"^[0-9a-z-]{2,40}$")]
Status = Annotated[int | None, Parameter(ge=100, le=599)]
Fmt = Literal["csv", "xlsx"]

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
    since: datetime | None = None,
    until: datetime | None = None,
) -> logs.OpQuery:
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
        since=since,
        until=until,
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
    since: datetime | None = None,
    until: datetime | None = None,
) -> logs.IntegrationQuery:
    return logs.IntegrationQuery(
        app_code=app_code,
        interface=interface,
        direction=direction,
        result=result,
        status=status,
        ip=ip,
        region_code=region_code,
        detail=detail,
        since=since,
        until=until,
    )


# The filters of a search and of its export are the same query parameters, resolved once as a dependency.
OP_FILTERS = {"q": Provide(op_query, sync_to_thread=False)}
INT_FILTERS = {"q": Provide(int_query, sync_to_thread=False)}


@get(
    "/v1/logs/operations",
    summary="Search the operation log (newest first)",
    tags=["logs"],
    dependencies=OP_FILTERS,
    **guarded("logs.read"),
)
async def search_operations(
    request: Request[Any, Any, Any],
    res: Resources,
    q: logs.OpQuery,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> logs.OpPage:
    p = admin_of(request)
    return await logs.search_ops(res, p, await masks.masker(res, p), q, cursor, limit)


@get(
    "/v1/logs/operations/export",
    summary="Export the matching operation-log entries (CSV or XLSX, masked)",
    tags=["logs"],
    media_type="application/octet-stream",
    dependencies=OP_FILTERS,
    **guarded("logs.export", "logs.export.operations"),
)
async def export_operations(
    request: Request[Any, Any, Any],
    res: Resources,
    q: logs.OpQuery,
    format: Fmt = "csv",
) -> Response[bytes]:
    p = admin_of(request)
    rows = await exports.collect(logs.stream_ops(res, p, await masks.masker(res, p), q), OP_COLUMNS)
    return await exports.respond(format, "operation-log", "操作日志", OP_COLUMNS, rows)


@get(
    "/v1/logs/integration",
    summary="Search the app-integration log",
    tags=["logs"],
    dependencies=INT_FILTERS,
    **guarded("logs.read"),
)
async def search_integration(
    request: Request[Any, Any, Any],
    res: Resources,
    q: logs.IntegrationQuery,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> logs.IntegrationPage:
    p = admin_of(request)
    return await logs.search_integration(res, p, await masks.masker(res, p), q, cursor, limit)


@get(
    "/v1/logs/integration/export",
    summary="Export the matching app-integration log entries (CSV or XLSX, masked)",
    tags=["logs"],
    media_type="application/octet-stream",
    dependencies=INT_FILTERS,
    **guarded("logs.export", "logs.export.integration"),
)
async def export_integration(
    request: Request[Any, Any, Any],
    res: Resources,
    q: logs.IntegrationQuery,
    format: Fmt = "csv",
) -> Response[bytes]:
    p = admin_of(request)
    rows = await exports.collect(logs.stream_integration(res, p, await masks.masker(res, p), q), INT_COLUMNS)
    return await exports.respond(format, "integration-log", "接入日志", INT_COLUMNS, rows)


@get(
    "/v1/logs/report",
    summary="Weekly, monthly, quarterly or yearly report of both logs",
    tags=["logs"],
    **guarded("logs.report"),
)
async def report(
    request: Request[Any, Any, Any],
    res: Resources,
    period: logs.Period = "month",
    periods: Annotated[int, Parameter(ge=1, le=24)] = 6,
) -> logs.Report:
    return await logs.report(res, admin_of(request), period, periods)


@get(
    "/v1/masking/fields",
    summary="The catalogue of sensitive fields and their levels",
    tags=["masking"],
    **guarded("masking.read"),
)
async def mask_fields(res: Resources) -> masks.MaskFieldList:
    return masks.MaskFieldList(items=list((await masks.catalogue(res)).values()))


@put(
    "/v1/masking/fields/{field:str}",
    summary="Change a sensitive field's level (roles see it unmasked from their mask level up)",
    tags=["masking"],
    **guarded("masking.edit", "masking.edit"),
)
async def update_mask_field(
    request: Request[Any, Any, Any], res: Resources, field: str, data: JSONBody[masks.MaskFieldUpdate]
) -> masks.MaskField:
    return await masks.update(res, admin_of(request), field, data)


ROUTES: list[Any] = [
    search_operations,
    export_operations,
    search_integration,
    export_integration,
    report,
    mask_fields,
    update_mask_field,
]
