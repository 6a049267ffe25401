"""`make bench` writes each group's table into docs/benchmarks.md and keeps the groups it did not run."""

from __future__ import annotations

from pathlib import Path

from bench import docs_table
from bench.report import Latency, Row
from bench.scenarios import groups

ORDER = ["http", "crypto", "oidc"]


def _block(group: str, peak: float) -> str:
    row = Row("S", "ours", peak, "req/s", peak_latency=Latency(0.001, None, 0.002, None), vs_peer=0.9)
    return docs_table.render_group(group, [f"{group} title"], "2026-12-07 12:00 UTC", ["2 cores"], [row], ["n"], False)


def _page(*blocks: str) -> str:
    section = docs_table.START + "\n" + "\n".join(blocks) + docs_table.END
    return "# Benchmarks\n\nhand-written\n\n" + section + "\n\ntail\n"


def test_a_run_replaces_its_groups_and_keeps_the_others() -> None:
    page = _page(_block("http", 100), _block("oidc", 300))
    out = docs_table.merge(page, {"oidc": _block("oidc", 333), "crypto": _block("crypto", 200)}, ORDER)
    got = docs_table.blocks(out)
    assert list(got) == ["http", "crypto", "oidc"]  # the scenarios' order
    assert "| 100 req/s |" in got["http"] and "| 333 req/s |" in got["oidc"] and "| 300 req/s |" not in out
    assert out.startswith("# Benchmarks\n\nhand-written\n\n") and out.endswith("\n\ntail\n")
    assert docs_table.merge(out, {}, ORDER) == out  # idempotent


def test_a_page_without_markers_gets_the_section_appended(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\nintro\n")
    docs_table.write(path, {"http": _block("http", 100)}, ORDER)
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n" + docs_table.START)
    assert list(docs_table.blocks(text)) == ["http"]


def test_the_docs_page_has_the_last_run_of_every_group() -> None:
    assert set(docs_table.blocks(docs_table.DOCS.read_text())) == set(groups())
