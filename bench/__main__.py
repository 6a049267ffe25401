"""`make bench`: run the scenarios of bench.scenarios, print one markdown table, and save it to bench/last-run.md."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import sys
import time
from importlib import metadata
from pathlib import Path

from bench.context import Context, Options
from bench.report import Row, markdown_table
from bench.scenarios import SCENARIOS, groups

OUT = Path(__file__).resolve().parent / "last-run.md"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def machine_facts() -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    facts = [
        f"{cores} cores ({_cpu_model()}), {platform.system()} {platform.release()} {platform.machine()}",
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        + ", ".join(f"{d} {_version(d)}" for d in ("granian", "litestar", "msgspec", "tongsuopy")),
        f"load average at start: {load}",
    ]
    if cores is not None and cores <= 2:
        facts.append(
            f"only {cores} cores: server, load generator and anything else running share them, so the HTTP numbers are "
            "lower bounds and the ratio matters more than the absolute rates"
        )
    return facts


def render(facts: list[str], rows: list[Row], notes: list[str], started: str, options: Options) -> str:
    mode = " (--quick)" if options.quick else ""
    parts = [
        f"### Benchmarks{mode}, {started}",
        "",
        *[f"- {f}" for f in facts],
        "",
        markdown_table(rows),
        "",
        *[f"- {n}" for n in notes],
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (rough numbers, for a smoke test)")
    parser.add_argument("--only", choices=groups(), action="append", help="run only this group (repeatable)")
    args = parser.parse_args(argv)
    # SIGTERM becomes SystemExit, so the servers are still stopped by the `with Context` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    options = Options(quick=args.quick)
    chosen = [s for s in SCENARIOS if not args.only or s.group in args.only]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    facts = machine_facts()
    for f in facts:
        print(f"[bench] {f}", file=sys.stderr)
    rows: list[Row] = []
    failed: list[str] = []
    with Context(options) as ctx:
        for scenario in chosen:
            ctx.progress(f"scenario: {scenario.name}")
            try:
                rows += scenario.run(ctx)
            except Exception as exc:  # report the others anyway; the exit status says something failed
                ctx.progress(f"FAILED: {scenario.name}: {exc}")
                failed.append(f"FAILED: {scenario.name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        notes = ctx.notes + failed
    notes.append(
        "load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (other processes included)"
    )
    text = render(facts, rows, notes, started, options)
    print(text)
    OUT.write_text(text)
    print(f"[bench] written to {OUT}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
