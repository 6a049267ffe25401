"""`szt`: serve, sim, worker, run (everything), migrate, seed, openapi export, audit verify."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.boot import prepare, serve_target, with_embedded
from core.observe import setup_logging
from core.settings import export, load_settings


def cmd_serve(args: argparse.Namespace) -> None:
    settings, embedded = with_embedded(load_settings())
    if not args.no_migrate:
        asyncio.run(prepare(settings))
    export(serve_apps=",".join(args.names))  # for the app factory in granian's worker processes
    try:
        serve_target("core.server:server_from_env", settings, args.port or settings.port)
    finally:
        embedded.stop()


def cmd_sim(args: argparse.Namespace) -> None:
    """The simulators on SZT_SIM_PORT and, as its own process, the signing server on SZT_SIGNER_PORT."""
    settings = load_settings()
    procs = [
        _spawn([sys.executable, "-m", "szt.cli", "sim-only", "simulators"]),
        _spawn([sys.executable, "-m", "szt.cli", "sim-only", "signer"]),
    ]
    _wait_children(procs, f"simulators {settings.simulators_url}, signer {settings.signing_server_url}")


def cmd_sim_only(args: argparse.Namespace) -> None:
    settings = load_settings()
    if args.which == "signer":
        serve_target("simulators.signer:create_signer", settings, settings.signer_port)
    else:
        serve_target("simulators.app:create_simulators", settings, settings.sim_port)


def cmd_worker(args: argparse.Namespace) -> None:
    from core.worker import run_worker

    settings, embedded = with_embedded(load_settings())
    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()


def cmd_migrate(args: argparse.Namespace) -> None:
    settings, embedded = with_embedded(load_settings())
    try:
        asyncio.run(prepare(settings, seed=not args.no_seed))
    finally:
        embedded.stop()


def cmd_run(args: argparse.Namespace) -> None:
    """Everything a newcomer wants: embedded databases, migrations, seed, server, simulators, worker."""
    settings, embedded = with_embedded(load_settings())
    try:
        asyncio.run(prepare(settings))
        me = [sys.executable, "-m", "szt.cli"]
        procs = [
            _spawn([*me, "sim-only", "simulators"]),
            _spawn([*me, "sim-only", "signer"]),
            _spawn([*me, "serve", "--no-migrate"]),
            _spawn([*me, "worker"]),
        ]
        base = settings.base_url
        banner = "\n".join(
            [
                "",
                "苏证通 backends are starting:",
                f"  landing page      {base}/",
                f"  OpenID provider   {settings.issuer_url}/.well-known/openid-configuration",
                f"  admin console     {base}/admin/console",
                f"  metrics           {base}/metrics",
                f"  simulators        {settings.simulators_url}/",
                f"  signing server    {settings.signing_server_url}/healthz",
                f"  data              {settings.var_path}",
                "Ctrl-C stops everything; data stays in var/.",
                "",
            ]
        )
        _wait_children(procs, banner)
    finally:
        embedded.stop()


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    """A child in its own process group: a terminal's Ctrl-C reaches only us, and we stop each child once (a
    granian server that gets SIGINT twice exits at once and leaves its workers behind)."""
    return subprocess.Popen(args, start_new_session=True)


def _wait_children(procs: list[subprocess.Popen[bytes]], banner: str) -> None:
    print(banner, flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.3)
    except KeyboardInterrupt:
        pass
    # Shutting down: a second Ctrl-C (or a signal forwarded by a wrapper) must not leave children orphaned.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # one signal each; children have their own process groups
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # the child and its server workers
            p.wait()
    failed = [p.args for p in procs if p.returncode not in (0, -2, -15, 130, None)]
    if failed and not stopping:
        print(f"stopped because a child exited: {failed}", file=sys.stderr)


def cmd_openapi(args: argparse.Namespace) -> None:
    from szt.openapi_export import export

    changed = export(Path(args.out), check=args.check)
    if args.check and changed:
        print("OpenAPI documents differ from the code: " + ", ".join(changed), file=sys.stderr)
        raise SystemExit(1)
    print("\n".join(f"wrote {c}" for c in changed) or "up to date")


def cmd_audit(args: argparse.Namespace) -> None:
    """Verify every hash-chained log: the audit log and the operation log (archive and online)."""
    import orgs.logs  # noqa: F401  (registers the operation log's chain)
    from core.audit import CHAINS
    from core.db import create_pool

    async def go() -> int:
        settings, embedded = with_embedded(load_settings())
        pool = await create_pool(settings.database_url, max_size=1)
        found = 0
        try:
            for name, chain in CHAINS.items():
                findings = await chain.verify(pool)
                for f in findings:
                    print(f"{name} row seq={f.seq}: {f.problem}")
                print(f"{name} chain intact" if not findings else f"{name}: {len(findings)} finding(s)")
                found += len(findings)
        finally:
            await pool.close()
            embedded.stop()
        return 1 if found else 0

    raise SystemExit(asyncio.run(go()))


def cmd_clients(args: argparse.Namespace) -> None:
    """Register a relying party until app access management issues them on approval."""
    from core.resources import Resources
    from identity.facade import clients

    async def go() -> None:
        settings, embedded = with_embedded(load_settings())
        await prepare(settings, seed=False)
        res = await Resources.open(settings)
        try:
            made = await clients.create(
                res,
                client_id=args.client_id,
                name=args.name,
                kind=args.kind,
                zone=args.zone,
                redirect_uris=args.redirect_uri,
                entitlements=args.entitlement,
            )
        finally:
            await res.close()
            embedded.stop()
        print(f"client_id     {made.client.client_id}")
        print(f"client_secret {made.client_secret}   (shown once; store it now)")

    asyncio.run(go())


def cmd_keys(args: argparse.Namespace) -> None:
    """Rotate the issuer's SM2 key: new credentials, codes and SM2 tokens use the new one; the old one stays
    published (verifiers keep working) until retired."""
    from core.resources import Resources
    from identity.facade import keys

    async def go() -> None:
        settings, embedded = with_embedded(load_settings())
        await prepare(settings, seed=False)
        res = await Resources.open(settings)
        try:
            if args.action == "rotate":
                print(f"new current key {await keys.create_key(res)} (servers pick it up within 30 s)")
            else:
                await keys.retire_key(res, args.kid)
                print(f"retired {args.kid}")
        finally:
            await res.close()
            embedded.stop()

    asyncio.run(go())


def cmd_eseal(args: argparse.Namespace) -> None:
    from eseal.cli import main as eseal_main

    eseal_main(args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="szt", description="苏证通 backends")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve", help="front doors and domain APIs on one port (all by default)")
    p.add_argument("names", nargs="*", help="bff mini identity admin eseal affairs push")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--no-migrate", action="store_true")
    p.set_defaults(fn=cmd_serve)
    sub.add_parser("sim", help="simulators (8100) and signing server (8200)").set_defaults(fn=cmd_sim)
    p = sub.add_parser("sim-only", help=argparse.SUPPRESS)
    p.add_argument("which", choices=["simulators", "signer"])
    p.set_defaults(fn=cmd_sim_only)
    sub.add_parser("worker", help="push delivery and scheduled jobs").set_defaults(fn=cmd_worker)
    p = sub.add_parser("migrate", help="apply migrations and seed")
    p.add_argument("--no-seed", action="store_true")
    p.set_defaults(fn=cmd_migrate)
    sub.add_parser("run", help="everything, on embedded PostgreSQL and Redis").set_defaults(fn=cmd_run)
    p = sub.add_parser("openapi", help="export OpenAPI documents")
    p.add_argument("action", choices=["export"])
    p.add_argument("--out", default="openapi")
    p.add_argument("--check", action="store_true", help="fail if the committed documents differ")
    p.set_defaults(fn=cmd_openapi)
    p = sub.add_parser("audit", help="hash-chained logs (audit, operation log): verify")
    p.add_argument("action", choices=["verify"])
    p.set_defaults(fn=cmd_audit)
    p = sub.add_parser("clients", help="relying parties")
    p.add_argument("action", choices=["create"])
    p.add_argument("client_id")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", choices=["app", "portal", "verifier", "business"], required=True)
    p.add_argument("--zone", choices=["internet", "government", "police"], default="internet")
    p.add_argument("--redirect-uri", action="append", default=[])
    p.add_argument(
        "--entitlement",
        action="append",
        default=[],
        help="age_band over_18 gender name_masked name id_number_masked id_number phone",
    )
    p.set_defaults(fn=cmd_clients)
    p = sub.add_parser("eseal", help="electronic seals: legacy import")
    p.add_argument("action", choices=["import"])
    p.add_argument("directory", help="folder with seals.csv and the images it names")
    p.set_defaults(fn=cmd_eseal)
    p = sub.add_parser("keys", help="issuer signing keys")
    p.add_argument("action", choices=["rotate", "retire"])
    p.add_argument("kid", nargs="?", default="")
    p.set_defaults(fn=cmd_keys)
    args = parser.parse_args(argv)
    setup_logging(load_settings().log_level)
    args.fn(args)


if __name__ == "__main__":
    main()
