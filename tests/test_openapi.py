"""The committed OpenAPI documents match the code, and Schemathesis finds no failure in any operation.

Every operation of every app, with every Schemathesis check (`--checks all`) and every phase — examples, coverage,
fuzzing and stateful (links inferred from the schemas and from `Location` headers) — as three callers: anonymous, a
citizen with a bearer token, and the platform administrator with a bearer token. The simulators and the signing
server have no bearer callers and run anonymously.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.server import APPS
from simulators.app import SIMULATORS
from szt.openapi_export import documents
from tests.admin_helpers import platform_admin
from tests.harness import ROOT, Stack
from tests.identity_helpers import bearer, enrol, pick_citizen


def test_committed_openapi_documents_match_the_code() -> None:
    stale = [name for name, body in documents().items() if (ROOT / "openapi" / name).read_bytes() != body]
    assert not stale, f"run `szt openapi export` and commit: {stale}"


IDENTITIES = ("anonymous", "citizen", "admin")
RUN_SECONDS = int(os.environ.get("SZT_FUZZ_RUN_SECONDS", "300"))  # each Schemathesis run is ended past this


def _targets() -> list[tuple[str, str]]:
    return [("server", m) for m in sorted(APPS)] + [("sim", m) for m in sorted(SIMULATORS)] + [("signer", "")]


@pytest.fixture(scope="module")
def tokens(stack: Stack, var_dir: Path) -> dict[str, dict[str, str]]:
    with httpx.Client(base_url=stack.base_url, timeout=15) as http:
        citizen = bearer(enrol(http, stack.sim_url, pick_citizen(stack.sim_url))["session"])  # type: ignore[arg-type]
        admin = platform_admin(http, var_dir)
    return {"anonymous": {}, "citizen": citizen, "admin": admin}


@pytest.mark.parametrize(("where", "mount"), _targets(), ids=lambda v: v or "signer")
def test_schemathesis_finds_no_failure(
    stack: Stack, tokens: dict[str, dict[str, str]], where: str, mount: str, tmp_path: Path
) -> None:
    """One Schemathesis run per caller, the three at once (an app's servers are not busy with one run)."""
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
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
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
    callers = IDENTITIES if where == "server" else ("anonymous",)
    runs: dict[str, subprocess.Popen[str]] = {}
    for who in callers:
        extra = [arg for name, value in tokens[who].items() for arg in ("--header", f"{name}: {value}")]
        (tmp_path / who).mkdir()
        runs[who] = subprocess.Popen(
            cmd + extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path / who
        )
    failed: list[str] = []
    for who, proc in runs.items():
        try:
            out, _ = proc.communicate(timeout=RUN_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += f"\n(ended after {RUN_SECONDS} s)"
        if proc.returncode != 0:
            failed.append(f"===== {who}\n{out[-12000:]}")
    assert not failed, "\n".join(failed)
