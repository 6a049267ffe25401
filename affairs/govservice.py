"""The integrated government-service platform (一体化政务服务平台): one client class, the 办件 feed, its
reconciliation and the service guides (docs/domains/govplatform.md).

- **办件 feed.** Every case event is a feed record, written by a trigger in the transaction that writes the event
  (affairs migration 019), so the feed is the transactional outbox. `drain` sends due records in batches, in id
  order, one drainer at a time (a PostgreSQL advisory lock), a case's record waiting while an earlier one of the
  same case backs off; the platform de-duplicates on RECORD_ID (the record's stable key), so a batch whose answer
  was lost and is sent again is still taken exactly once. A transition nudges the drainer of its process; the
  `affairs.govfeed` job drains whatever the nudges left (an outage, a crash).
- **Reconciliation.** `reconcile` asks the platform for its state of every settled case changed recently and, for
  each that differs from ours (missing, or another status), queues a resend of our current state.
- **Guides.** `sync_guides` reads the item catalogue; an item whose guide version differs from the one our
  manifest carries gets a new manifest version holding the new guide (older versions stay for their cases).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

from affairs import govcodes, repo
from affairs.guide_models import Guide, GuideFee, GuideMaterial, GuidePlace, GuideQA
from core import clock, regions
from core.masking import mask_id_number, mask_name
from core.problems import ProblemError, not_found
from core.resources import Resources
from identity.facade import legal, people

log = logging.getLogger("szt.affairs.govservice")

BATCH = 200
MAX_BACKOFF_S = 300
RECONCILE_DAYS = 30
_SYSTEM_NAMES = {
    "crj": "出入境管理支队",
    "jiaoguan": "交通警察支队",
    "zhian": "治安管理支队",
    "neibao": "内保支队",
    "jianguan": "监所管理支队",
    "other": "政务服务中心",
}


class PlatformDown(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            503, "upstream-unavailable", "Government-service platform unavailable", "政务服务平台暂不可用", detail
        )


class GovPlatformClient:
    """The platform's exchange gateway (x-tif-* signed requests, `{"code","msg","data"}` answers)."""

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.base = res.settings.govplatform_base
        self.token = govcodes.token(res.settings.var_path)

    def _headers(self) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = hashlib.sha256(f"{ts}{self.token}{nonce}{ts}".encode()).hexdigest().upper()
        return {"x-tif-paasid": govcodes.PAASID, "x-tif-timestamp": ts, "x-tif-nonce": nonce, "x-tif-signature": sig}

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            r = await self.res.http.request(
                method,
                self.base + path,
                content=msgspec.json.encode(body) if body is not None else None,
                headers={**self._headers(), "Content-Type": "application/json"},
                timeout=8.0,
            )
        except httpx.HTTPError as exc:
            raise PlatformDown(type(exc).__name__) from exc
        if r.status_code >= 500:
            raise PlatformDown(f"HTTP {r.status_code}")
        try:
            answer = r.json()
        except ValueError as exc:
            raise PlatformDown("not JSON") from exc
        if r.status_code == 404:
            raise not_found("item")
        if r.status_code >= 400 or answer.get("code") != "00":
            raise ProblemError(
                502, "upstream-refused", "Refused by the government-service platform", "政务服务平台拒绝",
                f"{answer.get('code')}: {answer.get('msg')}",
            )  # fmt: skip
        return answer.get("data")

    async def push(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = await self._call("POST", "/v1/projects/batch", {"records": records})
        return data

    async def states(self, projids: list[str]) -> dict[str, str]:
        data = await self._call("POST", "/v1/projects/status-query", {"PROJIDS": projids})
        return {i["PROJID"]: i["STATUS"] for i in data["items"]}

    async def items(self) -> list[dict[str, Any]]:
        data = await self._call("GET", "/v1/items")
        return list(data["items"])

    async def guide(self, item_code: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._call("GET", f"/v1/items/{item_code}/guide")
        return data


# ---------------------------------------------------------------- the 办件 feed


def _dept_name(org_code: str) -> str:
    parts = org_code.split(".")
    city = regions.CITY_BY_CODE.get(parts[1]) if len(parts) > 1 else None
    system = parts[-1] if parts else ""
    return f"{city.name if city else regions.PROVINCE_NAME}市公安局{_SYSTEM_NAMES.get(system, '')}"


async def _applicant(res: Resources, row: Any, cache: dict[Any, tuple[str, str, str]]) -> tuple[str, str, str]:
    """(masked name, card type, masked card number) of the case's applicant: the enterprise for a legal case."""
    key = (row["person_id"], row["enterprise_id"])
    if key in cache:
        return cache[key]
    if row["enterprise_id"] is not None:
        page = await legal.my_enterprises(res, str(row["person_id"]), cursor=None, limit=100)
        e = next((x for x in page.items if str(x.id) == str(row["enterprise_id"])), None)
        # A credit code is public; an enterprise name is not personal data.
        out = (e.name, "001", e.uscc) if e else ("***", "001", "")
    else:
        p = await people.load(res, str(row["person_id"]))
        out = (mask_name(p.name), "111", mask_id_number(p.id_number))
    cache[key] = out
    return out


async def record(
    res: Resources, row: Any, ms: dict[str, Any], cache: dict[Any, tuple[str, str, str]]
) -> dict[str, Any]:
    """One feed row in the platform's 办件信息 shape."""
    m = ms.get(row["code"])  # the current manifest's body
    name, card_type, card_no = await _applicant(res, row, cache)
    code, status_name = govcodes.STATUS[row["status"]]
    return {
        "RECORD_ID": row["record_key"],
        "PROJID": row["case_no"],
        "SERVICECODE": govcodes.item_code(row["code"], m["kind"] if m else "application"),
        "SERVICENAME": m["name"] if m else row["code"],
        "APPLYNAME": name,
        "APPLY_CARDTYPE": card_type,
        "APPLY_CARDNUMBER": card_no,
        "DEPTID": row["org_code"],
        "DEPTNAME": _dept_name(row["org_code"]),
        "STATUS": code,
        "STATUS_NAME": status_name,
        "TRANSACT_TIME": f"{clock.to_beijing(row['at']):%Y-%m-%d %H:%M:%S}",
        "AREACODE": row["region_code"],
        "APPLYFROM": "2",
        "NOTE": row["note"][:500],
    }


_down_until = 0.0  # after a failed push, this process's nudges wait (the job still tries, by each row's backoff)


async def drain(res: Resources, *, batch: int = BATCH) -> int:
    """Send every due record; the number taken by the platform (new or already held). 0 when another drainer holds
    the lock (it drains to the end) or the platform is down (the records back off)."""
    global _down_until
    sent = 0
    async with res.db.acquire() as conn:
        if not await repo.gov_feed_lock(conn):
            return 0
        try:
            client = GovPlatformClient(res)
            ms = {r["body"]["code"]: r["body"] for r in await repo.current_manifests(conn)}
            cache: dict[Any, tuple[str, str, str]] = {}
            while True:
                rows = await repo.gov_feed_due(conn, batch)
                if not rows:
                    break
                records = [await record(res, r, ms, cache) for r in rows]
                ids = [r["id"] for r in rows]
                try:
                    answer = await client.push(records)
                except ProblemError as exc:
                    await repo.gov_feed_retry(conn, ids, f"{exc.status}: {exc.detail}", MAX_BACKOFF_S)
                    _down_until = time.monotonic() + 1.0
                    log.warning("办件 feed not delivered; backing off", extra={"records": len(ids)})
                    break
                by_key = {r["record_key"]: r["id"] for r in rows}
                done = [by_key[x["RECORD_ID"]] for x in answer["results"] if x["result"] != "rejected"]
                bad = [(by_key[x["RECORD_ID"]], x["code"]) for x in answer["results"] if x["result"] == "rejected"]
                await repo.gov_feed_delivered(conn, done)
                if bad:
                    await repo.gov_feed_rejected(conn, bad)
                    log.error("办件 records refused by the platform", extra={"records": bad[:20]})
                sent += len(done)
                if len(rows) < batch:
                    break
        finally:
            await repo.gov_feed_unlock(conn)
    return sent


_tasks: set[asyncio.Task[None]] = set()
_again = False


def nudge(res: Resources) -> None:
    """A transition was committed: drain soon, in this process, without holding up the caller. Nudges arriving
    while a drain runs make it run once more, so a burst costs a few drains, not one each."""
    global _again
    if time.monotonic() < _down_until:
        return
    if _tasks:
        _again = True
        return

    async def run() -> None:
        global _again
        try:
            while True:
                _again = False
                await drain(res)
                if not _again or time.monotonic() < _down_until:
                    break
        except Exception:  # the affairs.govfeed job takes over
            log.exception("办件 feed drain failed")

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


# ---------------------------------------------------------------- reconciliation


class Reconciliation(msgspec.Struct):
    compared: int
    repaired: int
    drift: list[dict[str, str | None]]


async def reconcile(res: Resources, *, days: int = RECONCILE_DAYS, now: datetime | None = None) -> Reconciliation:
    """Compare the platform's state of every settled case changed in the last `days` with ours; queue a resend of
    our state for each that drifted. Cases with records still in flight are left to the feed."""
    client = GovPlatformClient(res)
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    compared, drift, after = 0, [], ""
    while True:
        rows = await repo.gov_settled_cases(res.db, since, after, 500)
        if not rows:
            break
        theirs = await client.states([r["case_no"] for r in rows])
        for r in rows:
            ours = govcodes.STATUS[r["status"]][0]
            if theirs.get(r["case_no"]) != ours:
                key = f"{r['case_no']}-rs-{uuid.uuid4().hex[:12]}"
                await repo.gov_feed_resend(res.db, r["id"], key, r["status"], r["updated_at"])
                drift.append({"case_no": r["case_no"], "ours": ours, "theirs": theirs.get(r["case_no"])})
        compared += len(rows)
        after = rows[-1]["case_no"]
    await repo.gov_save_reconciliation(res.db, compared, len(drift), drift[:200])
    if drift:
        log.warning("办件 drift repaired", extra={"count": len(drift)})
        await drain(res)
    return Reconciliation(compared, len(drift), drift)


# ---------------------------------------------------------------- service guides


def _guide(g: dict[str, Any]) -> Guide:
    return Guide(
        item_code=g["SERVICECODE"],
        version=int(g["VERSION"]),
        updated_at=g["UPDATE_TIME"],
        service_object=g["SERVICE_OBJECT"],
        conditions=list(g["CONDITIONS"]),
        materials=[GuideMaterial(x["NAME"], x["REQUIRED"], x["CERT_FREE"], x["COPIES"]) for x in g["MATERIALS"]],
        process=list(g["PROCESS"]),
        places=[GuidePlace(x["NAME"], x["HOURS"]) for x in g["PLACES"]],
        time_limit=g["TIME_LIMIT"],
        legal_time_limit=g["LEGAL_TIME_LIMIT"],
        fees=[GuideFee(x["ITEM"], x["AMOUNT_FEN"], x.get("BASIS", "")) for x in g["FEES"]],
        faq=[GuideQA(x["Q"], x["A"]) for x in g["FAQ"]],
        consult_phone=g["CONSULT_PHONE"],
    )


async def sync_guides(res: Resources) -> int:
    """Pull changed guides into new manifest versions; the number of manifests that got a new version."""
    client = GovPlatformClient(res)
    catalogue = {i["SERVICECODE"]: int(i["VERSION"]) for i in await client.items()}
    changed = 0
    for row in await repo.current_manifests(res.db):
        body = dict(row["body"])
        code = govcodes.item_code(body["code"], body["kind"])
        if code not in catalogue:
            continue
        have = body.get("guide")
        if have is not None and have["version"] == catalogue[code]:
            continue
        guide = _guide(await client.guide(code))
        body["version"] = int(body["version"]) + 1
        body["guide"] = msgspec.to_builtins(guide)
        await repo.upsert_manifest(res.db, body)
        changed += 1
    if changed:  # affairs.service's manifest cache takes the new versions within its minute
        log.info("service guides updated", extra={"manifests": changed})
    return changed


async def guide(res: Resources, app_code: str) -> Guide:
    """The current guide of an application (read from the database, so a new version shows at once)."""
    row = await repo.current_manifest(res.db, app_code)
    if row is None:
        raise not_found("application")
    g = row["body"].get("guide")
    if g is None:
        raise ProblemError(404, "no-guide", "No service guide yet", "暂无办事指南", f"{app_code} has no guide yet")
    return msgspec.convert(g, Guide)


# ---------------------------------------------------------------- console


class FeedHealth(msgspec.Struct):
    pending: int
    rejected: int
    oldest_pending: datetime | None
    last_delivered: datetime | None
    last_reconciled: datetime | None
    last_repaired: int


async def feed_health(res: Resources) -> FeedHealth:
    c = await repo.gov_feed_counts(res.db)
    last = await repo.gov_last_reconciliation(res.db)
    return FeedHealth(
        c["pending"],
        c["rejected"],
        c["oldest_pending"],
        c["last_delivered"],
        last["at"] if last else None,
        last["repaired"] if last else 0,
    )
