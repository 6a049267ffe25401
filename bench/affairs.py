"""The handling engine (issue #6) on the mounted server (2 workers): a form's 1 MB attachment upload and the
submission of the case that references it, "my cases", and the police map's nearby query over 10,000 offices —
peak (closed loop) and p99 at the offered rates the issue names (200/s, 500/s for the map).

No peer row: there is no other implementation of these endpoints to run beside them; the targets are absolute."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
from typing import Any

import httpx

from bench.context import Context
from bench.fixtures import ROOT, setup_for
from bench.http_healthz import Merged, load_row, merge
from bench.report import Row
from bench.servers import Server

FORM_RATE, MAP_RATE = 200.0, 500.0
TARGET_FORM_P99, TARGET_MAP_P99 = 0.200, 0.020
OFFICES = 10_000
APP = "app-30"  # 保安员证核发: a citizen's form with one photo attachment
ATTACHMENT = "%PDF-1.7 " + "x" * (1_000_000 - 9)  # sniffed as PDF; one line, so the load generator can send it
PHOTO = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4096)
BIG_PHOTO = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(1_000_000 - 8)  # the form's photo field takes images only
MAP_PATH = "/bff/v1/affairs/offices/nearby?lat=31.2990&lon=120.5853&radius_m=3000&limit=20"


def prepare(server: Server, bearer: str) -> dict[str, Any]:
    """Authorise the application, take the prefill and one photo: the body every submission sends."""
    h = {"Authorization": bearer.split(": ", 1)[1]}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        r = http.post(
            f"/bff/v1/affairs/apps/{APP}/authorisation", json={"scopes": ["name", "id_number", "phone"]}, headers=h
        )
        assert r.status_code == 204, r.text
        form = dict(http.get(f"/bff/v1/affairs/apps/{APP}/prefill", headers=h).json()["form"])
        up = http.post(
            "/bff/v1/affairs/attachments", content=PHOTO, headers={**h, "Content-Type": "application/octet-stream"}
        )
        assert up.status_code == 201, up.text
        form |= {"region_code": "320505", "photo": up.json()["id"]}
    return {"code": APP, "form": form}


def _upload(server: Server, bearer: str, data: bytes) -> str:
    h = {"Authorization": bearer.split(": ", 1)[1], "Content-Type": "application/octet-stream"}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        up = http.post("/bff/v1/affairs/attachments", content=data, headers=h)
        assert up.status_code == 201, up.text
        return str(up.json()["id"])


def _form_flow(server: Server, bearer: str, form_body: dict[str, Any]) -> list[dict[str, Any]]:
    """One whole form submission as the app makes it: the 1 MB photo uploaded, then the case that references a
    1 MB photo submitted (an open loop cannot wait for one answer to build the next request, so each submission
    references one such photo uploaded before the run)."""
    body = {**form_body, "form": {**form_body["form"], "photo": _upload(server, bearer, BIG_PHOTO)}}
    return [
        {"path": "/bff/v1/affairs/attachments", "content_type": "application/octet-stream",
         "body_b64": base64.b64encode(BIG_PHOTO).decode()},
        {"path": "/bff/v1/affairs/cases", "content_type": "application/json",
         "body": json.dumps(body, ensure_ascii=False)},
    ]  # fmt: skip


def _cases(server: Server, bearer: str, body: str, n: int) -> None:
    """A few cases first, so "my cases" pages a full page. The submission runs go last: each case they make is
    moved on by the business-system simulator's own schedule, and its callbacks would load the later runs."""
    h = {"Authorization": bearer.split(": ", 1)[1], "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for _ in range(n):
            r = http.post("/bff/v1/affairs/cases", content=body.encode(), headers=h)
            assert r.status_code == 201, r.text


def _offices(server: Server) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.affairs_offices", str(OFFICES)],
        cwd=ROOT, env=server.env, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-2000:])
    return int(proc.stdout.decode().strip().splitlines()[-1])


def _measure(ctx: Context, server: Server, path: str, rate: float, **kw: Any) -> tuple[Merged, Merged | None]:
    rounds = ctx.options.api_rounds
    peak = merge([ctx.loadgen(server, path, **kw) for _ in range(rounds)])
    at = merge([ctx.loadgen(server, path, rate=rate, **kw) for _ in range(rounds)]) if peak.throughput >= rate else None
    return peak, at


def _verdict(name: str, at: Merged | None, rate: float, target: float) -> str:
    if at is None or at.latency.p99 is None:
        return f"{name}: peak below {rate:,.0f}/s, not run at that rate (NOT met)"
    p99 = at.latency.p99
    verdict = "met" if p99 <= target else "NOT met"
    return f"{name}: p99 {p99 * 1000:.1f} ms at {rate:,.0f}/s, target ≤ {target * 1000:.0f} ms {verdict}"


def _feed_stats(server: Server) -> int:
    accepted: int = httpx.get(f"{server.sim_url}/govplatform/_sim/stats", timeout=10).json()["accepted"]
    return accepted


def _feed_mark(server: Server) -> tuple[int, float]:
    return _feed_stats(server), time.monotonic()


