"""Rules of the catalog: onboarding applications, review by the right level, versions, listing, layout, search."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import msgspec
from pypinyin import lazy_pinyin

from catalog import icons, repo
from catalog.models import (
    CITIES,
    MODULES,
    PROVINCE,
    Application,
    AppView,
    IconRef,
    LayoutUpdate,
    ListedApp,
    Notification,
    Review,
    ReviewOutcome,
    SearchHit,
    SearchPage,
    VersionPage,
    VersionView,
)
from core import audit
from core.pagination import decode_cursor, next_cursor
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources
from identity.facade import SCOPE_ENTITLEMENT, clients
from orgs import logs as org_logs
from orgs.models import AdminPrincipal as Actor
from orgs.scope import can_see, four_eyes, sql_scope

LAYOUT_KEY = "catalog:layout_version"
SEARCH_PAGE_MAX = 50
# Raise the Redis copy of the layout version only upwards, so two bumps finishing out of order never go back.
_MAX_SET = """local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) end
return 1"""


def pinyin_of(name: str) -> tuple[str, str]:
    """Full pinyin and initials, letters only, lower case (precomputed for search)."""
    syllables = [s for s in lazy_pinyin(name) if s.isascii() and s.isalpha()]
    full = "".join(syllables).lower()
    initials = "".join(s[0] for s in syllables).lower()
    return full, initials


def covers(actor: Actor, org_path: str) -> bool:
    """Whether the administrator's data scope includes an organisation."""
    return can_see(actor, org_path)


def _conflict(detail: str) -> ProblemError:
    return ProblemError(409, "conflict", "Conflict", "请求冲突", detail)


def _forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", "Forbidden", "无权访问", detail)


# This process's copy of the layout version: asked of Redis at most once per LOCAL_TTL seconds, so a change made
# by another replica shows on this one's home screens within that time (at once on the replica that made it).
LOCAL_TTL = 1.0
_local: list[float] = [0.0, -1e9]  # [version, monotonic time fetched]


async def publish_layout(res: Resources, version: int) -> None:
    """After the change committed (never before: a reader would cache the old state under the new version)."""
    await res.redis.eval(_MAX_SET, 1, LAYOUT_KEY, str(version))
    if version > _local[0]:
        _local[0], _local[1] = version, time.monotonic()


async def layout_version(res: Resources) -> int:
    now = time.monotonic()
    if now - _local[1] < LOCAL_TTL:
        return int(_local[0])
    raw = await res.redis.get(LAYOUT_KEY)
    if raw is not None:
        version = int(raw)
    else:
        version = await repo.layout_version(res.db)
        await res.redis.eval(_MAX_SET, 1, LAYOUT_KEY, str(version))
    _local[0], _local[1] = max(version, int(_local[0])), now
    return int(_local[0])


# ---------------------------------------------------------------------------------------------------- onboarding


def store_icon(res: Resources, data: bytes) -> IconRef:
    digest = icons.store(res.settings.var_path, data)
    return icon_ref(res, digest)


def icon_ref(res: Resources, digest: str) -> IconRef:
    base = res.settings.base_url
    return IconRef(digest=digest, urls={str(s): icons.url_for(base, digest, s) for s in icons.ICON_SIZES})


def _check_application(res: Resources, actor: Actor, app: Application) -> dict[str, Any]:
    regions = sorted(set(app.regions))
    if PROVINCE in regions and len(regions) > 1:
        raise invalid("regions", "either ['320000'] (province-wide) or city codes")
    for code in regions:
        if code != PROVINCE and code not in CITIES:
            raise invalid("regions", f"{code} is not a city of Jiangsu")
    if actor.data_scope != "all" and actor.org_level != "province":
        # A city's (or lower) organisation applies for its own city only.
        city = actor.region_code[:4] + "00"
        if regions != [city]:
            raise invalid("regions", f"an organisation of {city} may apply for {city} only")
    if "openid" in app.scopes and app.kind != "backend" and not app.redirect_uris:
        raise invalid("redirect_uris", "a client that signs users in needs at least one redirect URI")
    if not icons.path_for(res.settings.var_path, app.icon_digest, icons.ICON_SIZES[0]).exists():
        raise invalid("icon_digest", "upload the icon first (POST …/catalog/icons)")
    fields = msgspec.structs.asdict(app)
    fields["regions"] = regions
    fields["channels"] = sorted(set(app.channels))
    fields["scopes"] = sorted(set(app.scopes))
    fields["redirect_uris"] = list(dict.fromkeys(app.redirect_uris))
    fields["pinyin_full"], fields["pinyin_initials"] = pinyin_of(app.name)
    return fields


