"""Monitoring (per-interface series, summaries, server overview, alert rules), statistics and the inbox."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.params import JSONBody, Parameter

from admin.auth import Guarded, guarded
from admin.guards import admin_of, require
from core.filters import TimeParam, time_range
from core.resources import Resources
from orgs import monitoring, stats

Req = Request[Any, Any, Any]
Window = Annotated[int, Parameter(ge=60, le=30 * 86400)]


class Monitoring(Guarded):
    """What the monitor.read permission shows: interfaces, their series, the server, the alert rules."""

    path = "/v1/monitoring"
    tags = ("monitoring",)
    guards = (require("monitor.read"),)

    @get("/routes", summary="Per-interface count, rate, errors, latency over a window")
    async def monitoring_routes(self, res: Resources, window_s: Window = 3600) -> monitoring.RouteSummaryList:
        return await monitoring.routes(res, window_s)

    @get("/series", summary="One interface over time (samples of about a minute)")
    async def monitoring_series(
        self,
        res: Resources,
        route: Annotated[str, Parameter(min_length=1, max_length=200)],
        since: TimeParam = None,
        until: TimeParam = None,
    ) -> monitoring.Series:
        return await monitoring.series(res, route, *time_range(since, until))

    @get("/overview", summary="Server overview: load, memory, disk, database, Redis")
    async def monitoring_overview(self, res: Resources) -> monitoring.Overview:
        return await monitoring.overview(res)

    @get("/alerts", summary="Alert rules in my scope and their state")
    async def list_alerts(self, request: Req, res: Resources) -> monitoring.AlertRuleList:
        return await monitoring.list_rules(res, admin_of(request))


class AlertRules(Guarded):
    """Changing the alert rules (monitor.alert.edit)."""

    path = "/v1/monitoring/alerts"
    tags = ("monitoring",)
    guards = (require("monitor.alert.edit"),)

    @post(
        summary="Create an alert rule (metric, threshold, window)",
        status_code=201,
        opt={"action": "monitor.alert.create"},
    )
    async def create_alert(
        self, request: Req, res: Resources, data: JSONBody[monitoring.NewAlertRule]
    ) -> monitoring.AlertRule:
        return await monitoring.create_rule(res, admin_of(request), data)

    @delete("/{rule_id:uuid}", summary="Delete an alert rule", opt={"action": "monitor.alert.delete"})
    async def delete_alert(self, request: Req, res: Resources, rule_id: uuid.UUID) -> None:
        await monitoring.delete_rule(res, admin_of(request), rule_id)


@get("/v1/inbox", summary="My messages (alerts fired and cleared)", tags=["inbox"], **guarded(None))
async def my_inbox(request: Req, res: Resources) -> monitoring.Inbox:
    return await monitoring.inbox(res, admin_of(request))


class Stats(Guarded):
    """Statistics in the caller's region (stats.read)."""

    path = "/v1/stats"
    tags = ("stats",)
    guards = (require("stats.read"),)

    @get("/users", summary="Users by region, age band and sex (in my region)")
    async def user_stats(self, request: Req, res: Resources) -> stats.UserStats:
        await stats.sync(res)  # cheap when nothing is new; the worker also runs it every 5 minutes
        return await stats.users(res, admin_of(request))

    @get("/access", summary="Access by period, grouped by region or service")
    async def access_stats(
        self,
        request: Req,
        res: Resources,
        period: stats.Period = "day",
        group: stats.Group = "service",
        since: TimeParam = None,
        until: TimeParam = None,
    ) -> stats.AccessStats:
        return await stats.access(res, admin_of(request), period, group, *time_range(since, until))

    @get("/apps", summary="Per-app usage from the integration log")
    async def app_stats(
        self, request: Req, res: Resources, since: TimeParam = None, until: TimeParam = None
    ) -> stats.AppUsageList:
        return await stats.app_usage(res, admin_of(request), *time_range(since, until))


ROUTES: list[Any] = [Monitoring, AlertRules, my_inbox, Stats]
