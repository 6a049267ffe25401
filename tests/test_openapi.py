"""The committed OpenAPI documents match the code, and Schemathesis finds no failure in any operation.

Schemathesis 4 runs every check and every phase by default (examples, coverage, fuzzing and the stateful phase with
links inferred from the schemas and `Location` headers); `tests/schemathesis.toml` only tunes per-operation statuses.
Each app is fuzzed by every kind of caller it serves, at once: anonymously, and with the bearer token of a citizen
(bff, identity), of a WeChat mini-program user (mini) or of the platform administrator (admin). The e-seal API signs
every request (HMAC, one-time nonce), so it, the affairs callback API, push and the simulators run anonymously.
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
from tests.admin_helpers import platform_admin
from tests.harness import ROOT, Stack
from tests.identity_helpers import bearer, enrol, pick_citizen
from tests.mini_helpers import wechat_user

CALLERS = {
    "admin": ("anonymous", "admin"),
    "bff": ("anonymous", "citizen"),
    "identity": ("anonymous", "citizen"),
    "mini": ("anonymous", "mini"),
}


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


@pytest.fixture(scope="module")
def tokens(stack: Stack, var_dir: Path) -> dict[str, dict[str, str]]:
    with httpx.Client(base_url=stack.base_url, timeout=15) as http:
        citizen = bearer(enrol(http, stack.sim_url, pick_citizen(stack.sim_url))["session"])  # type: ignore[arg-type]
        mini = wechat_user(http, stack.sim_url).headers
        admin = platform_admin(http, var_dir)
    return {"anonymous": {}, "citizen": citizen, "mini": mini, "admin": admin}


@pytest.mark.parametrize(("where", "mount"), _targets(), ids=lambda v: v or "signer")
def test_schemathesis_finds_no_failure(
    stack: Stack, tokens: dict[str, dict[str, str]], where: str, mount: str, tmp_path: Path
) -> None:
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
    runs: dict[str, subprocess.Popen[str]] = {}
    for who in CALLERS.get(mount, ("anonymous",)) if where == "server" else ("anonymous",):
        headers = [arg for name, value in tokens[who].items() for arg in ("--header", f"{name}: {value}")]
        (tmp_path / who).mkdir()
        runs[who] = subprocess.Popen(
            cmd + headers, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path / who
        )
    failed = []
    for who, proc in runs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failed.append(f"===== as {who}\n{out[-12000:]}")
    assert not failed, "\n".join(failed)
