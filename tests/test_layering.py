"""The layering contracts of `.importlinter` (run by `make lint`) hold on the tree, and a front door that imports
another front door breaks them: the check can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["szt", "core", "platforms", "identity", "orgs", "catalog", "affairs", "push", "eseal"]
PACKAGES += ["bff", "miniapp_api", "admin", "simulators"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> None:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.html", "*.sql"))
    shutil.copy(ROOT / ".importlinter", dest / ".importlinter")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_contracts_hold_and_a_front_door_importing_another_breaks_them(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    (tmp_path / "admin" / "probe_cross_door.py").write_text("import bff.app  # noqa: F401\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "admin is not allowed to import bff" in broken.stdout
