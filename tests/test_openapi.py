"""The committed OpenAPI documents match the code, and Schemathesis finds no failure in any operation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.server import APPS
from simulators.app import SIMULATORS
from tests.harness import ROOT, Stack


def test_committed_openapi_documents_match_the_code() -> None:
    # In a fresh process, as `szt openapi export` makes them: apps this test process built before (in-process tests)
    # share Litestar's schema objects and would colour the documents.
    code = (
        "from pathlib import Path; from szt.openapi_export import documents; "
        "print(','.join(n for n, b in documents().items() if Path('openapi', n).read_bytes() != b))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    stale = [name for name in out.stdout.strip().split(",") if name]
    assert not stale, f"run `szt openapi export` and commit: {stale}"


def _targets() -> list[tuple[str, str]]:
    return [("server", m) for m in sorted(APPS)] + [("sim", m) for m in sorted(SIMULATORS)] + [("signer", "")]


@pytest.mark.parametrize(("where", "mount"), _targets(), ids=lambda v: v or "signer")
def test_schemathesis_finds_no_failure(stack: Stack, where: str, mount: str, tmp_path: Path) -> None:
    base = {"server": stack.base_url, "sim": stack.sim_url, "signer": stack.signer_url}[where]
    schema = f"{base}/{mount}/schema/openapi.json" if mount else f"{base}/schema/openapi.json"
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(ROOT / "tests" / "schemathesis.toml"),
        "run",
        schema,
        "--url",
        base,
        "--max-examples",
        os.environ.get("SZT_FUZZ_EXAMPLES", "30"),
        "--request-timeout",
        "10",
        "--seed",
        "20261122",
        "--suppress-health-check",
        "too_slow",
        "--no-color",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-15000:] + proc.stderr[-2000:]
