"""The national / provincial e-seal platform over real HTTP (simulators/sealplatform.py): filing (赋码, 备案) and
status changes delivered exactly once through the outbox, an outage during which sealing goes on and new seals wait
in 'filing', mutual recognition (互认) of a seal another province made with its own CA, and reconciliation."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import algos, keys, x509

from core.problems import ProblemError
from core.resources import Resources
from eseal import impression, pdfsign, repo, sealplatform, seals, signing
from eseal.models import SignPosition
from tests.eseal_helpers import SM2_WITH_SM3, OutsideKey, bureau, make_pdf, outside_seal_v4
from tests.harness import Stack

ZJ = "330100"  # 杭州 (浙江省): the "other province"


def _check_char(body: str) -> str:
    total = sum(int(ch) * (2 ** (len(body) - i) % 11) for i, ch in enumerate(body))
    return "10X98765432"[total % 11]


def foreign_code() -> str:
    body = f"{ZJ}1{secrets.randbelow(10**7):07d}"
    return body + _check_char(body)


def foreign_cert(issuer: OutsideKey, issuer_cn: str, subject: OutsideKey, subject_cn: str, *, ca: bool) -> bytes:
    """An SM2 certificate of the other province's seal CA, built here with asn1crypto and signed by gmssl."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def name(cn: str) -> x509.Name:
        return x509.Name.build(
            {"country_name": "CN", "organization_name": "浙江省电子印章制作中心", "common_name": cn},
            use_printable=False,
        )

    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(62) | (1 << 61),
            "signature": algos.SignedDigestAlgorithm({"algorithm": SM2_WITH_SM3}),
            "issuer": name(issuer_cn),
            "validity": {
                "not_before": x509.Time(name="utc_time", value=now - dt.timedelta(days=1)),
                "not_after": x509.Time(name="utc_time", value=now + dt.timedelta(days=3650 if ca else 730)),
            },
            "subject": name(subject_cn),
            "subject_public_key_info": keys.PublicKeyInfo.load(subject.spki()),
            "extensions": [
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": ca}},
                {
                    "extn_id": "key_usage",
                    "critical": True,
                    "extn_value": {"key_cert_sign", "crl_sign"} if ca else {"digital_signature", "non_repudiation"},
                },
            ],
        }
    )
    return bytes(
        x509.Certificate(
            {
                "tbs_certificate": tbs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": SM2_WITH_SM3}),
                "signature_value": issuer.sign(tbs.dump()),
            }
        ).dump()
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def platform(sim_url: str) -> str:
    return f"{sim_url}/sealplatform"


def set_mode(sim_url: str, *, up: bool, max_age: int = 300) -> None:
    httpx.put(f"{platform(sim_url)}/_sim/mode", json={"up": up, "max_age": max_age}, timeout=10).raise_for_status()


def at_platform(sim_url: str, code: str) -> dict[str, Any]:
    resp = httpx.get(f"{platform(sim_url)}/_sim/seals/{code}", timeout=10)
    resp.raise_for_status()
    found: dict[str, Any] = resp.json()
    return found


async def until(check: Callable[[], Awaitable[Any]], what: str, deadline: float = 40.0) -> Any:
    """Poll `check` until it returns something truthy (the outbox's backoff decides when it can)."""
    end = time.monotonic() + deadline
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await _pause()


async def _pause() -> None:
    await asyncio.sleep(0.2)


async def foreign_document(tmp_path: Path, org: str) -> tuple[Path, str, list[str]]:
    """A PDF sealed by another province: its root CA, seal maker and signer certificates and its own GB/T 38540
    SES_Seal, none of them ours. Returns the document, the seal code and the registration at the platform."""
    root_key, maker_key, signer_key = OutsideKey(), OutsideKey(), OutsideKey()
    root = foreign_cert(root_key, "浙江省电子印章根CA", root_key, "浙江省电子印章根CA", ca=True)
    maker = foreign_cert(root_key, "浙江省电子印章根CA", maker_key, "浙江省电子印章制章系统", ca=False)
    signer = foreign_cert(root_key, "浙江省电子印章根CA", signer_key, org, ca=False)
    code = foreign_code()
    png = impression.render(org, code)
    seal_der = outside_seal_v4(maker_key, maker, [signer], code, png)
    src = make_pdf(tmp_path / f"{code}-in.pdf", lines=("浙江省开具的证明。",))
    out = tmp_path / f"{code}.pdf"

    async def sign(data: bytes) -> bytes:
        return signer_key.sign(data)

    with src.open("rb") as fin, out.open("w+b") as fout:
        await pdfsign.sign_sm2(
            fin,
            fout,
            field_name="ZJ1",
            placement=pdfsign.Placement(0, 300, 560),
            seal_png=png,
            seal_der=seal_der,
            seal_code=code,
            cert=signer,
            sign_sm2=sign,
        )
    return out, code, [b64(seal_der), b64(root)]


def register_foreign(sim_url: str, code: str, parts: list[str], org: str) -> None:
    resp = httpx.post(
        f"{platform(sim_url)}/_sim/seals",
        json={
            "seal_code": code,
            "seal_name": org,
            "org_name": org,
            "region_code": ZJ,
            "province": "浙江省",
            "ses_seal": parts[0],
            "ca_certs": [parts[1]],
        },
        timeout=10,
    )
    assert resp.status_code == 201, resp.text


def verify_api(base_url: str, path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        resp = httpx.post(
            f"{base_url}/eseal/v1/verifications", files={"file": (path.name, f, "application/pdf")}, timeout=60
        )
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


def verify_page(base_url: str, path: Path) -> str:
    with path.open("rb") as f:
        resp = httpx.post(f"{base_url}/eseal/verify", files={"file": (path.name, f, "application/pdf")}, timeout=60)
    assert resp.status_code in (200, 201), resp.text
    return resp.text


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in report["checks"] if c["name"] == name)
    return found


async def test_a_seal_of_another_province_is_recognised_and_its_revocation_reported(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    set_mode(stack.sim_url, up=True, max_age=300)
    doc, code, parts = await foreign_document(tmp_path, "杭州市西湖区市场监督管理局")

    # Before the platform knows it: not ours, not filed anywhere — invalid (the platform's "not found" is cached).
    unknown = verify_api(stack.base_url, doc)
    assert unknown["valid"] is False and unknown["confirmed"] is True, unknown

    register_foreign(stack.sim_url, code, parts, "杭州市西湖区市场监督管理局")
    await res.redis.delete(f"eseal:sealplatform:seal:{code}")  # what the platform said before it was filed
    result = verify_api(stack.base_url, doc)
    sig = result["signatures"][0]
    assert result["valid"] is True and result["confirmed"] is True, [c for c in sig["checks"] if c["verdict"] != "pass"]
    assert sig["seal_code"] == code and sig["recognised_by"] == "浙江省", sig
    assert {c["name"]: c["verdict"] for c in sig["checks"]} == {
        "format": "pass",
        "signature": "pass",
        "cert_seal_match": "pass",
        "seal_validity": "pass",
        "certificate": "pass",
        "signing_time": "pass",
        "integrity": "pass",
        "timestamp": "absent",
    }, sig
    assert "互认" in check(sig, "seal_validity")["detail"]
    page = verify_page(stack.base_url, doc)
    assert "文档所有签章有效" in page and "互认" in page and "浙江省" in page
    # Cached for the validity the platform stated: the page and the API asked it once.
    assert at_platform(stack.sim_url, code)["lookups"] == 1

    # The platform revokes it; once the answer it gave has expired, verification says revoked.
    set_mode(stack.sim_url, up=True, max_age=1)
    await res.redis.expire(f"eseal:sealplatform:seal:{code}", 1)
    httpx.put(
        f"{platform(stack.sim_url)}/_sim/seals/{code}/status", json={"status": "revoked"}, timeout=10
    ).raise_for_status()

    async def revoked() -> dict[str, Any] | None:
        found = verify_api(stack.base_url, doc)
        return found if "revoked" in check(found["signatures"][0], "seal_validity")["detail"] else None

    found = await until(revoked, "the revocation to be seen")
    assert found["valid"] is False and found["confirmed"] is True
    assert check(found["signatures"][0], "seal_validity")["verdict"] == "fail"
    set_mode(stack.sim_url, up=True, max_age=300)


async def test_outage_sealing_goes_on_new_seal_waits_in_filing_and_is_filed_exactly_once(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    set_mode(stack.sim_url, up=True)
    filed = await bureau(res, "苏州市公安局姑苏分局")
    assert filed.seal.status == "published"
    row = await repo.seal(res.db, filed.seal.id)
    assert row is not None and row["filing_no"] and at_platform(stack.sim_url, filed.seal.code or "")["filings"] == 1
    other_doc, other_code, other_parts = await foreign_document(tmp_path, "宁波市公安局")
    register_foreign(stack.sim_url, other_code, other_parts, "宁波市公安局")

    set_mode(stack.sim_url, up=False)
    try:
        ready = httpx.get(f"{stack.base_url}/eseal/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["sealplatform"].startswith("fail")

        # Sealing with a filed seal still works; its sealing log waits for the platform.
        out = tmp_path / "during-outage.pdf"
        await signing.sign_file(
            res,
            make_pdf(tmp_path / "in.pdf", lines=("停机期间盖章。",)),
            out,
            [SignPosition(seal_code=filed.seal.code or "", x=300, y=560)],
            app_code=filed.app_code,
            algorithm="sm2",
        )
        assert (await signing.verify_file(res, out)).valid
        # A suspension during the outage waits in the outbox too.
        await seals.suspend(res, filed.seal.id, actor="admin")

        # A new seal waits in 'filing' and cannot be published or used: a clear problem.
        new = await seals.apply(
            res,
            kind="official",
            name="苏州市公安局平江派出所",
            org_name="苏州市公安局平江派出所",
            region_code="320500",
            cert_ids=[filed.sm2.id],
        )
        await seals.review(res, new.id, approve=True, reviewer="admin")
        await seals.make(res, new.id)
        waiting = await seals.register(res, new.id, actor="admin")
        assert waiting.status == "filing"
        with pytest.raises(ProblemError) as refused:
            await seals.publish(res, new.id, actor="admin")
        assert refused.value.slug == "seal-filing" and refused.value.status == 409
        await seals.grant(res, new.id, "app", filed.app_code, actor="admin")
        with pytest.raises(ProblemError) as refused:
            await seals.usable(res, waiting.code or "", app_code=filed.app_code, user_id=None, password=None)
        assert refused.value.slug == "seal-filing" and "备案" in refused.value.title_zh

        # A seal of another province cannot be confirmed: neither valid nor invalid.
        unsure = verify_api(stack.base_url, other_doc)
        assert unsure["confirmed"] is False and unsure["valid"] is False, unsure
        assert "无法确认" in check(unsure["signatures"][0], "seal_validity")["detail"]
        assert "无法确认" in verify_page(stack.base_url, other_doc)
        assert await sealplatform.deliver(res) == 0  # the worker's job during the outage: nothing taken
    finally:
        set_mode(stack.sim_url, up=True)

    # Back up: the worker's job delivers the filing (after its backoff) and the suspension, once each.
    from eseal import jobs

    async def registered() -> bool:
        await jobs.platform_outbox(res)
        row = await repo.seal(res.db, new.id)
        return (
            row is not None
            and row["status"] == "registered"
            and not await repo.outbox_pending_for(res.db, filed.seal.id)
        )

    await until(registered, "the filing to be delivered")
    await jobs.platform_outbox(res)
    counts = at_platform(stack.sim_url, waiting.code or "")
    assert counts["filings"] == 1 and counts["duplicates"] == 0 and counts["status"] == "active", counts
    old = at_platform(stack.sim_url, filed.seal.code or "")
    assert old["status"] == "suspended" and old["status_changes"] == 1 and old["log_entries"] >= 1, old
    assert (await seals.publish(res, new.id, actor="admin")).status == "published"
    # The same filing sent again (a retry after a lost answer) is a duplicate at the platform, not a second filing.
    row = await repo.seal(res.db, new.id)
    msg = await repo.outbox_add(res.db, f"file:{new.id}", "file", new.id, {})
    answer = await sealplatform.client(res).file(dict(msg["payload"]))
    assert row is not None and answer["duplicate"] is True and answer["filing_no"] == row["filing_no"]
    assert at_platform(stack.sim_url, waiting.code or "")["filings"] == 1
    logs_before = httpx.get(f"{platform(stack.sim_url)}/_sim/stats", timeout=10).json()["log_entries"]
    await jobs.platform_outbox(res)
    assert httpx.get(f"{platform(stack.sim_url)}/_sim/stats", timeout=10).json()["log_entries"] == logs_before
    ready = httpx.get(f"{stack.base_url}/eseal/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"]["sealplatform"] == "ok"


async def test_reconciliation_repairs_a_status_drift(res: Resources, stack: Stack) -> None:
    set_mode(stack.sim_url, up=True)
    b = await bureau(res, "苏州市公安局相城分局")
    code = b.seal.code or ""
    await seals.suspend(res, b.seal.id, actor="admin")
    assert at_platform(stack.sim_url, code)["status"] == "suspended"
    # Drift: the platform shows the seal we suspended as active.
    httpx.put(
        f"{platform(stack.sim_url)}/_sim/seals/{code}/status", json={"status": "active"}, timeout=10
    ).raise_for_status()
    repaired = await sealplatform.reconcile(res)
    assert code in repaired
    assert at_platform(stack.sim_url, code)["status"] == "suspended"
    assert code not in await sealplatform.reconcile(res)  # nothing left to repair


async def test_bad_input_to_the_platform_is_a_problem_naming_the_field(stack: Stack) -> None:
    body = "32050010000001"
    wrong = body + next(c for c in "0123456789X" if c != _check_char(body))
    resp = httpx.post(
        f"{platform(stack.sim_url)}/v1/seal-filings",
        json={
            "request_id": "file:bad-input-0001",
            "seal_code": wrong,  # wrong check character
            "seal_name": "x",
            "seal_kind": "official",
            "org_name": "x",
            "region_code": "320500",
            "ses_seal": b64(b"not a seal at all"),
            "valid_from": "2026-12-07T00:00:00Z",
            "valid_to": "2031-12-07T00:00:00Z",
        },
        timeout=10,
    )
    assert resp.status_code == 400 and "seal_code" in resp.text, resp.text
