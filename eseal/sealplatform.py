"""The national / provincial e-seal platform: 赋码 and 备案 of our seals, their status changes and sealing logs
sent to it, and mutual recognition (互认) of seals other provinces filed there.

Nothing waits on the platform but what must: every message for it goes into `eseal.platform_outbox` in the same
step as the change it reports, with a stable key the platform de-duplicates on (`file:<seal id>`,
`status:<seal id>:<log seq>`), and is delivered in order per seal — at once when the platform answers, else by the
worker job `eseal.platform-outbox` with exponential backoff. A seal is usable once the platform has confirmed its
filing ('filing' → 'registered'); sealing with a filed seal never calls the platform. Sealing logs go from the
hash-chained log by a cursor (`log_id` = our region code and the log's seq, de-duplicated at the platform).

`eseal.platform-reconcile` compares what the platform says of each of our seals with our state (ours is
authoritative for our seals) and sends what is missing or different. A seal named in a document but not ours is
looked up at the platform; the answer is cached in Redis for the `max-age` the platform states. When the platform
cannot be reached and nothing is cached, the verdict for that signature is "could not confirm" (无法确认).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import uuid
from typing import Any

import httpx
import msgspec

from core import regions
from core.db import Executor
from core.resources import Resources
from eseal import logs, repo
from eseal.models import Check, SignatureReport, VerifyResult

log = logging.getLogger("szt.eseal.sealplatform")

BACKOFF_MAX = 300  # seconds between attempts at most
BATCH = 100
LOG_BATCH = 500
NEGATIVE_TTL = 60  # a seal the platform does not know, cached this long
PROVINCE = regions.PROVINCE_CODE
# Our seal state -> the platform's.
TO_PLATFORM = {
    "registered": "active",
    "published": "active",
    "suspended": "suspended",
    "revoked": "revoked",
    "destroyed": "destroyed",
}
# The platform's state of a seal not ours -> the state verification judges.
FROM_PLATFORM = {"active": "published", "suspended": "suspended", "revoked": "revoked", "destroyed": "destroyed"}
UNCONFIRMED = "unconfirmed"
_MAX_AGE = re.compile(r"max-age=(\d+)")


class PlatformError(Exception):
    """The platform did not take the message (down, timeout, 5xx); try again later."""


class Rejected(Exception):
    """The platform refused the message for good (4xx): retrying the same message cannot help."""


class SealPlatformClient:
    """The platform's HTTP interface (see simulators/sealplatform.py for the shapes)."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/")

    async def _send(self, method: str, path: str, body: Any = None, wait: float = 5.0) -> httpx.Response:
        try:
            resp = await self.http.request(method, self.url + path, json=body, timeout=wait)
        except httpx.HTTPError as exc:
            raise PlatformError(type(exc).__name__) from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise PlatformError(f"HTTP {resp.status_code}")
        return resp

    async def _write(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self._send("POST", path, body)
        if resp.status_code != 200:
            raise Rejected(f"HTTP {resp.status_code}: {resp.text[:300]}")
        answer: dict[str, Any] = resp.json()
        return answer

    async def file(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._write("/v1/seal-filings", body)

    async def change_status(self, code: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._write(f"/v1/seals/{code}/status-changes", body)

    async def send_logs(self, request_id: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._write("/v1/seal-logs", {"request_id": request_id, "entries": entries})

    async def statuses(self, codes: list[str]) -> dict[str, str | None]:
        answer = await self._write("/v1/seals/status-query", {"codes": codes})
        return {i["seal_code"]: i["status"] for i in answer["items"]}

    async def lookup(self, code: str) -> tuple[dict[str, Any] | None, int]:
        """The platform's record of a seal (None: not filed there) and how long the answer holds (seconds)."""
        resp = await self._send("GET", f"/v1/seals/{code}", wait=3.0)
        found = _MAX_AGE.search(resp.headers.get("cache-control", ""))
        max_age = int(found.group(1)) if found else NEGATIVE_TTL
        if resp.status_code == 404:
            return None, min(max_age, NEGATIVE_TTL)
        if resp.status_code != 200:
            raise PlatformError(f"HTTP {resp.status_code}")
        record: dict[str, Any] = resp.json()
        return record, max_age


def client(res: Resources) -> SealPlatformClient:
    return SealPlatformClient(res.http, res.settings.seal_platform)


# --------------------------------------------------------------------------- the outbox


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def enqueue_filing(db: Executor, row: Any, *, key: str = "") -> None:
    """赋码 and 备案 of a made seal: its code under the national rule and its signed SES_Seal."""
    key = key or f"file:{row['id']}"
    await repo.outbox_add(
        db,
        key,
        "file",
        row["id"],
        {
            "request_id": key,
            "seal_code": row["code"],
            "seal_name": row["name"],
            "seal_kind": row["kind"],
            "org_name": row["org_name"],
            "region_code": row["region_code"],
            "ses_seal": base64.b64encode(bytes(row["ses_seal"])).decode(),
            "valid_from": _iso(row["valid_from"]),
            "valid_to": _iso(row["valid_to"]),
        },
    )


async def enqueue_status(db: Executor, row: Any, status: str, *, ref: str, reason: str = "") -> None:
    """A status change of a filed (or filing) seal; `ref` makes the key stable (the change's log seq)."""
    platform_status = TO_PLATFORM.get(status)
    if platform_status is None or not row["code"]:
        return
    key = f"status:{row['id']}:{ref}"
    await repo.outbox_add(
        db,
        key,
        "status",
        row["id"],
        {
            "request_id": key,
            "seal_code": row["code"],
            "status": platform_status,
            "reason": reason[:200],
            "changed_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )


async def _deliver_one(res: Resources, platform: SealPlatformClient, msg: Any) -> None:
    body = dict(msg["payload"])
    if msg["kind"] == "file":
        answer = await platform.file(body)
        row = await repo.seal(res.db, msg["seal_id"])
        if row is not None and row["status"] == "filing":
            await repo.update_seal(res.db, msg["seal_id"], status="registered", filing_no=answer["filing_no"])
            await logs.append(
                res.db,
                "seal",
                "filed",
                actor="sealplatform",
                seal_code=answer["seal_code"],
                detail={"filing_no": answer["filing_no"]},
            )
        elif row is not None:
            await repo.update_seal(res.db, msg["seal_id"], filing_no=answer["filing_no"])
    else:
        code = body.pop("seal_code")
        await platform.change_status(code, body)


async def deliver(res: Resources, *, seal_id: uuid.UUID | None = None, limit: int = BATCH) -> int:
    """Deliver what is due (of one seal, or all), in order per seal; returns how many were delivered. A message the
    platform cannot take now waits 2^attempts seconds (at most BACKOFF_MAX); the seal's later messages wait too."""
    platform = client(res)
    delivered = 0
    blocked: set[uuid.UUID] = set()
    for due in await repo.outbox_due(res.db, limit, seal_id):
        if due["seal_id"] in blocked:
            continue
        async with res.db.acquire() as conn, conn.transaction():
            msg = await repo.outbox_claim(conn, due["id"])
            if msg is None:
                continue
            try:
                await _deliver_one(res, platform, msg)
            except (PlatformError, Rejected) as exc:
                blocked.add(msg["seal_id"])
                await repo.outbox_failed(conn, msg["id"], str(exc), BACKOFF_MAX)
                log.warning("seal platform delivery failed", extra={"key": msg["key"], "error": str(exc)})
                continue
            await repo.outbox_delivered(conn, msg["id"])
            delivered += 1
    return delivered


async def deliver_soon(res: Resources, seal_id: uuid.UUID) -> None:
    """Try the seal's messages now; an unreachable platform leaves them for the worker."""
    try:
        await deliver(res, seal_id=seal_id)
    except Exception:  # the outbox keeps them; the worker retries
        log.exception("seal platform inline delivery failed")


async def ship_logs(res: Resources) -> int:
    """Sealing logs after the platform's cursor, in batches; the platform de-duplicates on log_id."""
    platform = client(res)
    shipped = 0
    while True:
        _, rows = await repo.sealing_logs_after(res.db, LOG_BATCH)
        if not rows:
            return shipped
        entries = [
            {
                "log_id": f"{PROVINCE}:{r['seq']}",
                "seal_code": r["seal_code"],
                "action": r["action"],
                "at": r["at"].isoformat(),
                "doc_hash": r["doc_hash"],
                "cert_serial": r["cert_serial"],
                "result": r["result"][:16],
            }
            for r in rows
            if re.fullmatch(r"\d{14}[\dX]", r["seal_code"])
        ]
        if entries:
            await platform.send_logs(f"logs:{PROVINCE}:{rows[0]['seq']}-{rows[-1]['seq']}", entries)
        await repo.move_log_cursor(res.db, rows[-1]["seq"])
        shipped += len(entries)


async def reconcile(res: Resources) -> list[str]:
    """Our seals whose state at the platform differs from ours (and has no message on its way): a missing
    filing is sent again, a different status is set to ours. Returns the codes repaired."""
    platform = client(res)
    repaired: list[str] = []
    after = ""
    while True:
        rows = await repo.filed_seals(res.db, after, 200)
        if not rows:
            break
        after = rows[-1]["code"]
        theirs = await platform.statuses([r["code"] for r in rows])
        for row in rows:
            if await repo.outbox_pending_for(res.db, row["id"]):
                continue  # on its way
            at_platform = theirs.get(row["code"])
            if at_platform is None:
                await _refile(res, row)
            elif row["status"] != "filing" and TO_PLATFORM.get(row["status"]) != at_platform:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
                await enqueue_status(res.db, row, row["status"], ref=f"reconcile-{stamp}", reason="reconciliation")
            else:
                continue
            repaired.append(row["code"])
            await logs.append(
                res.db,
                "seal",
                "platform-drift",
                actor="sealplatform",
                seal_code=row["code"],
                detail={"ours": row["status"], "platform": at_platform},
            )
            await deliver(res, seal_id=row["id"])
    return repaired


async def _refile(res: Resources, row: Any) -> None:
    """The platform lost (or never got) a filing we think delivered: file again under a new key, and send the
    status if it is not the one a filing starts with."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    await enqueue_filing(res.db, row, key=f"file:{row['id']}:{stamp}")
    if row["status"] not in ("filing", "registered", "published"):
        await enqueue_status(res.db, row, row["status"], ref=f"refile-{stamp}", reason="reconciliation")


# --------------------------------------------------------------------------- mutual recognition


class _Cached(msgspec.Struct):
    record: dict[str, Any] | None


async def foreign_state(res: Resources, code: str) -> dict[str, Any]:
    """The state verification judges for a seal not ours: from the platform (cached for the validity it
    states), or 'unconfirmed' when the platform cannot be reached and nothing is cached."""
    key = f"eseal:sealplatform:seal:{code}"
    raw = await res.redis.get(key)
    if raw is not None:
        record = msgspec.json.decode(raw, type=_Cached).record
    else:
        try:
            record, max_age = await client(res).lookup(code)
        except PlatformError as exc:
            log.warning("seal platform unreachable for look-up", extra={"code": code, "error": str(exc)})
            return {"status": UNCONFIRMED, "valid_to": None, "name": "", "cert_serials": set()}
        if max_age > 0:
            await res.redis.set(key, msgspec.json.encode(_Cached(record)), ex=max_age)
    if record is None:
        return {"status": "unknown", "valid_to": None, "name": "", "cert_serials": set(), "foreign": True}
    return {
        "status": FROM_PLATFORM.get(record["status"], record["status"]),
        "valid_to": dt.datetime.fromisoformat(record["valid_to"]),
        "name": record["seal_name"],
        "cert_serials": set(record["cert_serials"]),
        "recognised_by": record["province"],
        "filing_no": record["filing_no"],
        "roots": [base64.b64decode(c) for c in record["ca_certs"]],
    }


def recognised_roots(states: dict[str, dict[str, Any]]) -> list[bytes]:
    """The seal CAs of other provinces that the platform vouches for, for the seals a document names."""
    out: list[bytes] = []
    for state in states.values():
        for der in state.get("roots", ()):
            if der not in out:
                out.append(der)
    return out


_UNSURE = {"cert_seal_match", "seal_validity", "certificate"}


def _judged(sig: SignatureReport, state: dict[str, Any] | None) -> SignatureReport:
    if state is None:
        return sig
    if state["status"] == UNCONFIRMED:
        detail = "无法确认 could not confirm: the seal platform did not answer for this seal (not ours)"
        checks = [Check(c.name, "warn", detail) if c.name in _UNSURE and c.verdict == "fail" else c for c in sig.checks]
        hard_fail = any(c.verdict == "fail" for c in checks)
        return msgspec.structs.replace(sig, checks=checks, valid=False, confirmed=hard_fail)
    if state.get("recognised_by"):
        checks = [
            Check(
                c.name,
                c.verdict,
                f"{c.detail}; 互认 recognised: filed at the seal platform by {state['recognised_by']} "
                f"({state.get('filing_no', '')})",
            )
            if c.name == "seal_validity"
            else c
            for c in sig.checks
        ]
        return msgspec.structs.replace(sig, checks=checks, recognised_by=str(state["recognised_by"]))
    return sig


def judge(result: VerifyResult, foreign: dict[str, dict[str, Any]]) -> VerifyResult:
    """The verdict with the platform's answers for seals not ours: recognised seals say so, and a signature whose
    seal the platform could not confirm is neither valid nor invalid but 'could not confirm'."""
    if not foreign:
        return result
    signatures = [_judged(s, foreign.get(s.seal_code)) for s in result.signatures]
    confirmed = all(s.confirmed for s in signatures) or any(not s.valid and s.confirmed for s in signatures)
    return msgspec.structs.replace(
        result, signatures=signatures, valid=bool(signatures) and all(s.valid for s in signatures), confirmed=confirmed
    )


def is_code(code: str) -> bool:
    """A seal code under the national rule (what the platform can be asked about)."""
    return re.fullmatch(r"\d{14}[\dX]", code) is not None


class PlatformHealth(msgspec.Struct, kw_only=True):
    """The seal platform as the console shows it: reachable, and what waits for it."""

    url: str
    up: bool
    detail: str
    pending: int


async def health(res: Resources) -> PlatformHealth:
    url = res.settings.seal_platform
    try:
        await client(res)._send("GET", "/v1/health", wait=2.0)
        resp_ok, detail = True, "ok"
    except PlatformError as exc:
        resp_ok, detail = False, str(exc)
    return PlatformHealth(url=url, up=resp_ok, detail=detail, pending=await repo.outbox_pending(res.db))