def _feed_row(server: Server, start: tuple[int, float], submit_peak: float) -> tuple[Row, str]:
    """The 办件 feed during the submission rows just run: records the platform simulator took per second over the
    whole submission window (closed loop at peak, then the offered rate), and how long its backlog took to drain
    after the last submission. It keeps up when that backlog drains within 2 s."""
    ended = time.monotonic()
    last, last_at, deadline = _feed_stats(server), time.monotonic(), time.monotonic() + 120
    while time.monotonic() < deadline and time.monotonic() - last_at < 2.0:
        time.sleep(0.2)
        now = _feed_stats(server)
        if now != last:
            last, last_at = now, time.monotonic()
    delivered = last - start[0]
    rate = delivered / max(last_at - start[1], 1e-6)
    lag = max(0.0, last_at - ended)
    keeps_up = lag <= 2.0
    row = Row(
        "办件 feed during case submission",
        "mounted, 2 workers: records taken by the platform simulator (batched, signed, de-duplicated)",
        rate,
        "rec/s",
        errors=0 if delivered > 0 else 1,
    )
    note = (
        f"办件 feed: {delivered:,} records delivered, {rate:,.0f}/s over the submission window (submission peak "
        f"{submit_peak:,.0f}/s), backlog drained {lag:.1f} s after the last submission — "
        + ("keeps up" if keeps_up else "does NOT keep up")
    )
    return row, note


def run(ctx: Context) -> list[Row]:
    server, setup = setup_for(ctx, "mounted-2w")
    bearer = setup.citizen.bearer
    ctx.progress("affairs: authorising, one photo, 10,000 offices")
    prepared = prepare(server, bearer)
    body = json.dumps(prepared, ensure_ascii=False)
    _cases(server, bearer, body, 40)
    n_offices = _offices(server)
    rows: list[Row] = []
    octet, js = "application/octet-stream", "application/json"

    ctx.progress("affairs: 1 MB attachment upload")
    peak, at = _measure(ctx, server, "/bff/v1/affairs/attachments", FORM_RATE, bodies=[ATTACHMENT], cycle=True,
                        content_type=octet, headers=(bearer,), expect_status=201)  # fmt: skip
    rows.append(
        load_row(
            "Affairs form: 1 MB attachment",
            "mounted, 2 workers `POST /bff/v1/affairs/attachments`",
            peak,
            at,
            FORM_RATE,
        )
    )
    notes = [_verdict("attachment", at, FORM_RATE, TARGET_FORM_P99)]

    ctx.progress("affairs: my cases")
    peak, at = _measure(ctx, server, "/bff/v1/affairs/cases?limit=20", FORM_RATE, headers=(bearer,))
    rows.append(
        load_row("Affairs: my cases (20 a page)", "mounted, 2 workers `GET /bff/v1/affairs/cases`", peak, at, FORM_RATE)
    )
    notes.append(_verdict("my cases", at, FORM_RATE, TARGET_FORM_P99))

    ctx.progress(f"affairs: nearby offices over {n_offices:,}")
    peak, at = _measure(ctx, server, MAP_PATH, MAP_RATE)
    rows.append(
        load_row(
            f"Police map: nearby over {n_offices:,} offices",
            "mounted, 2 workers `GET /bff/v1/affairs/offices/nearby`",
            peak,
            at,
            MAP_RATE,
        )
    )
    notes.append(_verdict("nearby", at, MAP_RATE, TARGET_MAP_P99))
    ctx.progress("affairs: case submission (delivered to the business-system simulator over HTTP)")
    feed_start = _feed_mark(server)
    peak, at = _measure(ctx, server, "/bff/v1/affairs/cases", FORM_RATE, body=body, content_type=js,
                        headers=(bearer,), expect_status=201)  # fmt: skip
    rows.append(
        load_row("Affairs form: submit case", "mounted, 2 workers `POST /bff/v1/affairs/cases`", peak, at, FORM_RATE)
    )
    notes.append(_verdict("submit", at, FORM_RATE, TARGET_FORM_P99))
    feed_row, feed_note = _feed_row(server, feed_start, peak.throughput)
    rows.append(feed_row)
    notes.append(feed_note)

    ctx.progress("affairs: whole form submissions (1 MB photo upload + the case), mixed")
    flow = _form_flow(server, bearer, prepared)
    peak, at = _measure(ctx, server, "/bff/v1/affairs/attachments+cases", FORM_RATE, requests=flow, cycle=True,
                        headers=(bearer,), expect_status=201)  # fmt: skip
    rows.append(
        load_row(
            "Affairs form: upload 1 MB + submit, mixed",
            "mounted, 2 workers, requests alternate `POST …/attachments` (1 MB PNG) and `POST …/cases`",
            peak,
            at,
            FORM_RATE,
        )
    )
    notes.append(
        _verdict("upload + submit mixed", at, FORM_RATE, TARGET_FORM_P99)
        + f" ({peak.throughput / 2:,.0f} whole submissions/s at peak, {FORM_RATE / 2:,.0f}/s at the offered rate)"
    )

    ctx.note(
        "Affairs (issue #6) targets — " + "; ".join(notes) + ". One enrolled citizen (acr wz+face); "
        f"submissions of {APP} reference one photo uploaded before; nearby: 3 km around Suzhou centre, 20 nearest."
    )
    return rows
