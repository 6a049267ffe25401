"""The generated part of docs/benchmarks.md: one block per scenario group, each the table of that group's last run.

`make bench` (and `python -m bench --only GROUP`) replaces the blocks of the groups it ran and keeps the others, so
the page always shows the latest run of every group, each with its own date and machine. The generated part lies
between START and END; each block between `<!-- bench:group NAME -->` and `<!-- bench:group-end NAME -->`.
Everything outside the markers is hand-written and left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.report import Row, markdown_table

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
_BLOCK = re.compile(
    r"<!-- bench:group (?P<name>[a-z0-9_-]+) -->\n(?P<body>.*?)<!-- bench:group-end (?P=name) -->\n", re.S
)


def render_group(
    group: str, titles: list[str], started: str, facts: list[str], rows: list[Row], notes: list[str], quick: bool
) -> str:
    """One group's block: what was measured, when, on what, the table and the run's notes."""
    mode = " with `--quick` (rough numbers)" if quick else ""
    parts = [
        f"<!-- bench:group {group} -->",
        f"### {group}",
        "",
        f"{'; '.join(titles)}. Run {started}{mode}; measure again with `python -m bench --only {group}`.",
        "",
        *[f"- {f}" for f in facts],
        "",
        markdown_table(rows),
        "",
        *[f"- {n}" for n in notes],
        f"<!-- bench:group-end {group} -->",
    ]
    return "\n".join(parts) + "\n"


def blocks(text: str) -> dict[str, str]:
    """The group blocks of a generated section, by group name, markers included."""
    return {m["name"]: m.group(0) for m in _BLOCK.finditer(text)}


def merge(page: str, new: dict[str, str], order: list[str]) -> str:
    """`page` with the blocks of `new` put in place of the same groups' blocks; groups in `order`'s order, then any
    group no longer known (kept, not lost). A page without the markers gets the section appended."""
    if START in page and END in page:
        head, rest = page.split(START, 1)
        section, tail = rest.split(END, 1)
    else:
        head, section, tail = page.rstrip("\n") + "\n\n", "", "\n"
    merged = blocks(section) | new
    names = [g for g in order if g in merged] + sorted(g for g in merged if g not in order)
    body = "\n".join(merged[g] for g in names)
    return f"{head}{START}\n{body}{END}{tail}"


def write(path: Path, new: dict[str, str], order: list[str]) -> None:
    page = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    path.write_text(merge(page, new, order), encoding="utf-8")