def version_view(r: Any) -> VersionView:
    return VersionView(
        id=r["id"],
        app_code=r["app_code"],
        version=r["version"],
        status=r["status"],
        name=r["name"],
        category=r["category"],
        kind=r["kind"],
        audience=r["audience"],
        zone=r["zone"],
        entry_path=r["entry_path"],
        icon_digest=r["icon_digest"],
        channels=list(r["channels"]),
        regions=list(r["regions"]),
        scopes=list(r["scopes"]),
        redirect_uris=list(r["redirect_uris"]),
        submitted_at=r["submitted_at"],
        reviewed_at=r["reviewed_at"],
        reason=r["reason"],
    )


_LISTING = ("name", "category", "kind", "audience", "entry_path", "icon_digest")


def _listing(r: Any) -> dict[str, Any]:
    """The columns of an app row that its console view and its read model take as they are."""
    return {k: r[k] for k in _LISTING}


def app_view(r: Any) -> AppView:
    return AppView(
        code=r["code"],
        org_path=r["org_path"],
        **_listing(r),
        channels=list(r["channels"]),
        regions=list(r["regions"]),
        hidden_cities=list(r["hidden_cities"]),
        scopes=list(r["scopes"]),
        client_id=r["client_id"],
        live_version=r["live_version"],
        listed=r["listed"],
        delisted_reason=r["delisted_reason"],
        health_failures=r["health_failures"],
    )


async def apply(res: Resources, actor: Actor, app: Application, *, ip: str = "") -> VersionView:
    """A new app: its code is assigned and version 1 waits for review."""
    fields = _check_application(res, actor, app)
    async with res.db.acquire() as conn, conn.transaction():
        code = await repo.next_code(conn)
        await repo.insert_app(conn, code=code, org_id=actor.org_id, org_path=actor.org_path, fields=fields)
        row = await repo.insert_version(conn, app_code=code, status="pending", submitted_by=actor.id, fields=fields)
        await audit.record(conn, actor=str(actor.id), action="catalog.app.apply", target=code, ip=ip)
    return version_view(row)


async def submit_version(res: Resources, actor: Actor, code: str, app: Application, *, ip: str = "") -> VersionView:
    """A changed app (icon, path, scopes, regions …) or a resubmission after rejection: a new version for review.
    The live version stays live until the new one is approved."""
    fields = _check_application(res, actor, app)
    async with res.db.acquire() as conn, conn.transaction():
        current = await repo.get_app(conn, code, for_update=True)
        if current is None or not covers(actor, current["org_path"]):
            raise not_found("app")
        try:
            row = await repo.insert_version(conn, app_code=code, status="pending", submitted_by=actor.id, fields=fields)
        except Exception as exc:
            if type(exc).__name__ == "UniqueViolationError":
                raise _conflict("a version of this app is already waiting for review") from exc
            raise
        await audit.record(conn, actor=str(actor.id), action="catalog.app.submit", target=code, ip=ip)
    return version_view(row)


def _reviewer_level_ok(actor: Actor, owner_path: str, regions: list[str]) -> bool:
    """The level above the applicant reviews: never the applying organisation itself; a province-wide app needs a
    provincial reviewer; the platform administrator (scope `all`) may review anything outside its own organisation
    (four_eyes)."""
    if actor.data_scope == "all":
        return True
    if not covers(actor, owner_path) or (owner_path == actor.org_path and "." in owner_path):
        return False  # the root organisation has no level above: another of its administrators (four_eyes)
    if PROVINCE in regions:
        return actor.org_level == "province"
    return actor.org_level in ("province", "city") and all(
        actor.org_level == "province" or c == actor.region_code[:4] + "00" for c in regions
    )


def entitlements_for(scopes: list[str]) -> list[str]:
    """The client may receive the approved scopes: the first entitlement that grants each."""
    out = [SCOPE_ENTITLEMENT[s][0] for s in scopes if SCOPE_ENTITLEMENT.get(s)]
    return sorted(set(out))


