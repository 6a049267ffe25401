"""What a scenario gets: the run's options, servers started on demand (stopped at the end), the load generator."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.servers import ROOT, SERVERS, Server


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x * 1000:.2f}"


def _us(x: float | None) -> str:
    return "–" if x is None else f"{x * 1e6:.0f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


@dataclass(frozen=True)
class Options:
    quick: bool = False

    @property
    def warmup(self) -> float:
        """Seconds of load before each load-generator measurement."""
        return 0.5 if self.quick else 1.0

    @property
    def rounds(self) -> int:
        """HTTP runs per implementation, interleaved with the peer's so that drift and noise hit both alike."""
        return 2 if self.quick else 4

    @property
    def duration(self) -> float:
        """Measured seconds per load-generator run (total per implementation: rounds x duration)."""
        return 1.0 if self.quick else 2.0

    @property
    def connections(self) -> int:
        return 64

    @property
    def api_rounds(self) -> int:
        """Runs per implementation and mode in the API scenarios (identity codes, OIDC), which cost more set-up."""
        return 1 if self.quick else 2

    @property
    def cpu_seconds(self) -> float:
        """In-process micro-benchmarks: measured seconds per operation and implementation."""
        return 0.5 if self.quick else 2.0


@dataclass
class Context:
    options: Options
    notes: list[str] = field(default_factory=list)
    # results and set-up shared between scenarios (e.g. the SM2 rates, an enrolled citizen per server)
    data: dict[str, Any] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _servers: dict[str, Server] = field(default_factory=dict)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._servers:
            self.progress("stopping servers")
        self._stack.close()

    def progress(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A line printed under the table."""
        if message not in self.notes:
            self.notes.append(message)

    def server(self, name: str) -> Server:
        """A running server from bench.servers.SERVERS, started on first use and shared by later scenarios."""
        if name not in self._servers:
            self.progress(f"starting {name} server")
            t0 = time.monotonic()
            self._servers[name] = self._stack.enter_context(SERVERS[name]())
            self.progress(f"{name} server up on port {self._servers[name].port} in {time.monotonic() - t0:.1f} s")
        return self._servers[name]

    def loadgen(
        self,
        server: Server,
        path: str,
        *,
        rate: float | None = None,
        headers: tuple[str, ...] = (),
        duration: float | None = None,
        method: str | None = None,
        body: str | None = None,
        bodies: list[str] | None = None,
        requests: list[dict[str, Any]] | None = None,
        cycle: bool = False,
        content_type: str | None = None,
        expect_status: int = 200,
        keep_bodies: bool = False,
        connections: int | None = None,
    ) -> dict[str, Any]:
        """One run of bench.loadgen in its own process: closed loop, or open loop when `rate` is given.

        `bodies`: one request body each, used once in order (or round robin with `cycle`); `requests`: whole
        requests (method, path, content_type, body) mixed the same way, `path` then only names the row;
        `keep_bodies`: the successful answers' bodies come back in result["bodies"].
        """
        o = self.options
        duration = o.duration if duration is None else duration
        argv = [sys.executable, "-m", "bench.loadgen", "open" if rate else "closed", "--port", str(server.port)]
        argv += ["--path", path, "--connections", str(connections or o.connections), "--samples"]
        argv += ["--warmup", str(o.warmup), "--duration", str(duration), "--expect-status", str(expect_status)]
        if rate:
            argv += ["--rate", str(rate)]
        for h in headers:
            argv += ["--header", h]
        if method:
            argv += ["--method", method]
        if body is not None:
            argv += ["--body", body]
        if content_type:
            argv += ["--content-type", content_type]
        tmp = Path(tempfile.mkdtemp(prefix="szt-bench-lg-"))
        self._stack.callback(shutil.rmtree, tmp, True)
        if bodies is not None:
            (tmp / "bodies").write_text("".join(b + "\n" for b in bodies))
            argv += ["--bodies", str(tmp / "bodies"), "--cycle" if cycle else "--consume"]
        if requests is not None:
            (tmp / "requests").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests))
            argv += ["--requests", str(tmp / "requests"), "--cycle" if cycle else "--consume"]
        if keep_bodies:
            argv += ["--keep-bodies", str(tmp / "kept")]
        cpu0 = server.cpu_seconds()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=o.warmup + duration + 60, check=False)
        cpu = server.cpu_seconds() - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout)
        if keep_bodies:
            result["bodies"] = (tmp / "kept").read_text().splitlines()
        shutil.rmtree(tmp, ignore_errors=True)
        # The server's CPU over the whole generator run (warm-up included) per request answered in that time.
        done = result["completed_all_phases"]
        result["server_cpu_per_request"] = cpu / done if done else None
        lat = result["latency"]
        self.progress(
            f"  {result['throughput']:,.0f} req/s, p50 {_ms(lat['p50'])} p99 {_ms(lat['p99'])} ms, "
            f"server CPU {_us(result['server_cpu_per_request'])} µs/req, generator CPU {_pct(result['cpu'])}"
            + (f", errors {result['errors']}" if result["errors"] else "")
            + (" (request list ran out: window shortened)" if result.get("exhausted") else "")
        )
        for sample in result.get("sample_errors") or ():
            self.progress(f"  unexpected answer {sample}")
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} died during the run:\n{server.tail()}")
        return result
