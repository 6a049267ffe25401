"""Verifying a sealed PDF: the eight checks per signature, for PAdES (pyhanko) and GB/T 38540 SM2 signatures.

1 format, 2 signature value, 3 certificate–seal match, 4 seal validity, 5 certificate chain / validity /
revocation, 6 signing time within the certificate's validity, 7 document integrity (byte range covers the file
and hashes right), 8 timestamp. Every check gets pass / fail / warn / absent and a detail; a signature is valid
when none failed. The file is read from disk in chunks (never whole) except by pyhanko's own parser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import IO, Any

from asn1crypto import crl as acrl
from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from eseal import pdfsign, ses, x509build
from eseal.models import Check, SignatureReport, VerifyResult

PADES_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached"}


@dataclass
class Trust:
    """What the verifier trusts and knows: roots by priority, intermediates, current CRLs, seal states by code."""

    roots: list[bytes]
    intermediates: list[bytes]
    crls: list[bytes]
    seals: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> {status, valid_to, cert_serials, name}


def _sha256_file(stream: IO[bytes]) -> str:
    h = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(pdfsign.CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _file_size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    return stream.tell()


def _revoked(trust: Trust, cert: x509.Certificate) -> str | None:
    """The revocation reason when a CRL of its issuer lists it (after checking the CRL's signature)."""
    issuer_spki = None
    for der in trust.intermediates + trust.roots:
        c = x509.Certificate.load(der)
        if c.subject == cert.issuer:
            issuer_spki = x509build.spki_of(der)
    if issuer_spki is None:
        return None
    for der in trust.crls:
        doc = acrl.CertificateList.load(der)
        if doc["tbs_cert_list"]["issuer"] != cert.issuer or not x509build.crl_signed_by(der, issuer_spki):
            continue
        for entry in doc["tbs_cert_list"]["revoked_certificates"]:
            if entry["user_certificate"].native == cert.serial_number:
                reason = "unspecified"
                for ext in entry["crl_entry_extensions"]:
                    if ext["extn_id"].native == "crl_reason":
                        reason = ext["extn_value"].native
                return str(reason)
    return None


def _chain(trust: Trust, cert_der: bytes, at: dt.datetime) -> tuple[str, str]:
    """(verdict, detail) for chain to a trusted root, validity at `at`, revocation."""
    cert = x509.Certificate.load(cert_der)
    current, path = cert, [cert]
    for _ in range(5):
        if any(
            x509.Certificate.load(r).subject == current.issuer
            and x509build.cert_signed_by(current.dump(), x509build.spki_of(r))
            for r in trust.roots
        ):
            break
        parent = next(
            (
                x509.Certificate.load(i)
                for i in trust.intermediates
                if x509.Certificate.load(i).subject == current.issuer
            ),
            None,
        )
        if parent is None or not x509build.cert_signed_by(current.dump(), bytes(parent.public_key.dump())):
            return "fail", f"no trusted chain for {cert.subject.human_friendly}"
        current = parent
        path.append(parent)
    else:
        return "fail", "chain too long"
    for c in path:
        validity = c["tbs_certificate"]["validity"]
        if not validity["not_before"].native <= at <= validity["not_after"].native:
            return "fail", f"{c.subject.human_friendly} not valid at {at.isoformat()}"
    reason = _revoked(trust, cert)
    if reason == "certificate_hold":
        return "fail", "certificate suspended (on hold)"
    if reason is not None:
        return "fail", f"certificate revoked ({reason})"
    return "pass", f"chains to a trusted root, serial {cert.serial_number}, not revoked"


def _seal_state(trust: Trust, code: str, serial: int, at: dt.datetime) -> tuple[Check, Check]:
    known = trust.seals.get(code)
    if known is None:
        return (
            Check("cert_seal_match", "fail", f"seal {code or '?'} unknown here"),
            Check("seal_validity", "fail", f"seal {code or '?'} not registered"),
        )
    match = (
        Check("cert_seal_match", "pass", f"certificate {serial} is bound to seal {code}")
        if str(serial) in known["cert_serials"]
        else Check("cert_seal_match", "fail", f"certificate {serial} is not bound to seal {code}")
    )
    status = known["status"]
    if status != "published":
        validity = Check("seal_validity", "fail", f"seal {code} is {status}")
    elif known["valid_to"] is not None and known["valid_to"] < at:
        validity = Check("seal_validity", "fail", f"seal {code} expired {known['valid_to'].isoformat()}")
    else:
        validity = Check("seal_validity", "pass", f"seal {code} published and in its validity")
    return match, validity


def _time_check(cert_der: bytes, at: dt.datetime | None) -> Check:
    if at is None:
        return Check("signing_time", "warn", "no signing time given")
    validity = x509.Certificate.load(cert_der)["tbs_certificate"]["validity"]
    if validity["not_before"].native <= at <= validity["not_after"].native:
        return Check("signing_time", "pass", f"signed {at.isoformat()} within the certificate's validity")
    return Check("signing_time", "fail", f"signed {at.isoformat()} outside the certificate's validity")


def _report(
    field_name: str, kind: str, signer: str, code: str, name: str, at: dt.datetime | None, checks: list[Check]
) -> SignatureReport:
    return SignatureReport(
        field=field_name,
        kind=kind,  # type: ignore[arg-type]
        signer=signer,
        seal_code=code,
        seal_name=name,
        signed_at=at.isoformat() if at else "",
        valid=all(c.verdict != "fail" for c in checks),
        checks=checks,
    )


async def _verify_pades(emb: Any, trust: Trust, sig_obj: Any) -> SignatureReport:
    field_name = emb.field_name
    reason = str(sig_obj.get("/Reason", ""))
    code = reason.rsplit(" ", 1)[-1] if reason else ""
    checks: list[Check] = [Check("format", "pass", f"PAdES {sig_obj.get('/SubFilter')}, CMS SignedData")]
    vc = ValidationContext(
        trust_roots=[x509.Certificate.load(r) for r in trust.roots],
        other_certs=[x509.Certificate.load(i) for i in trust.intermediates],
        crls=[acrl.CertificateList.load(c) for c in trust.crls],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        status = await async_validate_pdf_signature(emb, signer_validation_context=vc)
    except Exception as exc:  # a broken CMS or byte range: report, do not crash
        return _report(
            field_name,
            "pades",
            "",
            code,
            "",
            None,
            [Check("format", "fail", f"unreadable signature: {type(exc).__name__}")],
        )
    cert = status.signing_cert
    at = status.signer_reported_dt
    checks.append(
        Check(
            "signature",
            "pass" if status.valid else "fail",
            "CMS signature value verifies" if status.valid else "signature value does not verify",
        )
    )
    match, validity = _seal_state(trust, code, cert.serial_number, at or dt.datetime.now(dt.UTC))
    checks += [match, validity]
    verdict, detail = _chain(trust, cert.dump(), at or dt.datetime.now(dt.UTC))
    if verdict == "pass" and status.intact and not status.trusted:  # a bad digest is "integrity", not trust
        verdict, detail = "fail", f"pyhanko path validation: {status.trust_problem_indic}"
    checks.append(Check("certificate", verdict, detail))  # type: ignore[arg-type]
    checks.append(_time_check(cert.dump(), at))
    coverage = status.coverage.name if status.coverage else "?"
    intact = status.intact and coverage in ("ENTIRE_FILE", "ENTIRE_REVISION")
    detail_i = f"digest {'matches' if status.intact else 'DOES NOT match'}, coverage {coverage}"
    if intact and coverage == "ENTIRE_REVISION":
        level = status.modification_level.name if status.modification_level else "?"
        intact = level in ("NONE", "LTA_UPDATES", "FORM_FILLING")
        detail_i += f", later changes: {level}"
    checks.append(Check("integrity", "pass" if intact else "fail", detail_i))
    checks.append(_timestamp(status))
    return _report(
        field_name, "pades", cert.subject.human_friendly, code, trust.seals.get(code, {}).get("name", ""), at, checks
    )


def _timestamp(status: PdfSignatureStatus) -> Check:
    ts = getattr(status, "timestamp_validity", None)
    if ts is None:
        return Check("timestamp", "absent", "no RFC 3161 timestamp (signing time is the signer's claim)")
    return Check("timestamp", "pass" if ts.valid and ts.intact else "fail", f"timestamp {ts.timestamp.isoformat()}")


def _verify_ses(field_name: str, sig_obj: Any, stream: IO[bytes], trust: Trust) -> SignatureReport:
    code = str(sig_obj.get("/ESealCode", ""))
    contents = bytes(sig_obj["/Contents"])
    try:
        doc = ses.SESSignature.load(contents.rstrip(b"\0") if contents.endswith(b"\0\0") else contents)
        tbs = doc["to_sign"]
        seal = tbs["eseal"]
        cert_der = bytes(doc["cert"].native)
        at = tbs["time_info"].native
        seal_der = bytes(seal.dump())
        x509.Certificate.load(cert_der).subject  # noqa: B018 - parse now, fail as "format"
        version = tbs["version"].native
    except (ValueError, TypeError, KeyError) as exc:
        return _report(
            field_name,
            "sm2-ses",
            "",
            code,
            "",
            None,
            [Check("format", "fail", f"not a GB/T 38540 SES_Signature: {exc}")],
        )
    checks = [Check("format", "pass" if version == 4 else "warn", f"GB/T 38540 SES_Signature v{version}")]
    good = ses.signature_valid(doc.dump())
    checks.append(
        Check(
            "signature",
            "pass" if good else "fail",
            "SM2 signature over TBS_Sign verifies" if good else "SM2 signature does not verify",
        )
    )
    cert = x509.Certificate.load(cert_der)
    seal_certs = [bytes(c.native) for c in seal["e_seal_info"]["property"]["cert_list"]]
    es_id = seal["e_seal_info"]["es_id"].native
    code = code or es_id
    match, validity = _seal_state(trust, code, cert.serial_number, at)
    if cert_der not in seal_certs:
        match = Check("cert_seal_match", "fail", "signer certificate not in the seal's certificate list")
    maker_ok = ses.seal_signature_valid(seal_der)
    maker_chain, maker_detail = _chain(trust, bytes(seal["cert"].native), at)
    if not maker_ok:
        validity = Check("seal_validity", "fail", "seal maker's signature over SES_Seal does not verify")
    elif maker_chain != "pass":
        validity = Check("seal_validity", "fail", f"seal maker certificate: {maker_detail}")
    prop = seal["e_seal_info"]["property"]
    if validity.verdict == "pass" and not prop["valid_start"].native <= at <= prop["valid_end"].native:
        validity = Check("seal_validity", "fail", "signed outside the seal's validity")
    checks += [match, validity]
    verdict, detail = _chain(trust, cert_der, at)
    checks.append(Check("certificate", verdict, detail))  # type: ignore[arg-type]
    checks.append(_time_check(cert_der, at))
    checks.append(_ses_integrity(sig_obj, stream, ses.bit_bytes(tbs["data_hash"])))
    checks.append(
        Check("timestamp", "absent", "no timestamp token in SES_Signature")
        if not doc["time_stamp"].native
        else Check("timestamp", "warn", "timestamp token present, not checked")
    )
    return _report(
        field_name,
        "sm2-ses",
        cert.subject.human_friendly,
        code,
        seal["e_seal_info"]["property"]["name"].native,
        at,
        checks,
    )


def _ses_integrity(sig_obj: Any, stream: IO[bytes], data_hash: bytes) -> Check:
    byte_range = [int(v) for v in sig_obj["/ByteRange"]]
    size = _file_size(stream)
    if len(byte_range) != 4 or byte_range[0] != 0:
        return Check("integrity", "fail", "malformed /ByteRange")
    start, end = byte_range[1], byte_range[2]
    covered = byte_range[2] + byte_range[3]
    actual = pdfsign.sm3_ranges(stream, start, end, covered)
    if actual != data_hash:
        return Check("integrity", "fail", "SM3 of the signed bytes differs from dataHash: document changed")
    if covered != size:
        return Check("integrity", "warn", f"signed bytes intact; {size - covered} bytes appended later")
    return Check("integrity", "pass", "SM3 over the byte range equals dataHash; range covers the file")


async def verify_stream(stream: IO[bytes], trust: Trust) -> VerifyResult:
    digest = _sha256_file(stream)
    stream.seek(0)
    try:
        reader = PdfFileReader(stream, strict=False)
        fields = list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as exc:  # not a PDF at all
        report = _report("", "unknown", "", "", "", None, [Check("format", "fail", f"not a readable PDF: {exc}")])
        return VerifyResult(document_sha256=digest, signatures=[report], valid=False)
    reports: list[SignatureReport] = []
    for name, value, field_ref in fields:
        sig_obj = value.get_object() if value is not None else None
        if sig_obj is None:
            continue
        subfilter = str(sig_obj.get("/SubFilter", ""))
        if subfilter == pdfsign.SM2_SUBFILTER:
            reports.append(_verify_ses(name, sig_obj, stream, trust))
        elif subfilter in PADES_SUBFILTERS:
            emb = EmbeddedPdfSignature(reader, field_ref.get_object(), name)
            reports.append(await _verify_pades(emb, trust, sig_obj))
        else:
            reports.append(
                _report(
                    name, "unknown", "", "", "", None, [Check("format", "fail", f"unsupported /SubFilter {subfilter}")]
                )
            )
    if not reports:
        reports.append(_report("", "unknown", "", "", "", None, [Check("format", "fail", "no signature found")]))
    return VerifyResult(document_sha256=digest, signatures=reports, valid=all(r.valid for r in reports))
