"""GET /bff/v1/home (warm layout cache) on the mounted server next to a bare Litestar endpoint returning a cached
body of the same bytes (bench.home_bare), in the same run: peak (closed loop) and latency at 1,000 req/s (open loop).

The request is the app's: `X-SZT-Client: ios/3.2.0`, the user's city 苏州 (`?city=320500`), not signed in — the
layout part is what the cache serves; signed-in requests add the personal parts (one Redis and one PostgreSQL
round trip) and are measured as a third row at peak.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.fixtures import setup_for
from bench.http_healthz import load_row, merge
from bench.report import Row
from bench.servers import Server, _spawn, _stop, _wait_up, free_port

PATH = "/bff/v1/home?city=320500"
CLIENT = "X-SZT-Client: ios/3.2.0"
RATE = 1000.0  # the offered load
TARGET_RATIO = 0.60
TARGET_P99 = 0.030
MAX_GZIP = 20 * 1024


def fetch(server: Server, headers: dict[str, str]) -> bytes:
    req = urllib.request.Request(server.base_url + PATH, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body: bytes = resp.read()
        return body


@contextlib.contextmanager
def bare_home(body: bytes) -> Iterator[Server]:
    from core.settings import child_environment

    work = Path(tempfile.mkdtemp(prefix="szt-bench-home-"))
    (work / "body.json").write_bytes(body)
    port = free_port()
    argv = [sys.executable, "-m", "bench.home_bare", str(port), str(work / "body.json")]
    server = _spawn(
        "bare Litestar home", argv, port, child_environment(extra={"PYTHONUNBUFFERED": "1"}), work / "server.log"
    )
    try:
        _wait_up(server, "/healthz")
        yield server
    finally:
        _stop(server.proc)
        shutil.rmtree(work, ignore_errors=True)


def run(ctx: Context) -> list[Row]:
    server, setup = setup_for(ctx, "mounted")
    body = fetch(server, {"X-SZT-Client": "ios/3.2.0"})  # also warms the layout cache
    zipped = len(gzip.compress(body))
    o = ctx.options
    with bare_home(body) as bare:
        if fetch(bare, {}) != body:
            raise RuntimeError("the bare home answers another body")
        subjects = [("bare Litestar, same cached body (peer)", bare), (f"mounted server `GET {PATH}`", server)]
        peak_runs: dict[str, list[dict[str, Any]]] = {n: [] for n, _ in subjects}
        rate_runs: dict[str, list[dict[str, Any]]] = {n: [] for n, _ in subjects}
        for i in range(o.rounds):
            for name, srv in subjects if i % 2 == 0 else subjects[::-1]:
                ctx.progress(f"home peak, round {i + 1}/{o.rounds}: {name}")
                peak_runs[name].append(ctx.loadgen(srv, PATH, headers=(CLIENT,)))
        for i in range(o.rounds):
            for name, srv in subjects if i % 2 == 0 else subjects[::-1]:
                ctx.progress(f"home at {RATE:,.0f} req/s, round {i + 1}/{o.rounds}: {name}")
                rate_runs[name].append(ctx.loadgen(srv, PATH, headers=(CLIENT,), rate=RATE))
    signed_in = [ctx.loadgen(server, PATH, headers=(CLIENT, setup.citizen.bearer)) for _ in range(o.api_rounds)]
    peer_name = subjects[0][0]
    peaks = {n: merge(r) for n, r in peak_runs.items()}
    rates = {n: merge(r) for n, r in rate_runs.items()}
    peer_peak = peaks[peer_name].throughput
    rows = [
        load_row(
            "Home screen (warm)",
            name,
            peaks[name],
            rates[name],
            RATE,
            peer=name == peer_name,
            vs_peer=peaks[name].throughput / peer_peak if peer_peak else None,
        )
        for name, _ in subjects
    ]
    si = merge(signed_in)
    rows.append(
        load_row(
            "Home screen (warm)",
            "mounted server, signed in (reminders + unread)",
            si,
            None,
            RATE,
            vs_peer=si.throughput / peer_peak if peer_peak else None,
            notes=["peak only"],
        )
    )
    ratio = rows[1].vs_peer or 0.0
    p99 = rates[subjects[1][0]].latency.p99
    ctx.note(
        f"Home (issue #7) targets: warm home peak ≥ {TARGET_RATIO:.0%} of the bare endpoint: {ratio:.0%}, "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}; p99 ≤ {TARGET_P99 * 1000:.0f} ms at {RATE:,.0f} req/s: "
        + ("not measured" if p99 is None else f"{p99 * 1000:.1f} ms, {'met' if p99 <= TARGET_P99 else 'NOT met'}")
        + f"; payload {len(body):,} bytes, {zipped:,} gzipped (limit {MAX_GZIP:,}: "
        + ("met" if zipped <= MAX_GZIP else "NOT met")
        + ")."
    )
    ctx.note(
        "Home: mounted server 1 worker (as the healthz rows) and the bare app on the same granian flags; "
        f"anonymous `{CLIENT}`; {o.rounds} × ({o.warmup:g} s warm-up + {o.duration:g} s) per implementation, "
        f"interleaved, {o.connections} connections; the signed-in row uses one enrolled citizen's bearer token."
    )
    return rows
