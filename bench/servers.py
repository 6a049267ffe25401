"""Servers under test, each a subprocess on 127.0.0.1 that is always stopped again, even when the bench fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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


@contextlib.contextmanager
def mounted_server() -> Iterator[Server]:
    """`szt serve` (all apps, granian, 1 worker) with embedded PostgreSQL and Redis in a fresh temporary var dir."""
    var_dir = Path(tempfile.mkdtemp(prefix="szt-bench-"))  # short: PostgreSQL and Redis put Unix sockets in it
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("SZT_")}
    env.update(
        SZT_VAR_DIR=str(var_dir),
        SZT_LOG_LEVEL="WARNING",
        SZT_HOST=HOST,
        SZT_SERVER="granian",
        SZT_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    argv = [sys.executable, "-m", "core.cli", "serve", "--port", str(port)]
    server = _spawn("mounted server", argv, port, env, var_dir / "server.log")
    try:
        _wait_up(server, "/healthz")
        yield server
    finally:
        _stop(server.proc)
        _reap_embedded(var_dir)
        shutil.rmtree(var_dir, ignore_errors=True)


@contextlib.contextmanager
def bare_server() -> Iterator[Server]:
    """bench.bare_app: one Litestar route, served by granian with the flags `szt serve` uses."""
    log_dir = Path(tempfile.mkdtemp(prefix="szt-bench-bare-"))
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "bench.bare_app", str(port)]
    server = _spawn("bare Litestar", argv, port, env, log_dir / "server.log")
    try:
        _wait_up(server, "/healthz")
        yield server
    finally:
        _stop(server.proc)
        shutil.rmtree(log_dir, ignore_errors=True)


# name -> context manager yielding a running server; scenarios ask the run's Context for them by name
SERVERS = {"mounted": mounted_server, "bare": bare_server}
