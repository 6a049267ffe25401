"""Monitoring (per-interface series, summaries, server overview, alert rules), statistics and the inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.params import JSONBody, Parameter

from admin.auth import guarded
from admin.guards import admin_of
from core.resources import Resources
from orgs import monitoring, stats

Window = Annotated[int, Parameter(ge=60, le=30 * 86400)]


@get(
    "/v1/monitoring/routes",
    summary="Per-interface count, rate, errors, latency over a window",
    tags=["monitoring"],
    **guarded("monitor.read"),
)
async def monitoring_routes(res: Resources, window_s: Window = 3600) -> monitoring.RouteSummaryList:
    return await monitoring.routes(res, window_s)


@get(
    "/v1/monitoring/series",
    summary="One interface over time (samples of about a minute)",
    tags=["monitoring"],
    **guarded("monitor.read"),
)
async def monitoring_series(
    res: Resources,
    route: Annotated[str, Parameter(min_length=1, max_length=200)],
    since: datetime | None = None,
    until: datetime | None = None,
) -> monitoring.Series:
    return await monitoring.series(res, route, since, until)


@get(
    "/v1/monitoring/overview",
    summary="Server overview: load, memory, disk, database, Redis",
    tags=["monitoring"],
    **guarded("monitor.read"),
)
async def monitoring_overview(res: Resources) -> monitoring.Overview:
    return await monitoring.overview(res)


@get(
    "/v1/monitoring/alerts",
    summary="Alert rules in my scope and their state",
    tags=["monitoring"],
    **guarded("monitor.read"),
)
async def list_alerts(request: Request[Any, Any, Any], res: Resources) -> monitoring.AlertRuleList:
    return await monitoring.list_rules(res, admin_of(request))


@post(
    "/v1/monitoring/alerts",
    summary="Create an alert rule (metric, threshold, window)",
    tags=["monitoring"],
    status_code=201,
    **guarded("monitor.alert.edit", "monitor.alert.create"),
)
async def create_alert(
    request: Request[Any, Any, Any], res: Resources, data: JSONBody[monitoring.NewAlertRule]
) -> monitoring.AlertRule:
    return await monitoring.create_rule(res, admin_of(request), data)


@delete(
    "/v1/monitoring/alerts/{rule_id:uuid}",
    summary="Delete an alert rule",
    tags=["monitoring"],
    **guarded("monitor.alert.edit", "monitor.alert.delete"),
)
async def delete_alert(request: Request[Any, Any, Any], res: Resources, rule_id: uuid.UUID) -> None:
    await monitoring.delete_rule(res, admin_of(request), rule_id)


@get(
    "/v1/inbox",
    summary="My messages (alerts fired and cleared)",
    tags=["inbox"],
    **guarded(None),
)
async def my_inbox(request: Request[Any, Any, Any], res: Resources) -> monitoring.Inbox:
    return await monitoring.inbox(res, admin_of(request))


@get(
    "/v1/stats/users",
    summary="Users by region, age band and sex (in my region)",
    tags=["stats"],
    **guarded("stats.read"),
)
async def user_stats(request: Request[Any, Any, Any], res: Resources) -> stats.UserStats:
    await stats.sync(res)  # cheap when nothing is new; the worker also runs it every 5 minutes
    return await stats.users(res, admin_of(request))


@get(
    "/v1/stats/access",
    summary="Access by period, grouped by region or service",
    tags=["stats"],
    **guarded("stats.read"),
)
async def access_stats(
    request: Request[Any, Any, Any],
    res: Resources,
    period: stats.Period = "day",
    group: stats.Group = "service",
    since: datetime | None = None,
    until: datetime | None = None,
) -> stats.AccessStats:
    return await stats.access(res, admin_of(request), period, group, since, until)


@get(
    "/v1/stats/apps",
    summary="Per-app usage from the integration log",
    tags=["stats"],
    **guarded("stats.read"),
)
async def app_stats(
    request: Request[Any, Any, Any], res: Resources, since: datetime | None = None, until: datetime | None = None
) -> stats.AppUsageList:
    return await stats.app_usage(res, admin_of(request), since, until)


ROUTES: list[Any] = [
    monitoring_routes,
    monitoring_series,
    monitoring_overview,
    list_alerts,
    create_alert,
    delete_alert,
    my_inbox,
    user_stats,
    access_stats,
    app_stats,
]
