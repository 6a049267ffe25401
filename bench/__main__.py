"""`make bench`: run the scenarios of bench.scenarios, print one markdown table, and write each group's table into
docs/benchmarks.md (bench.docs_table), replacing that group's last run and keeping the others."""

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

from bench import docs_table
from bench.context import Context, Options
from bench.report import Row, markdown_table
from bench.scenarios import SCENARIOS, groups


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
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help=f"page whose generated section gets the groups' tables (default {docs_table.DOCS}; with --quick only "
        "when given)",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only; leave the docs page alone")
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
    by_group: dict[str, tuple[list[str], list[Row], list[str]]] = {}  # group -> scenario names, rows, notes
    broken: set[str] = set()  # groups with a failed scenario keep their previous table in the docs
    with Context(options) as ctx:
        for scenario in chosen:
            ctx.progress(f"scenario: {scenario.name}")
            titles, group_rows, group_notes = by_group.setdefault(scenario.group, ([], [], []))
            before = len(ctx.notes)
            try:
                got = scenario.run(ctx)
            except Exception as exc:  # report the others anyway; the exit status says something failed
                ctx.progress(f"FAILED: {scenario.name}: {exc}")
                failed.append(f"FAILED: {scenario.name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                broken.add(scenario.group)
                got = []
            rows += got
            titles.append(scenario.name)
            group_rows += got
            group_notes += ctx.notes[before:]
        notes = ctx.notes + failed
    load_end = "load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (other processes included)"
    notes.append(load_end)
    print(render(facts, rows, notes, started, options))
    docs = None if args.no_docs else args.docs or (None if options.quick else docs_table.DOCS)
    if docs is not None:
        new = {
            g: docs_table.render_group(g, t, started, facts, r, [*n, load_end], options.quick)
            for g, (t, r, n) in by_group.items()
            if g not in broken
        }
        docs_table.write(docs, new, list(dict.fromkeys(s.group for s in SCENARIOS)))
        kept = f"; kept the previous table of {', '.join(sorted(broken))} (failed)" if broken else ""
        print(f"[bench] wrote {', '.join(new) or 'no group'} into {docs}{kept}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
