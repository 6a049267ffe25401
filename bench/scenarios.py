"""The registry: every scenario is a function `run(ctx) -> list[Row]`; add new ones to SCENARIOS.

A scenario measures our implementation next to a peer (another implementation, or the library's own raw speed) in
the same run and marks the peer's row `peer=True`. HTTP scenarios get running servers from `ctx.server(name)`
(see bench.servers.SERVERS; a server is started once and shared) and load from `ctx.loadgen(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import (
    admin_search,
    affairs,
    crypto_sm2,
    eseal_bench,
    eseal_ofd_bench,
    home,
    http_healthz,
    identity_codes,
    mini_alipay,
    oidc,
    push_broadcast,
)
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
    Scenario("home", "GET /bff/v1/home warm vs a bare endpoint with the same cached body", home.run),
    Scenario("affairs", "affairs: 1 MB attachment, case submission, my cases, nearby offices", affairs.run),
    Scenario("mini", "Alipay gateway RSA2: request signing and answer verification vs cryptography", mini_alipay.run),
    Scenario("oidc", "OIDC token endpoint and introspection: mounted (2 workers) vs oidc-provider", oidc.run),
    Scenario("push", "push: a broadcast end to end to the simulators vs raw Redis streams", push_broadcast.run),
    Scenario("admin", "admin: op-log search over 1,000,000 rows, statistics over 1,000,000 users", admin_search.run),
    Scenario("eseal", "electronic seals: making, sealing, verification, big PDF, log search, import", eseal_bench.run),
    Scenario(
        "eseal-ofd", "OFD sealing beside PDF and the raw SM2 primitive; 500 OFDs verified at once", eseal_ofd_bench.run
    ),
]


def groups() -> list[str]:
    return sorted({s.group for s in SCENARIOS})
