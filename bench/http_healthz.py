"""GET /healthz through the real combined server (`/bff/healthz`) next to a bare Litestar app on the same granian."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from bench.context import Context
from bench.report import Latency, Row
from bench.servers import Server

TARGET = 0.80  # the goal: the mounted server reaches at least 80 % of the bare app's peak


@dataclass
class Merged:
    throughput: float
    latency: Latency
    cpu: float | None
    errors: int
    release_lag_p99: float | None
    server_cpu: float | None  # seconds per request


def load_row(
    scenario: str,
    subject: str,
    peak: Merged,
    at_rate: Merged | None,
    offered_rate: float,
    *,
    peer: bool = False,
    vs_peer: float | None = None,
    notes: list[str] | None = None,
) -> Row:
    """The table row of one implementation measured under load: its peak run and its run at the offered rate."""
    return Row(
        scenario=scenario,
        subject=subject,
        peak=peak.throughput,
        unit="req/s",
        peak_latency=peak.latency,
        server_cpu=peak.server_cpu,
        offered_rate=offered_rate,
        rate_latency=None if at_rate is None else at_rate.latency,
        gen_cpu_peak=peak.cpu,
        gen_cpu_rate=None if at_rate is None else at_rate.cpu,
        peer=peer,
        vs_peer=vs_peer,
        errors=peak.errors + (0 if at_rate is None else at_rate.errors),
        notes=notes or [],
    )


def merge(runs: list[dict[str, Any]]) -> Merged:
    samples = [s for r in runs for s in r["samples_us"]]
    seconds = sum(r["duration"] for r in runs)
    cpus = [r["cpu"] for r in runs if r["cpu"] is not None]
    errors = sum(sum(r["errors"].values()) + r["unanswered"] for r in runs)
    lags = [r["release_lag"]["p99"] for r in runs if r.get("release_lag") and r["release_lag"]["p99"] is not None]
    server = [r["server_cpu_per_request"] for r in runs if r["server_cpu_per_request"] is not None]
    return Merged(
        throughput=len(samples) / seconds,
        latency=Latency.from_samples_us(samples),
        cpu=sum(cpus) / len(cpus) if cpus else None,
        errors=errors,
        release_lag_p99=max(lags) if lags else None,
        server_cpu=sum(server) / len(server) if server else None,
    )


def check_answer(server: Server, path: str) -> None:
    with urllib.request.urlopen(server.base_url + path, timeout=5) as resp:
        body = json.loads(resp.read())
    if body != {"status": "ok"}:
        raise RuntimeError(f"{server.name} {path} answered {body!r}")


def offered_rate(peer_peak: float) -> float:
    """Half the peer's peak, rounded to two significant digits, so the stated rate reads as a round number."""
    return float(f"{peer_peak * 0.5:.2g}")


def run(ctx: Context) -> list[Row]:
    subjects = [
        ("bare Litestar `/healthz` (peer)", ctx.server("bare"), "/healthz"),
        ("mounted server `/bff/healthz`", ctx.server("mounted"), "/bff/healthz"),
    ]
    for _, server, path in subjects:
        check_answer(server, path)
    o = ctx.options
    peak_runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in subjects}
    rate_runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in subjects}

    for i in range(o.rounds):
        for name, server, path in subjects if i % 2 == 0 else subjects[::-1]:
            ctx.progress(f"healthz peak, round {i + 1}/{o.rounds}: {name}")
            peak_runs[name].append(ctx.loadgen(server, path))
    peaks = {name: merge(runs) for name, runs in peak_runs.items()}
    peer_name = subjects[0][0]
    rate = offered_rate(peaks[peer_name].throughput)

    for i in range(o.rounds):
        for name, server, path in subjects if i % 2 == 0 else subjects[::-1]:
            ctx.progress(f"healthz at {rate:,.0f} req/s, round {i + 1}/{o.rounds}: {name}")
            rate_runs[name].append(ctx.loadgen(server, path, rate=rate))
    at_rate = {name: merge(runs) for name, runs in rate_runs.items()}

    rows = []
    peer_peak = peaks[peer_name].throughput
    for name, _, _ in subjects:
        p, r = peaks[name], at_rate[name]
        rows.append(
            load_row(
                "HTTP GET healthz",
                name,
                p,
                r,
                rate,
                peer=name == peer_name,
                vs_peer=p.throughput / peer_peak if peer_peak else None,
            )
        )
    ratio = rows[1].vs_peer or 0.0
    verdict = "met" if ratio >= TARGET else "NOT met"
    per_round = [m["throughput"] / b["throughput"] for b, m in zip(*peak_runs.values(), strict=True) if b["throughput"]]
    ctx.note(
        f"HTTP target (issue): mounted ≥ {TARGET:.0%} of bare peak: {ratio:.0%}, {verdict} "
        f"(per round: {', '.join(f'{r:.0%}' for r in per_round)})."
    )
    peer_cpu, ours_cpu = rows[0].server_cpu, rows[1].server_cpu
    if peer_cpu and ours_cpu:
        ctx.note(
            "HTTP server CPU per request (all server threads; less sensitive to other load on the machine): "
            f"mounted {ours_cpu * 1e6:.0f} µs, bare {peer_cpu * 1e6:.0f} µs: bare/mounted {peer_cpu / ours_cpu:.0%}."
        )
    for row in rows:
        if row.offered_rate and row.offered_rate > 0.9 * row.peak:
            ctx.note(
                f"HTTP: the offered rate is ≥ 90 % of the {row.subject} peak, so its latency at that rate is mostly "
                "queueing."
            )
    lags = [m.release_lag_p99 for m in at_rate.values() if m.release_lag_p99 is not None]
    ctx.note(
        "HTTP: granian, 1 worker, ASGI, same flags for both (core.boot.granian); load generator bench.loadgen in its "
        f"own process: Python asyncio streams, HTTP/1.1 keep-alive, no pipelining, {o.connections} connections; "
        f"{o.rounds} × ({o.warmup:g} s warm-up + {o.duration:g} s measured) per implementation, interleaved with the "
        "peer. Open loop: constant arrivals scheduled by the clock, latency from the scheduled send time "
        "(coordinated omission accounted)"
        + (f"; the generator released arrivals up to p99 {max(lags) * 1000:.2f} ms late." if lags else ".")
    )
    return rows
