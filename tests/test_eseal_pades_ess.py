"""The ESS signing-certificate attribute on the direct PAdES path (RFC 5035; ETSI EN 319 142-1): a CMS whose signed
attributes name another certificate than the signer's fails the signature check, though its value verifies. The PDF
and its CMS are made here with pyHanko and a key of the test's own, then the attribute is swapped and the signed
attributes re-signed — so the only defect is the binding."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from asn1crypto import cms, keys, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from eseal import pdfverify
from eseal.checks import Trust
from tests.eseal_helpers import make_pdf


def _cert(name: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


def _signed_pdf(tmp_path: Path, key: rsa.RSAPrivateKey, cert_der: bytes) -> Path:
    src = make_pdf(tmp_path / "plain.pdf")
    signer = signers.SimpleSigner(
        signing_cert=x509.Certificate.load(cert_der),
        signing_key=keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([x509.Certificate.load(cert_der)]),
    )
    out = tmp_path / "signed.pdf"
    with src.open("rb") as f:
        w = IncrementalPdfFileWriter(f, strict=False)
        meta = signers.PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES)
        with out.open("wb") as o:
            signers.sign_pdf(w, meta, signer=signer, output=o)
    return out


def _swap_signing_certificate(path: Path, key: rsa.RSAPrivateKey, other_der: bytes) -> Path:
    """The same PDF with the CMS's signing-certificate-v2 naming `other_der`, the signed attributes re-signed."""
    data = bytearray(path.read_bytes())
    start = data.index(b"/Contents <") + len(b"/Contents <")
    end = data.index(b">", start)
    der = bytes.fromhex(data[start:end].decode()).rstrip(b"\0")
    info = cms.ContentInfo.load(der)
    signer = info["content"]["signer_infos"][0]
    attrs = []
    for a in signer["signed_attrs"]:
        if a["type"].native == "signing_certificate_v2":
            ess = tsp.SigningCertificateV2({"certs": [{"cert_hash": hashlib.sha256(other_der).digest()}]})
            a = cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]})
        attrs.append(a)
    signed_attrs = cms.CMSAttributes(attrs)
    signer["signed_attrs"] = signed_attrs
    to_sign = b"\x31" + signed_attrs.dump(force=True)[1:]
    signer["signature"] = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
    new = info.dump(force=True).hex().encode()
    assert len(new) <= end - start
    data[start:end] = new + b"0" * (end - start - len(new))
    out = path.with_name("swapped.pdf")
    out.write_bytes(bytes(data))
    return out


def _signature_check(path: Path, root: bytes) -> tuple[str, str]:
    trust = Trust(roots=[root], intermediates=[], crls=[])
    pdfverify.clear_caches()
    with path.open("rb") as f:
        result = asyncio.run(pdfverify.verify_stream(f, trust))
    (sig,) = result.signatures
    check = next(c for c in sig.checks if c.name == "signature")
    return check.verdict, check.detail


@pytest.mark.parametrize("swap", [False, True])
def test_signing_certificate_attribute_binds_the_signer(tmp_path: Path, swap: bool) -> None:
    key, cert_der = _cert("ESS 测试签章人")
    _, other_der = _cert("另一证书")
    signed = _signed_pdf(tmp_path, key, cert_der)
    if not swap:
        assert _signature_check(signed, cert_der) == ("pass", "CMS signature value verifies")
        return
    swapped = _swap_signing_certificate(signed, key, other_der)
    verdict, detail = _signature_check(swapped, cert_der)
    assert verdict == "fail" and "signing-certificate" in detail, detail