async def review(
    res: Resources, actor: Actor, version_id: uuid.UUID, decision: Review, *, ip: str = ""
) -> ReviewOutcome:
    v = await repo.get_version(res.db, version_id)
    if v is None:
        raise not_found("version")
    app = await repo.get_app(res.db, v["app_code"])
    if not covers(actor, app["org_path"]):
        raise not_found("version")
    four_eyes(actor, submitted_by=v["submitted_by"], submitter_org=app["org_path"])
    if not _reviewer_level_ok(actor, app["org_path"], list(v["regions"])):
        raise _forbidden("this application is reviewed by the level above the applicant")
    if decision.decision == "reject" and not decision.reason.strip():
        raise invalid("reason", "a rejection states its reason")
    status = "approved" if decision.decision == "approve" else "rejected"
    secret: str | None = None
    async with res.db.acquire() as conn, conn.transaction():
        claimed = await repo.claim_version(conn, version_id, status=status, reviewer=actor.id, reason=decision.reason)
        if claimed is None:
            raise _conflict("this version was already decided")
        await audit.record(
            conn,
            actor=str(actor.id),
            action=f"catalog.app.{status}",
            target=v["app_code"],
            ip=ip,
            detail={"version": v["version"], "reason": decision.reason},
        )
        kind_zh = "通过" if status == "approved" else "驳回"
        await repo.insert_notification(
            conn,
            org_path=app["org_path"],
            org_id=app["org_id"],
            app_code=app["code"],
            kind=f"review_{status}",
            message=f"应用“{v['name']}”第 {v['version']} 版审核{kind_zh}"
            + (f"：{decision.reason}" if decision.reason else ""),
        )
        if status == "rejected":
            return ReviewOutcome(version=version_view(claimed))
        client_id = app["client_id"] or app["code"]
        entitlements = entitlements_for(list(claimed["scopes"]))
        if app["client_id"] is None:
            made = await clients.create(
                res,
                client_id=client_id,
                name=claimed["name"],
                kind="business" if claimed["kind"] == "backend" else "app",
                zone=claimed["zone"],
                redirect_uris=list(claimed["redirect_uris"]),
                entitlements=entitlements,
            )
            secret = made.client_secret
        else:
            await clients.update_grants(
                res,
                client_id,
                entitlements=entitlements,
                redirect_uris=list(claimed["redirect_uris"]),
                zone=claimed["zone"],
            )
        full, initials = pinyin_of(claimed["name"])
        await repo.make_live(conn, claimed, client_id=client_id, pinyin_full=full, pinyin_initials=initials)
        version = await repo.bump_layout(conn)
    await publish_layout(res, version)
    await org_logs.set_client_org(res, client_id, app["org_path"])  # its calls' log rows carry its organisation
    return ReviewOutcome(version=version_view(claimed), client_id=client_id, client_secret=secret)


async def set_listing(res: Resources, actor: Actor, code: str, listed: bool, reason: str, *, ip: str = "") -> AppView:
    async with res.db.acquire() as conn, conn.transaction():
        app = await repo.get_app(conn, code, for_update=True)
        if app is None or not covers(actor, app["org_path"]):
            raise not_found("app")
        if not await repo.set_listed(conn, code, listed=listed, reason=reason or "admin"):
            raise _conflict("an app is listed only after a version was approved")
        await audit.record(
            conn,
            actor=str(actor.id),
            action="catalog.app.list" if listed else "catalog.app.delist",
            target=code,
            ip=ip,
            detail={"reason": reason},
        )
        version = await repo.bump_layout(conn)
        row = await repo.get_app(conn, code)
    await publish_layout(res, version)
    return app_view(row)


async def set_visibility(res: Resources, actor: Actor, code: str, hidden: list[str], *, ip: str = "") -> AppView:
    for c in hidden:
        if c not in CITIES:
            raise invalid("hidden_cities", f"{c} is not a city of Jiangsu")
    async with res.db.acquire() as conn, conn.transaction():
        app = await repo.get_app(conn, code, for_update=True)
        if app is None or not covers(actor, app["org_path"]):
            raise not_found("app")
        if actor.data_scope != "all" and actor.org_level != "province":
            own = actor.region_code[:4] + "00"
            # A city decides only about itself; the other cities' choices stay as they are.
            keep = [c for c in app["hidden_cities"] if c != own]
            hidden = sorted(set(keep + [c for c in hidden if c == own]))
        await repo.set_hidden_cities(conn, code, sorted(set(hidden)))
        await audit.record(conn, actor=str(actor.id), action="catalog.app.visibility", target=code, ip=ip)
        version = await repo.bump_layout(conn)
        row = await repo.get_app(conn, code)
    await publish_layout(res, version)
    return app_view(row)


async def set_layout(res: Resources, actor: Actor, update: LayoutUpdate, *, ip: str = "") -> int:
    """Replace one module's slots for the province or a city; returns the new layout version."""
    region = update.region_code
    if region != PROVINCE and region not in CITIES:
        raise invalid("region_code", "the province or one of its cities")
    if update.module not in MODULES:
        raise invalid("module", f"one of {', '.join(MODULES)}")
    if actor.data_scope != "all":
        own = PROVINCE if actor.org_level == "province" else actor.region_code[:4] + "00"
        if actor.org_level != "province" and region != own:
            raise _forbidden("a city arranges its own home layout only")
    codes = list(dict.fromkeys(update.app_codes))
    missing = set(codes) - await repo.existing_codes(res.db, codes)
    if missing:
        raise invalid("app_codes", f"unknown apps: {', '.join(sorted(missing))}")
    async with res.db.acquire() as conn, conn.transaction():
        await repo.replace_module(conn, region, update.module, codes)
        await audit.record(
            conn, actor=str(actor.id), action="catalog.layout.update", target=f"{region}/{update.module}", ip=ip
        )
        version = await repo.bump_layout(conn)
    await publish_layout(res, version)
    return version


