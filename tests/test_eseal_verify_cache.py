"""The verifier reuses what it built from the trust material (roots, CRLs, chains, seal states) only within one
generation of it (eseal.trust_generation): after a document verified valid, so that every cache is warm, a revoked
certificate, a suspended seal, a newly published CRL, a removed or a new trust root each change the very next
verdict, in this process and in the server's (another replica), for PAdES and SM2 PDFs and for OFD."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.resources import Resources
from eseal import ca, repo, seals, signing
from eseal.models import SignPosition, VerifyResult
from tests.eseal_helpers import Bureau, bureau, make_ofd, make_pdf
from tests.harness import Stack

KINDS = ("pades", "sm2", "ofd")


@dataclass
class Sealed:
    kind: str
    path: Path
    bureau: Bureau

    @property
    def cert_id(self) -> uuid.UUID:
        return self.bureau.rsa.id if self.kind == "pades" else self.bureau.sm2.id

    @property
    def issuing(self) -> str:
        return "rsa-issuing" if self.kind == "pades" else "sm2-issuing"

    @property
    def root(self) -> str:
        return "rsa-root" if self.kind == "pades" else "sm2-root"


async def _seal(res: Resources, kind: str, tmp_path: Path, org: str) -> Sealed:
    b = await bureau(res, org)
    pos = [SignPosition(seal_code=b.seal.code or "", x=300, y=500)]
    if kind == "ofd":
        out = tmp_path / "doc.ofd"
        data = await signing.sign_ofd(res, make_ofd(1, (org, "特此证明。")), pos, app_code=b.app_code)
        await asyncio.to_thread(out.write_bytes, data)
    else:
        out = tmp_path / f"{kind}.pdf"
        src = make_pdf(tmp_path / "in.pdf", lines=(org, "特此证明。"))
        await signing.sign_file(res, src, out, pos, app_code=b.app_code, algorithm=kind)
    return Sealed(kind, out, b)


def _check(result: VerifyResult, name: str) -> tuple[str, str]:
    check = next(c for c in result.signatures[0].checks if c.name == name)
    return check.verdict, check.detail


def _over_http(http: httpx.Client, doc: Sealed) -> dict[str, Any]:
    """The server's verdict: another process, so another replica's caches."""
    answer = http.post("/eseal/v1/verifications", files={"file": (doc.path.name, doc.path.read_bytes())})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _http_check(body: dict[str, Any], name: str) -> tuple[str, str]:
    check = next(c for c in body["signatures"][0]["checks"] if c["name"] == name)
    return check["verdict"], check["detail"]


async def _warm(res: Resources, http: httpx.Client, doc: Sealed) -> None:
    """Verified valid twice here and once by the server: trust, chains, CRLs, seal states and verdict all cached."""
    for _ in range(2):
        result = await signing.verify_file(res, doc.path)
        assert result.valid, result
    assert _over_http(http, doc)["valid"]


@pytest.fixture
async def restore_roots(res: Resources) -> AsyncIterator[None]:
    yield
    for root in ("sm2-root", "rsa-root"):
        row = await repo.ca(res.db, root)
        assert row is not None
        await ca.set_trust(res, root, trusted=True, priority=row["priority"], actor="test")


@pytest.mark.parametrize("kind", KINDS)
async def test_revoked_certificate_changes_the_next_verdict(
    res: Resources, stack: Stack, http: httpx.Client, tmp_path: Path, kind: str
) -> None:
    doc = await _seal(res, kind, tmp_path, f"苏州市公安局缓存吊销{kind}")
    await _warm(res, http, doc)
    await ca.revoke(res, doc.cert_id, actor="admin", reason="key_compromise")
    result = await signing.verify_file(res, doc.path)
    verdict, detail = _check(result, "certificate")
    assert not result.valid and verdict == "fail" and "revoked (key_compromise)" in detail, result
    body = _over_http(http, doc)
    verdict, detail = _http_check(body, "certificate")
    assert not body["valid"] and verdict == "fail" and "revoked (key_compromise)" in detail, body


@pytest.mark.parametrize("kind", KINDS)
async def test_suspended_seal_changes_the_next_verdict_and_resuming_restores_it(
    res: Resources, stack: Stack, http: httpx.Client, tmp_path: Path, kind: str
) -> None:
    doc = await _seal(res, kind, tmp_path, f"苏州市公安局缓存暂停{kind}")
    await _warm(res, http, doc)
    await seals.suspend(res, doc.bureau.seal.id, actor="admin")
    result = await signing.verify_file(res, doc.path)
    verdict, detail = _check(result, "seal_validity")
    assert not result.valid and verdict == "fail" and "suspended" in detail, result
    body = _over_http(http, doc)
    assert not body["valid"] and "suspended" in _http_check(body, "seal_validity")[1], body
    await seals.resume(res, doc.bureau.seal.id, actor="admin")
    assert (await signing.verify_file(res, doc.path)).valid
    assert _over_http(http, doc)["valid"]


@pytest.mark.parametrize("kind", KINDS)
async def test_newly_published_crl_changes_the_next_verdict(
    res: Resources, stack: Stack, http: httpx.Client, tmp_path: Path, kind: str
) -> None:
    doc = await _seal(res, kind, tmp_path, f"苏州市公安局缓存CRL{kind}")
    await _warm(res, http, doc)
    # The certificate is put on hold in the register without the service's CRL refresh (as a register import or
    # another tool would): the CRL in force does not list it yet, so relying parties still accept it …
    await repo.update_certificate(
        res.db, doc.cert_id, status="suspended", revoked_at=dt.datetime.now(dt.UTC), revoke_reason="certificate_hold"
    )
    assert (await signing.verify_file(res, doc.path)).valid  # the trust material of this generation is cached
    # … until the CA publishes its next CRL (the old one expired from the CRL cache): the very next verdict fails.
    await res.redis.delete(f"eseal:crl:{doc.issuing}")
    published = await ca.crl(res, doc.issuing)
    assert published
    result = await signing.verify_file(res, doc.path)
    verdict, detail = _check(result, "certificate")
    assert not result.valid and verdict == "fail" and "suspended (on hold)" in detail, result
    body = _over_http(http, doc)
    assert not body["valid"] and "suspended (on hold)" in _http_check(body, "certificate")[1], body


@pytest.mark.parametrize("kind", KINDS)
async def test_removed_and_new_trust_root_change_the_next_verdict(
    res: Resources, stack: Stack, http: httpx.Client, tmp_path: Path, kind: str, restore_roots: None
) -> None:
    doc = await _seal(res, kind, tmp_path, f"苏州市公安局缓存根{kind}")
    await _warm(res, http, doc)
    row = await repo.ca(res.db, doc.root)
    assert row is not None
    await ca.set_trust(res, doc.root, trusted=False, priority=row["priority"], actor="admin")
    result = await signing.verify_file(res, doc.path)
    verdict, detail = _check(result, "certificate")
    assert not result.valid and verdict == "fail" and "no trusted chain" in detail, result
    body = _over_http(http, doc)
    assert not body["valid"] and _http_check(body, "certificate")[0] == "fail", body
    # Trusted again (a new root in the trust list): the next verdict is valid again, here and in the server.
    await ca.set_trust(res, doc.root, trusted=True, priority=row["priority"], actor="admin")
    assert (await signing.verify_file(res, doc.path)).valid
    assert _over_http(http, doc)["valid"]
