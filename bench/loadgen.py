"""HTTP/1.1 load generator, run as its own process: `python -m bench.loadgen closed|open ...`, prints one JSON object.

Raw asyncio streams, keep-alive, one request in flight per connection (no pipelining), Content-Length bodies only.

Requests: one fixed request (`--method`, `--path`, `--header`, `--body`), or one per line of `--bodies FILE`, each
sent once in file order (one-time codes: `--consume`) or round robin (`--cycle`), or a mix of different requests
from `--requests FILE` (one JSON object a line: `method`, `path`, `content_type`, `body` or `body_b64`; the same
`--consume`/`--cycle` rules and `--header`s), e.g. a form's upload and the submission that follows it. When a
consumed list runs out, a closed loop ends its measurement window there (the output's `duration` is the time
actually measured, and `exhausted` says so); an open loop counts the arrivals it could not send as errors.
`--keep-bodies FILE` writes the body of every successful answer (warm-up included), one a line.

* closed: every connection sends its next request as soon as the previous answer is read (peak throughput).
* open: requests are scheduled by the clock at a constant rate, whatever the server does; each is handed to the
  next free connection and its latency is measured from its *scheduled* time, so time spent waiting for a free
  connection counts (no coordinated omission, as in wrk2).

Only samples inside the measurement window (after the warm-up) count; the generator's own CPU use (user + sys over
wall time, `resource.getrusage`) is measured over the same window.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import resource
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MAX_CONNECTIONS = 1024
MAX_RATE = 200_000.0
MAX_SECONDS = 600.0
DRAIN_SECONDS = 10.0  # how long answers to requests already sent are awaited after the end of the window
MAX_BODY = 16 * 1024 * 1024


class ProtocolError(Exception):
    pass


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Window:
    """The measurement window on the perf_counter clock, and the CPU used by this process inside it."""

    start: float
    end: float
    cpu: float | None = None
    wall: float | None = None
    cut_short: asyncio.Event = field(default_factory=asyncio.Event)

    def cut(self, at: float) -> None:
        """End the window early (a consumed request list ran out)."""
        self.end = max(self.start, min(self.end, at))
        self.cut_short.set()

    async def measure_cpu(self) -> None:
        await asyncio.sleep(max(0.0, self.start - time.perf_counter()))
        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.cut_short.wait(), max(0.0, self.end - time.perf_counter()))
        self.cpu, self.wall = _cpu_seconds() - cpu0, time.perf_counter() - wall0


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    # open loop: how late the generator released each arrival (its own timer precision, not the server's doing)
    release_lags: list[float] = field(default_factory=list)
    completed: int = 0  # successful exchanges in all phases, warm-up included
    errors: dict[str, int] = field(default_factory=dict)
    sample_errors: list[str] = field(default_factory=list)  # the first few unexpected answers, for the log
    reconnects: int = 0
    exhausted: bool = False

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, read one Content-Length response; returns the status code and the body."""
        if self.writer is None:
            await self.open()
        reader, writer = self.reader, self.writer
        assert reader is not None and writer is not None
        writer.write(request)  # at most a few kB: never above the transport's high-water mark, no drain needed
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise ProtocolError("response head too large") from exc
        if not head.startswith(b"HTTP/1.1 "):
            raise ProtocolError(f"bad status line {head[:40]!r}")
        status = int(head[9:12])
        lower = head.lower()
        body = b""
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            length = int(lower[at + 17 : end])
            if not 0 <= length <= MAX_BODY:
                raise ProtocolError(f"content-length {length}")
            if length:
                body = await reader.readexactly(length)
        elif b"\r\ntransfer-encoding:" in lower:
            raise ProtocolError("chunked responses are not supported")
        elif not (100 <= status < 200 or status in (204, 304)):
            raise ProtocolError("response without Content-Length")
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body


def build_request(
    host: str, port: int, path: str, headers: list[str], *, method: str = "GET", body: bytes | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: szt-bench", *headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Requests:
    """Where each exchange's request comes from: always the same one, a list used once each, or a list in a ring."""

    def __init__(self, requests: list[bytes], *, consume: bool) -> None:
        if not requests:
            raise ValueError("no requests")
        self.requests, self.consume, self.next_index = requests, consume, 0

    def take(self) -> bytes | None:
        i = self.next_index
        self.next_index += 1
        if self.consume:
            return self.requests[i] if i < len(self.requests) else None
        return self.requests[i % len(self.requests)]

    @property
    def used(self) -> int:
        return min(self.next_index, len(self.requests)) if self.consume else self.next_index


@dataclass
class Expect:
    status: int = 200
    keep: list[bytes] | None = None  # bodies of successful answers, when asked for


async def _one(conn: Connection, request: bytes, stats: Stats, expect: Expect) -> bool:
    """One exchange; on failure the error is counted and the connection dropped (reopened on next use)."""
    try:
        status, body = await conn.exchange(request)
    except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError) as exc:
        stats.error(type(exc).__name__)
        stats.reconnects += 1
        conn.close()
        await asyncio.sleep(0.01)  # a refusing server must not turn this into a busy loop
        return False
    if status != expect.status:
        stats.error(f"status {status}")
        if len(stats.sample_errors) < 3:
            stats.sample_errors.append(f"{status}: {body[:300].decode(errors='replace')}")
        return False
    if expect.keep is not None:
        expect.keep.append(body)
    return True


