"""Sealed PDFs against independent validators: pdfsig (poppler), pyHanko, gmssl; tampering, revocation, suspension."""

from __future__ import annotations

import binascii
import subprocess
from pathlib import Path

from asn1crypto import cms, x509
from gmssl import sm2 as gm_sm2
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from core.crypto import SM2PublicKey, der_to_raw
from core.resources import Resources
from eseal import ca, pdfsign, pdftext, repo, seals, ses, signing
from eseal.models import SignPosition
from tests.eseal_helpers import bureau, flip_byte, make_pdf
from tests.harness import Stack


def pdfsig(path: Path) -> str:
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=30).stdout


async def pyhanko_ok(path: Path, root: bytes) -> bool:
    with path.open("rb") as f:
        reader = PdfFileReader(f, strict=False)
        vc = ValidationContext(trust_roots=[x509.Certificate.load(root)], allow_fetching=False)
        statuses = [
            await async_validate_pdf_signature(s, signer_validation_context=vc) for s in reader.embedded_signatures
        ]
    return bool(statuses) and all(s.bottom_line for s in statuses)


async def test_pades_passes_pdfsig_pyhanko_and_ours_and_one_byte_breaks_all(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res)
    src = make_pdf(tmp_path / "in.pdf", pages=2, lines=("特此证明。", "盖章处："))
    out = tmp_path / "signed.pdf"
    positions = [
        SignPosition(seal_code=b.seal.code or "", page=0, x=300, y=560),
        SignPosition(seal_code=b.seal.code or "", keyword="盖章处", cross_page=True),
    ]
    assert await signing.sign_file(res, src, out, positions, app_code=b.app_code) == 2

    report = pdfsig(out)
    assert report.count("Signature is Valid.") == 2, report
    assert "Total document signed" in report
    root = (await ca.chain_of(res, "rsa-issuing"))[-1]
    assert await pyhanko_ok(out, root)
    ours = await signing.verify_file(res, out)
    assert ours.valid and len(ours.signatures) == 2, ours
    assert {c.name for c in ours.signatures[0].checks} == {
        "format",
        "signature",
        "cert_seal_match",
        "seal_validity",
        "certificate",
        "signing_time",
        "integrity",
        "timestamp",
    }

    bad = tmp_path / "tampered.pdf"
    flip_byte(out, bad)
    report = pdfsig(bad)
    assert "Signature is Valid." not in report and report.count("Digest Mismatch.") == 2, report
    assert not await pyhanko_ok(bad, root)
    theirs = await signing.verify_file(res, bad)
    assert not theirs.valid
    integrity = [c for s in theirs.signatures for c in s.checks if c.name == "integrity"]
    assert integrity and all(c.verdict == "fail" for c in integrity)