async def get_app(res: Resources, actor: Actor, code: str) -> AppView:
    row = await repo.get_app(res.db, code)
    if row is None or not covers(actor, row["org_path"]):
        raise not_found("app")
    return app_view(row)


async def versions(res: Resources, actor: Actor, *, status: str | None, cursor: str | None, limit: int) -> VersionPage:
    sql, args = sql_scope(actor, "a.org_path", 5)
    rows = await repo.versions(
        res.db, status=status, scope_sql=sql, scope_args=args, after=decode_cursor(cursor), limit=limit
    )
    return VersionPage(items=[version_view(r) for r in rows], next_cursor=next_cursor(rows, limit))


async def notifications(res: Resources, actor: Actor, code: str, limit: int = 50) -> list[Notification]:
    await get_app(res, actor, code)
    rows = await repo.notifications(res.db, code, limit)
    return [
        Notification(
            id=r["id"], app_code=r["app_code"], kind=r["kind"], message=r["message"], created_at=r["created_at"]
        )
        for r in rows
    ]


async def org_notifications(res: Resources, actor: Actor, limit: int = 50) -> list[Notification]:
    """The review outcomes addressed to the administrator's own organisation (newest first)."""
    rows = await repo.org_notifications(res.db, actor.org_path, limit)
    return [
        Notification(
            id=r["id"], app_code=r["app_code"], kind=r["kind"], message=r["message"], created_at=r["created_at"]
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------------------------------- read model


def _listed(r: Any) -> ListedApp:
    return ListedApp(
        code=r["code"],
        **_listing(r),
        channels=tuple(r["channels"]),
        regions=tuple(r["regions"]),
        hidden_cities=tuple(r["hidden_cities"]),
        version=r["live_version"],
    )


def visible(app: ListedApp, city: str | None, channel: str) -> bool:
    if channel not in app.channels:
        return False
    if PROVINCE in app.regions:
        return city is None or city not in app.hidden_cities
    return city is not None and city in app.regions


async def all_listed(res: Resources) -> list[ListedApp]:
    return [_listed(r) for r in await repo.listed_apps(res.db)]


async def listed_apps(res: Resources, *, region_code: str | None, channel: str) -> list[ListedApp]:
    """docs/contracts.md: listed apps visible for the region (province-wide or that city) and channel."""
    city = None if region_code in (None, PROVINCE) else region_code[:4] + "00"
    return [a for a in await all_listed(res) if visible(a, city, channel)]


_SEARCH_CLEAN = re.compile(r"[\s'·]+")


async def search(
    res: Resources, q: str, *, city: str | None, channel: str, cursor: str | None, limit: int
) -> SearchPage:
    needle = _SEARCH_CLEAN.sub("", q).lower()
    if not needle or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in needle):
        raise invalid("q", "type part of a service name, its pinyin or initials")
    rows = await repo.search(res.db, needle, city=city, channel=channel, after=cursor, limit=limit)
    items = [
        SearchHit(
            code=r["code"],
            name=r["name"],
            category=r["category"],
            kind=r["kind"],
            entry_path=r["entry_path"],
            icon=icons.url_for(res.settings.base_url, r["icon_digest"], 96) if r["icon_digest"] else "",
        )
        for r in rows
    ]
    return SearchPage(items=items, next_cursor=rows[-1]["code"] if len(rows) == limit else None)


# ---------------------------------------------------------------------------------------------------- console reads


async def get_version(res: Resources, actor: Actor, version_id: uuid.UUID) -> VersionView:
    """One version of an app in the administrator's data scope (the console's review page)."""
    v = await repo.get_version(res.db, version_id)
    app = await repo.get_app(res.db, v["app_code"]) if v is not None else None
    if v is None or app is None or not covers(actor, app["org_path"]):
        raise not_found("version")
    return version_view(v)


async def apps(res: Resources, actor: Actor, *, cursor: str | None, limit: int) -> tuple[list[AppView], str | None]:
    """Apps with a live version in the administrator's data scope, by code; the next cursor is the last code."""
    sql, args = sql_scope(actor, "a.org_path", 4)
    rows = await repo.apps_in_scope(res.db, live_only=True, scope_sql=sql, scope_args=args, after=cursor, limit=limit)
    return [app_view(r) for r in rows], rows[-1]["code"] if len(rows) == limit else None
