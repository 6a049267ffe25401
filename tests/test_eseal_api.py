"""The signing API over real HTTP (APPCode + HMAC-SM3, one-time nonces, seal passwords), the verification API and
public page, CRL publication, logs and statistics."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path

import httpx
from asn1crypto import crl as acrl

from core.reqsig import sign_headers
from core.resources import Resources
from eseal import logs, seals, service
from tests.eseal_helpers import OUT as OUT_DIR
from tests.eseal_helpers import Bureau, bureau, flip_byte, make_pdf
from tests.harness import Stack


def signed_post(http: httpx.Client, b: Bureau, path: str, payload: dict[str, object]) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = sign_headers("X-App-Code", b.app_code, b.app_secret.encode(), "POST", path, body)
    return http.post(path, content=body, headers={**headers, "Content-Type": "application/json"})


async def test_sign_over_http_then_verify_by_api_and_page(
    res: Resources, http: httpx.Client, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局交通警察支队")
    pdf = make_pdf(tmp_path / "in.pdf", lines=("特此证明。", "（盖章）")).read_bytes()
    payload: dict[str, object] = {
        "document": base64.b64encode(pdf).decode(),
        "seals": [{"seal_code": b.seal.code, "keyword": "（盖章）"}],
        "name": "证明.pdf",
    }
    path = "/eseal/v1/documents:sign"
    resp = signed_post(http, b, path, payload)
    assert resp.status_code == 200, resp.text
    signed = base64.b64decode(resp.json()["document"])
    assert resp.json()["signatures"] == 1

    # The same signed request again: the nonce was used once.
    body = json.dumps(payload).encode()
    headers = sign_headers("X-App-Code", b.app_code, b.app_secret.encode(), "POST", path, body)
    headers["Content-Type"] = "application/json"
    assert http.post(path, content=body, headers=headers).status_code == 200
    replay = http.post(path, content=body, headers=headers)
    assert replay.status_code == 401 and "nonce" in replay.json()["detail"]
    forged = {**headers, "X-Nonce": "another-nonce-1", "Authorization": "HMAC-SM3 " + "0" * 64}
    assert http.post(path, content=body, headers=forged).status_code == 401

    api = http.post("/eseal/v1/verifications", files={"file": ("证明.pdf", signed, "application/pdf")})
    assert api.status_code == 200, api.text
    result = api.json()
    assert result["valid"] and [c["verdict"] for c in result["signatures"][0]["checks"]][:7] == ["pass"] * 7
    assert result["signatures"][0]["seal_code"] == b.seal.code

    tampered = tmp_path / "t.pdf"
    (tmp_path / "s.pdf").write_bytes(signed)
    flip_byte(tmp_path / "s.pdf", tampered)
    page = http.post("/eseal/verify", files={"file": ("t.pdf", tampered.read_bytes(), "application/pdf")})
    assert page.status_code == 200 and "文档签章无效" in page.text and "文档完整性" in page.text
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "eseal-verify-page.html").write_text(page.text, encoding="utf-8")  # for a look in a browser
    assert "电子印章验证" in http.get("/eseal/verify").text

    found = await service.search_logs(res, {"kind": "sign", "seal_code": b.seal.code})
    assert len(found.items) == 2 and found.items[0].doc_name == "证明.pdf"
    verified = await service.search_logs(res, {"kind": "verify", "doc_hash": result["document_sha256"]})
    assert verified.items and verified.items[0].result == "valid"
    assert "证明.pdf" in await service.export_logs(res, {"seal_code": b.seal.code})
    assert await logs.verify_chain(res.db) == []
    stats = await service.stats(res)
    assert stats.seals_by_kind.get("official", 0) >= 1 and sum(stats.signatures_by_day.values()) >= 2


async def test_signing_for_a_user_needs_grant_and_seal_password(
    res: Resources, http: httpx.Client, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局出入境管理支队")
    await seals.grant(res, b.seal.id, "user", "user-42", actor="admin")
    await seals.set_password(res, "user-42", "印章密码-2026")
    pdf = base64.b64encode(make_pdf(tmp_path / "in.pdf").read_bytes()).decode()
    base = {"document": pdf, "seals": [{"seal_code": b.seal.code, "x": 300, "y": 300}], "user_id": "user-42"}
    path = "/eseal/v1/documents:sign"
    wrong = signed_post(http, b, path, {**base, "seal_password": "guess-123"})
    assert wrong.status_code == 403 and wrong.json()["type"].endswith("seal-password-wrong")
    other = signed_post(http, b, path, {**base, "user_id": "user-43", "seal_password": "印章密码-2026"})
    assert other.status_code == 403 and other.json()["type"].endswith("seal-not-granted")
    ok = signed_post(http, b, path, {**base, "seal_password": "印章密码-2026", "algorithm": "sm2"})
    assert ok.status_code == 200, ok.text

    await seals.suspend(res, b.seal.id, actor="admin")
    refused = signed_post(http, b, path, {**base, "seal_password": "印章密码-2026"})
    assert refused.status_code == 409 and refused.json()["type"].endswith("seal-not-usable")


async def test_crl_is_published_der_and_lists_revoked(res: Resources, http: httpx.Client, stack: Stack) -> None:
    b = await bureau(res, "苏州市公安局治安支队")
    await service.ca.revoke(res, b.sm2.id, actor="admin", reason="superseded")
    resp = http.get("/eseal/v1/crl/sm2-issuing.crl")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/pkix-crl")
    doc = acrl.CertificateList.load(resp.content)
    assert int(b.sm2.serial or 0) in {
        e["user_certificate"].native for e in doc["tbs_cert_list"]["revoked_certificates"]
    }
    assert http.get("/eseal/v1/crl/nope.crl").status_code == 404
    assert http.get("/eseal/v1/cas/sm2-root.cer").status_code == 200


async def test_template_filled_then_sealed_at_the_keyword(
    res: Resources, http: httpx.Client, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局人口管理支队")
    fields = {
        "title": "户籍证明",
        "to": "苏州市某某学校",
        "body": "兹证明王小明，住苏州市姑苏区，户籍在本辖区。特此证明。",
        "issuer": "苏州市公安局人口管理支队",
        "number": "HJ-2026-0001",
    }
    resp = signed_post(
        http,
        b,
        "/eseal/v1/documents:fill-and-sign",
        {"template": "certificate", "fields": fields, "seal_code": b.seal.code, "algorithm": "sm2"},
    )
    assert resp.status_code == 200, resp.text
    signed = base64.b64decode(resp.json()["document"])
    out = tmp_path / "cert.pdf"
    out.write_bytes(signed)
    from pypdf import PdfReader

    text = PdfReader(out).pages[0].extract_text()
    assert "户籍证明" in text and "HJ-2026-0001" in text
    verified = await service.signing.verify_file(res, out)
    assert verified.valid and verified.signatures[0].kind == "sm2-ses"
    OUT_DIR.mkdir(exist_ok=True)
    proc = await asyncio.to_thread(
        subprocess.run,
        ["pdftoppm", "-r", "60", "-png", "-singlefile", str(out), str(OUT_DIR / "eseal-certificate")],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0 and (OUT_DIR / "eseal-certificate.png").stat().st_size > 10_000


async def test_platform_issues_a_sealed_no_criminal_record_certificate(res: Resources, stack: Stack) -> None:
    params = {"name": "王小明", "id_number": "320502199001011234", "apply_no": "NCR-2026-42"}
    ref = await service.issue_certificate(res, template="no_criminal_record", params=params)
    path = service.issued_path(res, ref)
    assert ref.startswith("eseal:") and path is not None
    result = await service.signing.verify_file(res, path)
    assert result.valid and result.signatures[0].kind == "pades"
    again = await service.issue_certificate(res, template="no_criminal_record", params=params)
    assert service.issued_path(res, again) is not None  # the platform seal is made once and reused
    assert service.issued_path(res, "eseal:../../etc") is None
