"""The registry: every scenario is a function `run(ctx) -> list[Row]`; add new ones to SCENARIOS.

A scenario measures our implementation next to a peer (another implementation, or the library's own raw speed) in
the same run and marks the peer's row `peer=True`. HTTP scenarios get running servers from `ctx.server(name)`
(see bench.servers.SERVERS; a server is started once and shared) and load from `ctx.loadgen(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import crypto_sm2, eseal_bench, http_healthz, identity_codes, oidc
from bench.context import Context
from bench.report import Row


@dataclass(frozen=True)
class Scenario:
    group: str  # selectable with --only
    name: str
    run: Callable[[Context], list[Row]]


SCENARIOS: list[Scenario] = [
    Scenario("http", "GET healthz: mounted server vs bare Litestar", http_healthz.run),
    Scenario("crypto", "SM2 sign / verify: core.crypto vs tongsuopy", crypto_sm2.run),
    Scenario("identity", "identity codes: issue / verify vs raw SM2", identity_codes.run),
    Scenario("oidc", "OIDC token endpoint and introspection: mounted (2 workers) vs oidc-provider", oidc.run),
    Scenario("eseal", "electronic seals: making, sealing, verification, big PDF, log search, import", eseal_bench.run),
]


def groups() -> list[str]:
    return sorted({s.group for s in SCENARIOS})
