"""Result rows and the one markdown table they make."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DASH = "–"


@dataclass
class Latency:
    """Percentiles in seconds; None where not measured."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def from_samples_us(cls, samples: list[int]) -> Latency:
        if not samples:
            return cls()
        s = sorted(samples)

        def rank(q: float) -> float:  # nearest-rank percentile
            return s[min(len(s) - 1, max(0, math.ceil(len(s) * q) - 1))] / 1e6

        return cls(rank(0.50), rank(0.90), rank(0.99), s[-1] / 1e6)


@dataclass
class Row:
    """One implementation in one scenario. The peer (reference) row of a scenario has `peer=True`."""

    scenario: str
    subject: str
    peak: float  # operations per second, closed loop
    unit: str  # "req/s", "sign/s", ...
    peak_latency: Latency | None = None  # p50 / p99 at peak
    server_cpu: float | None = None  # server CPU seconds per request at peak (all its processes and threads)
    offered_rate: float | None = None  # open loop
    rate_latency: Latency | None = None  # p50 / p90 / p99 / max at the offered rate
    gen_cpu_peak: float | None = None  # load generator CPU, fraction of one core
    gen_cpu_rate: float | None = None
    peer: bool = False
    vs_peer: float | None = None  # peak / peer's peak
    errors: int = 0
    notes: list[str] = field(default_factory=list)  # shown in the latency-at-rate cell when that was not measured


def _ms(x: float | None) -> str:
    if x is None:
        return DASH
    ms = x * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return DASH if x is None else f"{x * 100:.0f} %"


HEADER = [
    "Scenario",
    "Implementation",
    "Peak (closed loop)",
    "p50 / p99 at peak (ms)",
    "Server CPU per req",
    "Offered rate (open loop)",
    "p50 / p90 / p99 / max at rate (ms)",
    "Load-gen CPU peak / rate",
    "vs peer",
]


def cells(row: Row) -> list[str]:
    pl, rl = row.peak_latency, row.rate_latency
    peak = f"{_num(row.peak)} {row.unit}"
    if row.errors:
        peak += f" ({row.errors} errors)"
    cpu = DASH
    if row.gen_cpu_peak is not None or row.gen_cpu_rate is not None:
        cpu = f"{_pct(row.gen_cpu_peak)} / {_pct(row.gen_cpu_rate)}"
    return [
        row.scenario,
        row.subject,
        peak,
        DASH if pl is None else f"{_ms(pl.p50)} / {_ms(pl.p99)}",
        DASH if row.server_cpu is None else f"{row.server_cpu * 1e6:.0f} µs",
        DASH if row.offered_rate is None else f"{_num(row.offered_rate)} {row.unit}",
        (
            ("; ".join(row.notes) or DASH)
            if rl is None
            else " / ".join(_ms(v) for v in (rl.p50, rl.p90, rl.p99, rl.max))
        ),
        cpu,
        "peer" if row.peer else _pct(row.vs_peer),
    ]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)
