"""Test harness: embedded PostgreSQL and Redis once per run, and the real servers as subprocesses on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not up in {timeout} s:\n{log.read_text()[-4000:]}")


def inside_one_window(per_seconds: int, need: float = 15.0, offset: int = 0) -> None:
    """Wait for the next fixed window when less than `need` seconds are left of this one, so a test that counts
    requests up to a rate limit (or works with "today") stays in one window. `offset`: seconds east of UTC for
    windows aligned to local days."""
    left = per_seconds - (time.time() + offset) % per_seconds
    if left < need:
        time.sleep(left + 0.05)


class Stack:
    """Simulators, signing server and the combined server, started from this process's environment."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.port, self.sim_port, self.signer_port = free_port(), free_port(), free_port()
        # Where a test's own stand-in of an outside party (an app entry, a back-channel logout receiver) listens.
        self.peer_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "SZT_PORT": str(self.port),
            "SZT_SIM_PORT": str(self.sim_port),
            "SZT_SIGNER_PORT": str(self.signer_port),
            "SZT_VAR_DIR": str(var_dir),
            "SZT_LOG_LEVEL": "DEBUG",  # every access-log line too: tests check that no secret reaches the logs
            "SZT_OIDC_RATE_PER_CLIENT": "60",
            "SZT_OIDC_RATE_PER_IP": "1500",
            "SZT_SMS_RATE_PER_IP": "1000",  # every test citizen enrols from 127.0.0.1
            "SZT_ENROL_RATE_PER_IP": "1000",
            # The outbound guard (core.outbound) refuses loopback: admit exactly the simulators, the signing server
            # and the tests' peer port, over plain http, and nothing else on 127.0.0.1.
            "SZT_OUTBOUND_ALLOW": ",".join(f"127.0.0.1:{p}" for p in (self.sim_port, self.signer_port, self.peer_port)),
            "SZT_OUTBOUND_HTTP": "1",
        }
        os.environ.update(
            {
                k: self.env[k]
                for k in (
                    "SZT_PORT",
                    "SZT_SIM_PORT",
                    "SZT_SIGNER_PORT",
                    "SZT_OIDC_RATE_PER_CLIENT",
                    "SZT_OIDC_RATE_PER_IP",
                    "SZT_OUTBOUND_ALLOW",
                    "SZT_OUTBOUND_HTTP",
                )
            }
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def signer_url(self) -> str:
        return f"http://127.0.0.1:{self.signer_port}"

    def _spawn(self, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.var_dir / f"{name}.log"
        out = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "szt.cli", *args],
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc, log

    def start(self) -> None:
        sim, sim_log = self._spawn("simulators", "sim-only", "simulators")
        signer, signer_log = self._spawn("signer", "sim-only", "signer")
        server, server_log = self._spawn("server", "serve", "--no-migrate")
        wait_http(f"{self.sim_url}/healthz", sim, sim_log)
        wait_http(f"{self.signer_url}/healthz", signer, signer_log)
        wait_http(f"{self.base_url}/healthz", server, server_log)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