async def test_pades_carries_a_trusted_rfc3161_timestamp_from_the_tsa(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局虎丘分局")
    src = make_pdf(tmp_path / "in.pdf", lines=("特此证明。",))
    out = tmp_path / "ts.pdf"
    await signing.sign_file(
        res, src, out, [SignPosition(seal_code=b.seal.code or "", x=300, y=560)], app_code=b.app_code
    )
    root = (await ca.chain_of(res, "rsa-issuing"))[-1]
    with out.open("rb") as f:
        emb = PdfFileReader(f, strict=False).embedded_signatures[0]
        vc = ValidationContext(trust_roots=[x509.Certificate.load(root)], allow_fetching=False)
        status = await async_validate_pdf_signature(emb, signer_validation_context=vc)
        ts = status.timestamp_validity
        assert ts is not None and ts.intact and ts.valid and ts.trusted, ts
        assert "时间戳" in ts.signing_cert.subject.human_friendly
        assert "time_stamping" in ts.signing_cert.extended_key_usage_value.native
    ours = await signing.verify_file(res, out)
    check = next(c for c in ours.signatures[0].checks if c.name == "timestamp")
    assert ours.valid and check.verdict == "pass" and "时间戳" in check.detail, check
    report = pdfsig(out)
    assert "Signature is Valid." in report, report

    # One byte of the TSA's signature changed (the token is an unsigned attribute: the seal's own signature stays
    # good): pyHanko and ours report the timestamp failed.
    bad = tmp_path / "ts-bad.pdf"
    bad.write_bytes(_flip_in_timestamp(out.read_bytes()))
    with bad.open("rb") as f:
        emb = PdfFileReader(f, strict=False).embedded_signatures[0]
        vc = ValidationContext(trust_roots=[x509.Certificate.load(root)], allow_fetching=False)
        status = await async_validate_pdf_signature(emb, signer_validation_context=vc)
        assert status.intact and status.valid
        assert status.timestamp_validity is not None and not status.timestamp_validity.valid
    broken = await signing.verify_file(res, bad)
    check = next(c for c in broken.signatures[0].checks if c.name == "timestamp")
    assert not broken.valid and check.verdict == "fail" and "does not verify" in check.detail, check
    # And a one-byte change in the document breaks everything, as without a timestamp.
    flip_byte(out, bad)
    assert "Signature is Valid." not in pdfsig(bad)
    assert not (await signing.verify_file(res, bad)).valid


def _flip_in_timestamp(pdf: bytes) -> bytes:
    """The PDF with the last byte of the timestamp token's signature value flipped inside /Contents."""
    start = pdf.index(b"/Contents <") + len(b"/Contents <")
    end = pdf.index(b">", start)
    hex_text = pdf[start:end]
    der = bytes.fromhex(hex_text.decode())
    signed = cms.ContentInfo.load(der.rstrip(b"\0"))
    attrs = signed["content"]["signer_infos"][0]["unsigned_attrs"]
    token = next(a for a in attrs if a["type"].native == "signature_time_stamp_token")["values"][0]
    tsa_sig = bytes(token["content"]["signer_infos"][0]["signature"].native)
    at = der.index(tsa_sig) + len(tsa_sig) - 1
    changed = bytearray(der)
    changed[at] ^= 0x01
    new_hex = changed.hex().encode()
    new_hex = new_hex.upper() if hex_text.isupper() else new_hex
    return pdf[:start] + new_hex + pdf[end:]


async def test_pades_ecdsa_passes_pdfsig_pyhanko_and_ours_and_one_byte_breaks_all(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局相城分局")
    src = make_pdf(tmp_path / "in.pdf", lines=("特此证明。",))
    out = tmp_path / "ecdsa.pdf"
    position = [SignPosition(seal_code=b.seal.code or "", x=300, y=560)]
    await signing.sign_file(res, src, out, position, app_code=b.app_code, algorithm="pades-ecdsa")
    with out.open("rb") as f:
        sig = PdfFileReader(f, strict=False).embedded_signatures[0]
        assert sig.signer_cert.serial_number == int(b.ec.serial or 0)
        assert sig.signer_cert.public_key.algorithm == "ec"
        assert sig.signer_info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"

    report = pdfsig(out)
    assert report.count("Signature is Valid.") == 1 and "ECDSA" in report.upper(), report
    root = (await ca.chain_of(res, "ec-issuing"))[-1]
    assert root == (await ca.chain_of(res, "rsa-issuing"))[-1]  # ec-issuing hangs under the RSA root
    assert await pyhanko_ok(out, root)
    ours = await signing.verify_file(res, out)
    assert ours.valid and ours.signatures[0].kind == "pades", ours

    bad = tmp_path / "ecdsa-bad.pdf"
    flip_byte(out, bad)
    assert "Signature is Valid." not in pdfsig(bad)
    assert not await pyhanko_ok(bad, root)
    assert not (await signing.verify_file(res, bad)).valid


def _gmssl_verify(cert: x509.Certificate, doc: ses.SESSignature) -> bool | None:
    """Pure-Python gmssl's verdict from the embedded certificate's public key only; None when gmssl itself breaks
    (about one signature in 300 makes its point arithmetic raise TypeError or an odd-length hex error — a gmssl
    bug, not a verdict)."""
    xy = SM2PublicKey.from_der(cert.public_key.dump()).to_uncompressed()[1:].hex()
    crypt = gm_sm2.CryptSM2(private_key="", public_key=xy, mode=1)
    signature = der_to_raw(ses.bit_bytes(doc["signature"])).hex()
    try:
        return bool(crypt.verify_with_sm3(signature, doc["to_sign"].dump()))
    except (TypeError, ValueError, binascii.Error):
        return None


async def test_sm2_ses_signature_verifies_with_gmssl(res: Resources, stack: Stack, tmp_path: Path) -> None:
    b = await bureau(res, "苏州市公安局姑苏分局")
    src = make_pdf(tmp_path / "in.pdf", lines=("本证明由苏州市公安", "局姑苏分局出具。"))
    out = tmp_path / "sm2.pdf"
    verdict: bool | None = None
    for _ in range(3):  # a new signature (new random k) only when gmssl broke on the last one; False fails at once
        await signing.sign_file(
            res,
            src,
            out,
            [SignPosition(seal_code=b.seal.code or "", keyword="苏州市公安局姑苏分局")],
            app_code=b.app_code,
            algorithm="sm2",
        )
        with out.open("rb") as f:
            reader = PdfFileReader(f, strict=False)
            sig = reader.root["/AcroForm"]["/Fields"][0].get_object()["/V"].get_object()
            assert str(sig["/SubFilter"]) == pdfsign.SM2_SUBFILTER
            contents = bytes(sig["/Contents"])
            byte_range = [int(v) for v in sig["/ByteRange"]]
        doc = ses.SESSignature.load(contents.rstrip(b"\0"))
        cert = x509.Certificate.load(bytes(doc["cert"].native))
        assert cert.serial_number == int(b.sm2.serial or 0)
        verdict = _gmssl_verify(cert, doc)
        if verdict is not None:
            break
    assert verdict is True
    # dataHash is SM3 of the byte ranges, as gmssl computes it too.
    from gmssl import func
    from gmssl import sm3 as gm_sm3

    raw = out.read_bytes()
    signed = raw[: byte_range[1]] + raw[byte_range[2] : byte_range[2] + byte_range[3]]
    assert bytes.fromhex(gm_sm3.sm3_hash(func.bytes_to_list(signed))) == ses.bit_bytes(doc["to_sign"]["data_hash"])
    # The seal inside carries the impression and the maker's valid signature.
    assert ses.seal_signature_valid(doc["to_sign"]["eseal"].dump())
    ours = await signing.verify_file(res, out)
    assert ours.valid and ours.signatures[0].kind == "sm2-ses", [
        c for c in ours.signatures[0].checks if c.verdict == "fail"
    ]
    bad = tmp_path / "sm2-bad.pdf"
    flip_byte(out, bad)
    tampered = await signing.verify_file(res, bad)
    assert not tampered.valid
    assert [c.verdict for c in tampered.signatures[0].checks if c.name == "integrity"] == ["fail"]


async def test_revoked_certificate_and_suspended_seal_are_reported(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局吴中分局")
    src = make_pdf(tmp_path / "in.pdf")
    signed = {}
    for algorithm in ("pades", "sm2"):
        signed[algorithm] = tmp_path / f"{algorithm}.pdf"
        await signing.sign_file(
            res,
            src,
            signed[algorithm],
            [SignPosition(seal_code=b.seal.code or "", x=100, y=100)],
            app_code=b.app_code,
            algorithm=algorithm,
        )
        assert (await signing.verify_file(res, signed[algorithm])).valid

    await seals.suspend(res, b.seal.id, actor="admin")
    for path in signed.values():
        result = await signing.verify_file(res, path)
        check = next(c for c in result.signatures[0].checks if c.name == "seal_validity")
        assert not result.valid and check.verdict == "fail" and "suspended" in check.detail
    await seals.resume(res, b.seal.id, actor="admin")

    await ca.revoke(res, b.rsa.id, actor="admin", reason="key_compromise")
    await ca.revoke(res, b.sm2.id, actor="admin", reason="key_compromise")
    for path in signed.values():
        result = await signing.verify_file(res, path)
        check = next(c for c in result.signatures[0].checks if c.name == "certificate")
        assert not result.valid and check.verdict == "fail" and "revoked (key_compromise)" in check.detail, result
    # The published CRL lists both, and is signed by its CA.
    from asn1crypto import crl as acrl

    from eseal import x509build

    der = await ca.crl(res, "rsa-issuing")
    issuing = (await ca.chain_of(res, "rsa-issuing"))[0]
    assert x509build.crl_signed_by(der, x509build.spki_of(issuing))
    listed = {
        e["user_certificate"].native for e in acrl.CertificateList.load(der)["tbs_cert_list"]["revoked_certificates"]
    }
    assert int(b.rsa.serial or 0) in listed
    row = await repo.seal_by_code(res.db, b.seal.code or "")
    assert row is not None and row["status"] == "published"


def test_keyword_broken_across_lines_is_found(tmp_path: Path) -> None:
    src = make_pdf(tmp_path / "kw.pdf", lines=("本证明由苏州市公安", "局出具，特此证明。"))
    with src.open("rb") as f:
        hits = pdftext.find_keyword(f, "苏州市公安局")
    assert [(h.page, round(h.x), round(h.y)) for h in hits] == [
        (0, 72, 760),
        (0, 128, 720),
    ]  # the heading, then the broken one