async def run_closed(conns: list[Connection], source: Requests, window: Window, stats: Stats, expect: Expect) -> int:
    """Every connection in a loop until window.end; returns how many requests were still unanswered after a grace.

    A consumed list that runs out ends the window early (window.end moves to that moment).
    """

    async def worker(conn: Connection) -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= window.end:
                return
            request = source.take()
            if request is None:
                window.cut(t0)
                stats.exhausted = True
                return
            ok = await _one(conn, request, stats, expect)
            t1 = time.perf_counter()
            stats.completed += ok
            if ok and window.start <= t1 < window.end:
                stats.latencies.append(t1 - t0)

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    _, late = await asyncio.wait(tasks, timeout=window.end - time.perf_counter() + DRAIN_SECONDS)
    for t in late:
        t.cancel()
    return len(late)


async def run_open(
    conns: list[Connection], source: Requests, window: Window, rate: float, stats: Stats, expect: Expect
) -> int:
    """Constant arrivals from now (warm-up) to window.end; returns how many were never answered."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    total = int((window.end - t0) * rate)
    pending: deque[float] = deque()  # scheduled times not yet taken by a connection
    idle: deque[asyncio.Future[float | None]] = deque()  # connections waiting for work, first idle first served
    answered = 0
    scheduling_done = False
    settled = asyncio.Event()  # all arrivals scheduled and every connection idle again

    async def worker(conn: Connection) -> None:
        nonlocal answered
        while True:
            if pending:
                scheduled: float | None = pending.popleft()
            else:
                fut: asyncio.Future[float | None] = loop.create_future()
                idle.append(fut)
                if scheduling_done and len(idle) == len(conns):
                    settled.set()
                scheduled = await fut
            if scheduled is None:
                return
            request = source.take()
            if request is None:
                stats.error("requests exhausted")
                stats.exhausted = True
                answered += 1
                continue
            ok = await _one(conn, request, stats, expect)
            answered += 1
            stats.completed += ok
            if ok and window.start <= scheduled < window.end:
                stats.latencies.append(time.perf_counter() - scheduled)

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    i = 0
    while i < total:
        now = time.perf_counter()
        due = t0 + i / rate
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while i < total and due <= now:
            if window.start <= due < window.end:
                stats.release_lags.append(now - due)
            if idle:
                idle.popleft().set_result(due)
            else:
                pending.append(due)
            i += 1
            due = t0 + i / rate
    scheduling_done = True
    if not pending and len(idle) == len(conns):
        settled.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(settled.wait(), DRAIN_SECONDS)
    while idle:
        idle.popleft().set_result(None)
    _, late = await asyncio.wait(tasks, timeout=1.0)
    for t in late:
        t.cancel()
    return total - answered


def percentiles(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p90": None, "p99": None, "p999": None, "max": None}
    s = sorted(samples)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "p999": rank(0.999), "max": s[-1]}


def _build_spec(args: argparse.Namespace, headers: list[str], spec: dict[str, Any]) -> bytes:
    if spec.get("content_type"):
        headers = [*headers, f"Content-Type: {spec['content_type']}"]
    data = base64.b64decode(spec["body_b64"]) if "body_b64" in spec else None  # binary bodies (an image)
    if data is None and spec.get("body") is not None:
        data = spec["body"].encode()
    method = spec.get("method") or ("GET" if data is None else "POST")
    return build_request(args.host, args.port, spec["path"], headers, method=method, body=data)


def load_requests(args: argparse.Namespace) -> Requests:
    headers = list(args.header)
    if args.content_type:
        headers.append(f"Content-Type: {args.content_type}")
    method = args.method or ("POST" if args.body is not None or args.bodies else "GET")

    def build(body: bytes | None) -> bytes:
        return build_request(args.host, args.port, args.path, headers, method=method, body=body)

    if args.requests:
        with open(args.requests, "rb") as f:
            specs = [json.loads(line) for line in f if line.strip()]
        return Requests([_build_spec(args, list(args.header), spec) for spec in specs], consume=not args.cycle)
    if args.bodies:
        with open(args.bodies, "rb") as f:
            bodies = [line.rstrip(b"\r\n") for line in f if line.strip()]
        return Requests([build(b) for b in bodies], consume=not args.cycle)
    body = None if args.body is None else args.body.encode()
    if body is None and method != "GET":
        body = b""
    return Requests([build(body)], consume=False)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    source = load_requests(args)
    expect = Expect(args.expect_status, [] if args.keep_bodies else None)
    conns = [Connection(args.host, args.port) for _ in range(args.connections)]
    await asyncio.gather(*(c.open() for c in conns))
    stats = Stats()
    start = time.perf_counter() + args.warmup
    window = Window(start, start + args.duration)
    cpu_task = asyncio.create_task(window.measure_cpu())
    unanswered = 0
    try:
        if args.mode == "closed":
            unanswered = await run_closed(conns, source, window, stats, expect)
        else:
            unanswered = await run_open(conns, source, window, args.rate, stats, expect)
        await cpu_task
    finally:
        cpu_task.cancel()
        for c in conns:
            c.close()
    n = len(stats.latencies)
    measured = max(1e-9, window.end - window.start)  # shorter than --duration if a consumed list ran out
    return {
        "mode": args.mode,
        "connections": args.connections,
        "offered_rate": args.rate if args.mode == "open" else None,
        "duration": measured,
        "requests": n,
        "throughput": n / measured,
        "latency": percentiles(stats.latencies),
        "release_lag": percentiles(stats.release_lags) if args.mode == "open" else None,
        "completed_all_phases": stats.completed,
        "errors": stats.errors,
        "sample_errors": stats.sample_errors,
        "reconnects": stats.reconnects,
        "exhausted": stats.exhausted,
        "requests_used": source.used,
        "unanswered": unanswered,
        "cpu": (window.cpu / window.wall) if window.cpu is not None and window.wall else None,
        "loop": type(asyncio.get_running_loop()).__module__,
        # every latency in microseconds, so the driver can merge runs exactly
        "samples_us": [round(x * 1e6) for x in stats.latencies] if args.samples else None,
        "kept": expect.keep,  # written to --keep-bodies by main(), not printed
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["closed", "open"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/healthz")
    p.add_argument("--header", action="append", default=[], help="extra request header line, repeatable")
    p.add_argument("--method", help="GET, or POST when a body is given")
    p.add_argument("--body", help="one request body, sent with every request")
    p.add_argument("--bodies", help="a file of request bodies, one a line (see --consume / --cycle)")
    p.add_argument(
        "--requests", help="a file of whole requests as JSON objects, one a line (method, path, content_type, body)"
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--consume", action="store_true", help="each body once, in order (the default)")
    how.add_argument("--cycle", action="store_true", help="the bodies round robin")
    p.add_argument("--content-type", help="Content-Type header of the bodies")
    p.add_argument("--expect-status", type=int, default=200, help="the status code that counts as success")
    p.add_argument("--keep-bodies", help="write the body of every successful answer to this file, one a line")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--samples", action="store_true", help="include every latency (µs) in the output")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        p.error("only loopback targets")
    if not 1 <= args.connections <= MAX_CONNECTIONS:
        p.error(f"--connections must be 1..{MAX_CONNECTIONS}")
    if args.mode == "open" and not 0 < args.rate <= MAX_RATE:
        p.error(f"open loop needs 0 < --rate <= {MAX_RATE:g}")
    if not (0 <= args.warmup <= MAX_SECONDS and 0 < args.duration <= MAX_SECONDS):
        p.error("durations out of range")
    if sum(x is not None and x != [] for x in (args.body, args.bodies, args.requests)) > 1:
        p.error("--body, --bodies and --requests exclude each other")
    if args.method and not re.fullmatch(r"[A-Z]{3,7}", args.method):
        p.error("--method must be an HTTP method name")
    if any("\r" in h or "\n" in h for h in args.header) or not args.path.startswith("/"):
        p.error("bad --header or --path")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop  # optional; not a dependency of the project

        uvloop.install()
    limit = args.warmup + args.duration + DRAIN_SECONDS + 30
    result = asyncio.run(asyncio.wait_for(main_async(args), limit))
    kept = result.pop("kept")
    if args.keep_bodies and kept is not None:
        with open(args.keep_bodies, "wb") as f:
            f.writelines(b.replace(b"\n", b" ") + b"\n" for b in kept)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
