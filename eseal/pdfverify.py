"""Verifying a sealed PDF: the eight checks per signature, for PAdES (pyhanko) and GB/T 38540 SM2 signatures.

1 format, 2 signature value, 3 certificate–seal match, 4 seal validity, 5 certificate chain / validity /
revocation, 6 signing time within the certificate's validity, 7 document integrity (byte range covers the file
and hashes right), 8 timestamp. Every check gets pass / fail / warn / absent and a detail; a signature is valid
when none failed. The file is read from disk in chunks (never whole) except by pyhanko's own parser.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections import OrderedDict
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

from eseal import pdffast, pdfsign, ses, x509build
from eseal.models import Check, SignatureReport, VerifyResult

pdffast.install()
PADES_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached"}
# A verdict is a function of (document bytes, trust material, seal states) and of the clock only through
# "now"; reuse it for a minute. Bounded, per process.
RESULT_TTL = 60.0
RESULT_CACHE_SIZE = 1024
VC_TTL = 60.0


@dataclass
class Trust:
    """What the verifier trusts and knows: roots by priority, intermediates, current CRLs, seal states by code."""

    roots: list[bytes]
    intermediates: list[bytes]
    crls: list[bytes]
    seals: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> {status, valid_to, cert_serials, name}

    def anchors_key(self) -> str:
        """Identifies the roots, intermediates and CRLs (what pyhanko's ValidationContext is built from)."""
        h = hashlib.sha256()
        for group in (self.roots, self.intermediates, self.crls):
            h.update(len(group).to_bytes(4, "big"))
            for der in group:
                h.update(hashlib.sha256(der).digest())
        return h.hexdigest()

    def key(self) -> str:
        """Identifies everything a verdict depends on besides the document."""
        seals = sorted(
            (code, str(v.get("status")), str(v.get("valid_to")), str(v.get("name")), sorted(v.get("cert_serials", ())))
            for code, v in self.seals.items()
        )
        return hashlib.sha256(f"{self.anchors_key()}|{seals!r}".encode()).hexdigest()


class _Ttl:
    """A small LRU whose entries also expire (results and validation contexts)."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size, self.ttl = size, ttl
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


_results = _Ttl(RESULT_CACHE_SIZE, RESULT_TTL)
_contexts = _Ttl(8, VC_TTL)  # anchors -> (trust manager, certificate registry, revocation manager)
_paths = _Ttl(4096, 3600.0)  # (cert, anchors) -> certificates up to a trusted root, signatures checked
_revocations = _Ttl(4096, 3600.0)  # (cert, CRLs) -> revocation reason or None
_inflight: dict[tuple[str, str], asyncio.Future[VerifyResult]] = {}


def clear_caches() -> None:
    for cache in (_results, _contexts, _paths, _revocations):
        cache.clear()


def _validation_context(trust: Trust) -> ValidationContext:
    """A fresh context per verification (its validation time is fixed when it is made), sharing the trust
    manager, certificate registry and revocation manager built once per trust material: building those (CRLs
    indexed, roots registered) was a third of a verification, and the revocation manager keeps its checked CRLs."""
    key = trust.anchors_key()
    parts = _contexts.get(key)
    if parts is None:
        base = ValidationContext(
            trust_roots=[x509.Certificate.load(r) for r in trust.roots],
            other_certs=[x509.Certificate.load(i) for i in trust.intermediates],
            crls=[acrl.CertificateList.load(c) for c in trust.crls],
            allow_fetching=False,
            revocation_mode="soft-fail",
        )
        parts = (base.path_builder.trust_manager, base.certificate_registry, base.revinfo_manager)
        _contexts.put(key, parts)
    trust_manager, registry, revinfo = parts
    return ValidationContext(
        trust_manager=trust_manager,
        certificate_registry=registry,
        revinfo_manager=revinfo,
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


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
    key = (hashlib.sha256(cert.dump()).digest(), trust.anchors_key())
    hit = _revocations.get(key)
    if hit is None:
        hit = (_revoked_uncached(trust, cert),)
        _revocations.put(key, hit)
    reason: str | None = hit[0]
    return reason


def _revoked_uncached(trust: Trust, cert: x509.Certificate) -> str | None:
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
    key = (hashlib.sha256(cert_der).digest(), trust.anchors_key())
    found = _paths.get(key)
    if found is None:
        found = _path(trust, cert)
        _paths.put(key, found)
    if isinstance(found, str):
        return "fail", found
    for c in found:
        validity = c["tbs_certificate"]["validity"]
        if not validity["not_before"].native <= at <= validity["not_after"].native:
            return "fail", f"{c.subject.human_friendly} not valid at {at.isoformat()}"
    reason = _revoked(trust, cert)
    if reason == "certificate_hold":
        return "fail", "certificate suspended (on hold)"
    if reason is not None:
        return "fail", f"certificate revoked ({reason})"
    return "pass", f"chains to a trusted root, serial {cert.serial_number}, not revoked"


def _path(trust: Trust, cert: x509.Certificate) -> list[x509.Certificate] | str:
    """The certificates from `cert` up to (not including) a trusted root, each signature checked; else why not."""
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
            return f"no trusted chain for {cert.subject.human_friendly}"
        current = parent
        path.append(parent)
    else:
        return "chain too long"
    return path


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
    vc = _validation_context(trust)
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
    ts_check, ts_time = _timestamp(status)
    checks.append(_time_check(cert.dump(), ts_time or at))
    coverage = status.coverage.name if status.coverage else "?"
    intact = status.intact and coverage in ("ENTIRE_FILE", "ENTIRE_REVISION")
    detail_i = f"digest {'matches' if status.intact else 'DOES NOT match'}, coverage {coverage}"
    if intact and coverage == "ENTIRE_REVISION":
        level = status.modification_level.name if status.modification_level else "?"
        intact = level in ("NONE", "LTA_UPDATES", "FORM_FILLING")
        detail_i += f", later changes: {level}"
    checks.append(Check("integrity", "pass" if intact else "fail", detail_i))
    checks.append(ts_check)
    return _report(
        field_name, "pades", cert.subject.human_friendly, code, trust.seals.get(code, {}).get("name", ""), at, checks
    )


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
    """Verify a PDF; the same document under the same trust within a minute gets the same (cached) verdict,
    and simultaneous requests for one document wait for a single verification."""
    digest = _sha256_file(stream)
    key = (digest, trust.key())
    hit: VerifyResult | None = _results.get(key)
    if hit is not None:
        return hit
    pending = _inflight.get(key)
    if pending is not None:
        await asyncio.wait([pending])
        if not pending.cancelled() and pending.exception() is None:
            return pending.result()
        # the first verification failed or was cancelled: do our own
    future: asyncio.Future[VerifyResult] = asyncio.get_running_loop().create_future()
    _inflight[key] = future
    try:
        result = await _verify_uncached(stream, trust, digest)
        _results.put(key, result)
        future.set_result(result)
        return result
    finally:
        if not future.done():
            future.cancel()
        if _inflight.get(key) is future:
            del _inflight[key]


async def _verify_uncached(stream: IO[bytes], trust: Trust, digest: str) -> VerifyResult:
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
