"""Identity codes (issue #3) on the mounted server (2 workers): issue and verify, peak and latency at 500/s, next to
the raw SM2 sign and verify rate of core.crypto on one core (the peer rows: no HTTP, no storage).

A code verifies once, so the verify runs consume a pool of codes: those the issue runs made (the load generator
keeps every answer), topped up by bench.mint_identity_codes (the server's own issue_code in a helper process, not
measured) when the next verify run needs more than the issue runs made.
"""

from __future__ import annotations

import json
from typing import Any

from bench import crypto_sm2
from bench.context import Context
from bench.fixtures import Setup, mint_identity_codes, setup_for
from bench.http_healthz import Merged, load_row, merge
from bench.report import Row
from bench.servers import Server

ISSUE_PATH = "/bff/v1/identity-codes"
VERIFY_PATH = "/identity/v1/codes/verify"
ISSUE_BODY = '{"ttl_seconds":300}'  # the longest the API allows: the pool must outlive the scenario
RATE = 500.0  # the issue's offered load, requests per second, for both
TARGET_RATIO = 0.50  # verify peak / raw SM2 verify of one core
TARGET_P99 = 0.050  # seconds, verify at RATE
JSON = "application/json"


class Pool:
    """Issued code payloads, oldest first; the verify runs take from the front."""

    def __init__(self, ctx: Context, server: Server, setup: Setup) -> None:
        self.ctx, self.server, self.setup = ctx, server, setup
        self.codes: list[str] = []
        self.minted = 0  # codes that came from bench.mint_identity_codes rather than from the issue runs

    def issue(self, *, rate: float | None = None) -> dict[str, Any]:
        """One issue run (measured); every code it made joins the pool."""
        result = self.ctx.loadgen(
            self.server,
            ISSUE_PATH,
            rate=rate,
            body=ISSUE_BODY,
            content_type=JSON,
            headers=(self.setup.citizen.bearer,),
            expect_status=201,
            keep_bodies=True,
        )
        self.codes += [json.loads(b)["payload"] for b in result.pop("bodies")]
        return result

    def take(self, needed: int) -> list[str]:
        short = needed - len(self.codes)
        if short > 0:
            self.ctx.progress(f"  {short:,} more codes for the pool (bench.mint_identity_codes, not measured)")
            self.codes += mint_identity_codes(self.server, self.setup.citizen, short)
            self.minted += short
        taken, self.codes = self.codes[:needed], self.codes[needed:]
        return taken


def sm2_rates(ctx: Context) -> dict[str, float]:
    if "sm2.sign" not in ctx.data or "sm2.verify" not in ctx.data:
        ctx.progress("measuring raw SM2 sign / verify (the crypto scenario did not run)")
        for op, rate in crypto_sm2.core_rates(0.5).items():
            ctx.data[f"sm2.{op}"] = rate
    return {"sign": ctx.data["sm2.sign"], "verify": ctx.data["sm2.verify"]}


def _row(scenario: str, subject: str, peak: Merged, at_rate: Merged | None, raw: float) -> Row:
    notes = [] if at_rate is not None else [f"not run at {RATE:,.0f}/s: the peak is lower"]
    return load_row(scenario, subject, peak, at_rate, RATE, vs_peer=peak.throughput / raw, notes=notes)


