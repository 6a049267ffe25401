"""Verifying a sealed PDF: the eight checks per signature, for PAdES (pyhanko) and GB/T 38540 SM2 signatures.

1 format, 2 signature value, 3 certificate–seal match, 4 seal validity, 5 certificate chain / validity /
revocation, 6 signing time within the certificate's validity, 7 document integrity (byte range covers the file
and hashes right), 8 timestamp. Every check gets pass / fail / warn / absent and a detail; a signature is valid
when none failed. The file is read from disk in chunks (never whole) except by pyhanko's own parser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import IO, Any

from asn1crypto import cms, x509
from pyhanko.pdf_utils.generic import parse_pdf_date
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus

from eseal import checks, pdffast, pdfsign, x509build
from eseal.checks import Trust, chain, report, seal_state, time_check, validation_context
from eseal.checks import clear_caches as clear_caches  # re-exported: tests and the bench clear them here
from eseal.models import Check, SignatureReport, VerifyResult

pdffast.install()
PADES_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached"}


def _sha256_file(stream: IO[bytes]) -> str:
    h = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(pdfsign.CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _file_size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    return stream.tell()


async def _verify_pades(emb: Any, trust: Trust, sig_obj: Any) -> SignatureReport:
    field_name = emb.field_name
    reason = str(sig_obj.get("/Reason", ""))
    code = reason.rsplit(" ", 1)[-1] if reason else ""
    checks: list[Check] = [Check("format", "pass", f"PAdES {sig_obj.get('/SubFilter')}, CMS SignedData")]
    vc = validation_context(trust)
    try:
        status = await async_validate_pdf_signature(emb, signer_validation_context=vc)
    except Exception as exc:  # a broken CMS or byte range: report, do not crash
        return report(
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
    match, validity = seal_state(trust, code, cert.serial_number, at or dt.datetime.now(dt.UTC))
    checks += [match, validity]
    verdict, detail = chain(trust, cert.dump(), at or dt.datetime.now(dt.UTC))
    if verdict == "pass" and status.intact and not status.trusted:  # a bad digest is "integrity", not trust
        verdict, detail = "fail", f"pyhanko path validation: {status.trust_problem_indic}"
    checks.append(Check("certificate", verdict, detail))  # type: ignore[arg-type]
    ts_check, ts_time = _timestamp(status)
    checks.append(time_check(cert.dump(), ts_time or at))
    coverage = status.coverage.name if status.coverage else "?"
    intact = status.intact and coverage in ("ENTIRE_FILE", "ENTIRE_REVISION")
    detail_i = f"digest {'matches' if status.intact else 'DOES NOT match'}, coverage {coverage}"
    if intact and coverage == "ENTIRE_REVISION":
        level = status.modification_level.name if status.modification_level else "?"
        intact = level in ("NONE", "LTA_UPDATES", "FORM_FILLING")
        detail_i += f", later changes: {level}"
    checks.append(Check("integrity", "pass" if intact else "fail", detail_i))
    checks.append(ts_check)
    return report(
        field_name, "pades", cert.subject.human_friendly, code, trust.seals.get(code, {}).get("name", ""), at, checks
    )


def _hash_ranges(stream: IO[bytes], name: str, byte_range: list[int]) -> bytes | None:
    """The digest `name` over the two byte ranges, streamed in chunks (never the whole file in memory)."""
    try:
        h = hashlib.new(name)
    except ValueError:
        return None
    for offset, length in ((byte_range[0], byte_range[1]), (byte_range[2], byte_range[3])):
        stream.seek(offset)
        while length > 0 and (chunk := stream.read(min(pdfsign.CHUNK, length))):
            h.update(chunk)
            length -= len(chunk)
    return h.digest()


def _covers_whole_file(stream: IO[bytes], sig_obj: Any) -> list[int] | None:
    """The /ByteRange when it covers the whole file but for exactly the /Contents hex string (what pyhanko calls
    ENTIRE_FILE coverage); else None (then pyhanko's diff analysis of later revisions decides)."""
    try:
        byte_range = [int(v) for v in sig_obj["/ByteRange"]]
    except (KeyError, TypeError, ValueError):
        return None
    if len(byte_range) != 4 or byte_range[0] != 0 or byte_range[1] <= 0:
        return None
    hole_start, hole_end = byte_range[1], byte_range[2]
    if hole_end <= hole_start + 1 or byte_range[2] + byte_range[3] != _file_size(stream):
        return None
    stream.seek(hole_start)
    hole = stream.read(hole_end - hole_start)
    if hole[:1] != b"<" or hole[-1:] != b">":
        return None
    try:
        contents = bytes.fromhex(hole[1:-1].decode("ascii"))
    except ValueError:
        return None
    signature = bytes(sig_obj["/Contents"])
    if contents.rstrip(b"\0") != signature.rstrip(b"\0"):
        return None
    return byte_range


def _pdf_time(sig_obj: Any) -> dt.datetime | None:
    """The signer's claimed time: /M of the signature dictionary (PAdES leaves signingTime out of the CMS)."""
    try:
        return parse_pdf_date(str(sig_obj["/M"]), strict=False) if "/M" in sig_obj else None
    except (ValueError, TypeError):
        return None


def _signing_certificate_bound(values: dict[str, Any], cert_der: bytes, subfilter: str) -> str | None:
    """None when the signed attributes bind the signer certificate (ESS signing-certificate(-v2), RFC 5035; PAdES
    baseline, ETSI EN 319 142-1, requires the v2 attribute for ETSI.CAdES.detached), else why not: without the
    binding a certificate with the same key could be substituted."""
    ess = values.get("signing_certificate_v2") or values.get("signing_certificate")
    if ess is None:
        return "no ESS signing-certificate-v2 attribute" if subfilter == "/ETSI.CAdES.detached" else None
    try:
        first = ess["certs"][0]
        algorithm = first["hash_algorithm"]["algorithm"].native if "hash_algorithm" in first else "sha1"
        if hashlib.new(algorithm, cert_der).digest() != bytes(first["cert_hash"].native):
            return "the ESS signing-certificate attribute names another certificate"
        issuer_serial = first["issuer_serial"]
        if issuer_serial.native is not None:
            cert = x509.Certificate.load(cert_der)
            names = [n.chosen for n in issuer_serial["issuer"] if n.name == "directory_name"]
            if issuer_serial["serial_number"].native != cert.serial_number or cert.issuer not in names:
                return "the ESS signing-certificate attribute's issuer and serial are not the signer's"
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "the ESS signing-certificate attribute cannot be read"
    return None


async def _verify_pades_fast(
    field_name: str, sig_obj: Any, stream: IO[bytes], byte_range: list[int], trust: Trust
) -> SignatureReport | None:
    """The eight checks of a CMS signature that covers the whole file, done here: the signed attributes' digest
    over the byte ranges (streamed), the signer's signature over them, the chain and revocation through the cached
    per-trust paths and CRLs (checks.chain), the RFC 3161 signature timestamp like an SES one. None: a form this
    does not handle (then pyhanko validates it)."""
    reason = str(sig_obj.get("/Reason", ""))
    code = reason.rsplit(" ", 1)[-1] if reason else ""
    try:
        info = cms.ContentInfo.load(bytes(sig_obj["/Contents"]).rstrip(b"\0") or b"\0")
        signed = info["content"]
        if info["content_type"].native != "signed_data" or len(signed["signer_infos"]) != 1:
            return None
        signer = signed["signer_infos"][0]
        sid = signer["sid"].chosen
        if not isinstance(sid, cms.IssuerAndSerialNumber):
            return None
        wanted = (sid["serial_number"].native, bytes(sid["issuer"].dump()))
        cert_der = next(
            (
                bytes(c.chosen.dump())
                for c in signed["certificates"]
                if c.name == "certificate" and (c.chosen.serial_number, bytes(c.chosen.issuer.dump())) == wanted
            ),
            None,
        )
        attrs = signer["signed_attrs"]
        if cert_der is None or not attrs:
            return None
        values = {a["type"].native: a["values"][0] for a in attrs}
        digest_name = signer["digest_algorithm"]["algorithm"].native
        signature = bytes(signer["signature"].native)
        spki = x509build.spki_of(cert_der)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if "message_digest" not in values or "content_type" not in values:
        return None
    checks_: list[Check] = [Check("format", "pass", f"PAdES {sig_obj.get('/SubFilter')}, CMS SignedData")]
    good = checks._token_signature_ok(spki, signer, b"\x31" + bytes(attrs.dump())[1:])
    bound = _signing_certificate_bound(values, cert_der, str(sig_obj.get("/SubFilter", "")))
    checks_.append(
        Check(
            "signature",
            "pass" if good and bound is None else "fail",
            "signature value does not verify" if not good else bound or "CMS signature value verifies",
        )
    )
    at = values["signing_time"].native if "signing_time" in values else _pdf_time(sig_obj)
    ts_check: Check
    ts_time: dt.datetime | None
    unsigned = {a["type"].native: a["values"][0] for a in (signer["unsigned_attrs"] or [])}
    token = unsigned.get("signature_time_stamp_token")
    if token is None:
        ts_check, ts_time = (
            Check("timestamp", "absent", "no RFC 3161 timestamp (signing time is the signer's claim)"),
            None,
        )
    else:
        ts_check, ts_time = await checks.ses_timestamp(bytes(token.dump()), signature, trust)
    when = ts_time or at or dt.datetime.now(dt.UTC)
    serial = int(wanted[0])
    match, validity = seal_state(trust, code, serial, when)
    checks_ += [match, validity]
    verdict, detail = chain(trust, cert_der, when)
    checks_.append(Check("certificate", verdict, detail))  # type: ignore[arg-type]
    checks_.append(time_check(cert_der, ts_time or at))
    digest = _hash_ranges(stream, digest_name, byte_range)
    intact = (
        digest is not None
        and bytes(values["message_digest"].native) == digest
        and values["content_type"].native == "data"
    )
    detail_i = f"digest {'matches' if intact else 'DOES NOT match'}, coverage ENTIRE_FILE"
    checks_.append(Check("integrity", "pass" if intact else "fail", detail_i))
    checks_.append(ts_check)
    name = trust.seals.get(code, {}).get("name", "")
    return report(field_name, "pades", checks.subject_name(cert_der), code, name, at, checks_)


def _timestamp(status: PdfSignatureStatus) -> tuple[Check, dt.datetime | None]:
    """The signature timestamp's check, and its time when it is good (then it, not the signer's claim, is the
    signing time checked against the certificate's validity)."""
    ts = getattr(status, "timestamp_validity", None)
    if ts is None:
        return Check("timestamp", "absent", "no RFC 3161 timestamp (signing time is the signer's claim)"), None
    tsa = ts.signing_cert.subject.human_friendly if ts.signing_cert is not None else "?"
    when = ts.timestamp.isoformat()
    if not ts.intact or not ts.valid:
        return Check("timestamp", "fail", f"timestamp token of {tsa} does not verify over the signature"), None
    if not ts.trusted:
        problem = ts.trust_problem_indic.name if ts.trust_problem_indic else "untrusted"
        return Check("timestamp", "fail", f"TSA {tsa} not trusted ({problem}), time {when}"), None
    return Check("timestamp", "pass", f"RFC 3161 timestamp {when} by {tsa}"), ts.timestamp


async def _verify_ses(field_name: str, sig_obj: Any, stream: IO[bytes], trust: Trust) -> SignatureReport:
    contents = bytes(sig_obj["/Contents"])
    return await checks.ses_report(
        contents,
        trust,
        lambda doc: _ses_integrity(sig_obj, stream, doc.data_hash),
        field_name=field_name,
        code=str(sig_obj.get("/ESealCode", "")),
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


Parsed = tuple[Any, list[Any]] | Exception  # (reader, signature fields), or why the file is not a readable PDF


def parse(stream: IO[bytes]) -> Parsed:
    """The PDF's signature fields, read once for the seal lookup and the verification."""
    stream.seek(0)
    try:
        reader = PdfFileReader(stream, strict=False)
        return reader, list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as exc:  # not a PDF at all
        return exc


def seal_codes(parsed: Parsed) -> set[str]:
    """The seal codes the signatures name (/ESealCode, or the last word of /Reason)."""
    codes: set[str] = set()
    if isinstance(parsed, Exception):
        return codes
    try:
        for _name, value, _ref in parsed[1]:
            sig = value.get_object()
            if "/ESealCode" in sig:
                codes.add(str(sig["/ESealCode"]))
            reason = str(sig.get("/Reason", ""))
            if reason:
                codes.add(reason.rsplit(" ", 1)[-1])
    except Exception:  # an unreadable dictionary is reported by the verification itself
        return codes
    return codes


async def verify_stream(stream: IO[bytes], trust: Trust, parsed: Parsed | None = None) -> VerifyResult:
    """Verify a PDF (`parsed`: its fields already read by `parse`); the same document under the same trust within
    a minute gets the same (cached) verdict, and simultaneous requests for one document wait for a single
    verification."""
    digest = _sha256_file(stream)
    return await checks.cached(digest, trust, lambda: _verify_uncached(stream, trust, digest, parsed))


async def _verify_uncached(stream: IO[bytes], trust: Trust, digest: str, parsed: Parsed | None) -> VerifyResult:
    if parsed is None:
        parsed = parse(stream)
    if isinstance(parsed, Exception):
        failed = report("", "unknown", "", "", "", None, [Check("format", "fail", f"not a readable PDF: {parsed}")])
        return VerifyResult(document_sha256=digest, signatures=[failed], valid=False)
    reader, fields = parsed
    reports: list[SignatureReport] = []
    for name, value, field_ref in fields:
        sig_obj = value.get_object() if value is not None else None
        if sig_obj is None:
            continue
        subfilter = str(sig_obj.get("/SubFilter", ""))
        if subfilter == pdfsign.SM2_SUBFILTER:
            reports.append(await _verify_ses(name, sig_obj, stream, trust))
        elif subfilter in PADES_SUBFILTERS:
            whole = _covers_whole_file(stream, sig_obj)
            fast = await _verify_pades_fast(name, sig_obj, stream, whole, trust) if whole else None
            if fast is None:
                emb = EmbeddedPdfSignature(reader, field_ref.get_object(), name)
                fast = await _verify_pades(emb, trust, sig_obj)
            reports.append(fast)
        else:
            reports.append(
                report(
                    name, "unknown", "", "", "", None, [Check("format", "fail", f"unsupported /SubFilter {subfilter}")]
                )
            )
    if not reports:
        reports.append(report("", "unknown", "", "", "", None, [Check("format", "fail", "no signature found")]))
    return VerifyResult(document_sha256=digest, signatures=reports, valid=all(r.valid for r in reports))
