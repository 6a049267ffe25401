"""Writes docs/configuration.md from `core.settings.Settings`: `python -m core.settings_doc` (`--check` fails when
the file differs). Every environment variable is documented here once, from its field's `Meta`."""

from __future__ import annotations

import sys
from pathlib import Path

from core.settings import ENV_VARS, FIELD_META, KEEP_EMPTY, Settings

PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
HEADER = """# Configuration

Every setting comes from the environment and is a field of `core.settings.Settings`; unset or empty variables take
the default ({keep_empty}: empty is a value of its own). This page is generated from that class by
`python -m core.settings_doc`; a test fails when it drifts.

| variable | default | meaning |
|---|---|---|
"""


def _default(field: str) -> str:
    shown = (FIELD_META[field].extra or {}).get("default")
    if shown is not None:
        return str(shown)
    value = getattr(Settings(), field)
    return "unset" if value in ("", None) else f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    rows = [
        f"| `{env}` | {_cell(_default(field))} | {_cell(FIELD_META[field].description or '')} |"
        for env, field in ENV_VARS.items()
    ]
    keep_empty = ", ".join(f"`{name}`" for name in ENV_VARS if name in KEEP_EMPTY)
    return HEADER.format(keep_empty=keep_empty) + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = PATH.read_text(encoding="utf-8") if PATH.exists() else ""
        if current != text:
            print(f"{PATH} is out of date: run `python -m core.settings_doc`", file=sys.stderr)
            return 1
        return 0
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