def run(ctx: Context) -> list[Row]:
    server, setup = setup_for(ctx, "mounted-2w")
    raw = sm2_rates(ctx)
    o = ctx.options
    rounds, span = o.api_rounds, o.warmup + o.duration
    pool = Pool(ctx, server, setup)

    issue_peak, issue_rate = [], []
    for i in range(rounds):
        ctx.progress(f"identity code issue peak, round {i + 1}/{rounds}")
        issue_peak.append(pool.issue())
    # Offered more than it can answer, a server's queue (and so the latency) only grows with the run's length:
    # then there is no latency at that rate to report.
    issue_sustains = merge(issue_peak).throughput >= RATE
    for i in range(rounds if issue_sustains else 0):
        ctx.progress(f"identity code issue at {RATE:,.0f}/s, round {i + 1}/{rounds}")
        issue_rate.append(pool.issue(rate=RATE))

    def verify(codes: list[str], rate: float | None = None) -> dict[str, Any]:
        bodies = [json.dumps({"code": c}) for c in codes]
        auth = (setup.basic("verifier-bench"),)
        result = ctx.loadgen(server, VERIFY_PATH, rate=rate, bodies=bodies, content_type=JSON, headers=auth)
        pool.codes[:0] = codes[result["requests_used"] :]  # never sent: still good for the next run
        return result

    verify_peak: list[dict[str, Any]] = []
    verify_rate: list[dict[str, Any]] = []
    # Enough codes for the first closed run at 70 % of one core's raw verify rate (if it is faster, its window
    # ends when the codes do); later runs are sized by the first.
    estimate = 0.7 * raw["verify"]
    for i in range(rounds):
        codes = pool.take(int(1.2 * estimate * span) + 200)
        ctx.progress(f"identity code verify peak, round {i + 1}/{rounds} ({len(codes):,} codes)")
        verify_peak.append(verify(codes))
        estimate = merge(verify_peak).throughput
    for i in range(rounds):
        codes = pool.take(int(RATE * span * 1.05) + 50)
        ctx.progress(f"identity code verify at {RATE:,.0f}/s, round {i + 1}/{rounds}")
        verify_rate.append(verify(codes, RATE))

    ip, vp, vr = merge(issue_peak), merge(verify_peak), merge(verify_rate)
    ir = merge(issue_rate) if issue_rate else None
    rows = [
        Row("Identity code issue", "raw SM2 sign, core.crypto, 1 thread (peer)", raw["sign"], "sign/s", peer=True),
        _row("Identity code issue", f"mounted server, 2 workers `POST {ISSUE_PATH}`", ip, ir, raw["sign"]),
        Row(
            "Identity code verify", "raw SM2 verify, core.crypto, 1 thread (peer)", raw["verify"], "verify/s", peer=True
        ),
        _row("Identity code verify", f"mounted server, 2 workers `POST {VERIFY_PATH}`", vp, vr, raw["verify"]),
    ]
    ratio = vp.throughput / raw["verify"]
    p99 = vr.latency.p99
    ctx.note(
        f"Identity codes (issue #3) targets: verify peak ≥ {TARGET_RATIO:.0%} of raw SM2 verify on one core: "
        f"{ratio:.0%}, {'met' if ratio >= TARGET_RATIO else 'NOT met'}; verify p99 ≤ {TARGET_P99 * 1000:.0f} ms at "
        f"{RATE:,.0f}/s: "
        + ("not measured" if p99 is None else f"{p99 * 1000:.1f} ms, {'met' if p99 <= TARGET_P99 else 'NOT met'}")
        + f". Issue peak is {ip.throughput / raw['sign']:.0%} of raw SM2 sign"
        + (
            "."
            if ir is not None
            else f", and below the offered {RATE:,.0f}/s, so issue was not run at that rate (a server offered more "
            "than it answers has a queue, and so a latency, that only grows with the length of the run)."
        )
    )
    short = [r for r in verify_peak if r.get("exhausted")]
    ctx.note(
        "Identity codes: mounted server, 2 workers (SZT_WORKERS=2, the machine's two cores, as for the OIDC "
        "rows); one enrolled citizen (SMS + face via the simulators, SM2 device "
        f"key, acr wz+face) issues `{ISSUE_BODY}` with its bearer token; verifier `verifier-bench` "
        "(client_secret_basic, entitled to age_band and over_18) verifies each code once, taken from the pool the "
        "issue runs made; "
        f"{rounds} × ({o.warmup:g} s warm-up + {o.duration:g} s) per mode, {o.connections} connections; "
        "“vs peer” of these rows = peak / raw core.crypto SM2 rate on one thread"
        + (f"; {len(short)} verify run(s) ran out of codes and were measured over a shorter window" if short else "")
        + (
            f"; {pool.minted:,} of the codes verified were made by bench.mint_identity_codes (the server's own "
            "issue_code called in a helper process, without the QR version) because the issue runs made too few."
            if pool.minted
            else "."
        )
    )
    return rows
