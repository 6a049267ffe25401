"""Verifying a sealed or signed OFD: the same eight checks per signature as for PDF (eseal/checks.py).

Each signature listed in Signatures.xml is checked on its own. Integrity (check 7) for signature *i*: every
Reference's file exists and its SM3 equals the CheckValue; Signature.xml hashes to the SES_Signature's dataHash
(type Seal) or carries a signature that verifies over it (type Sign); and no file is in the package that the
signature does not protect, other than Signatures.xml, the signature's own Signature.xml and SignedValue.dat and
the files of signatures listed after it. A failure names the file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import x509
from lxml import etree

from core.crypto import OID_SM3, sm3
from eseal import checks, gbt35275, ofd, ses
from eseal.checks import Trust, chain, report, seal_state, time_check
from eseal.models import Check, SignatureReport, VerifyResult

SM3_NAMES = {OID_SM3, "SM3", "sm3"}


@dataclass
class Record:
    id: str
    type: str  # Seal or Sign
    path: str  # Signature.xml inside the package


def records(pkg: ofd.Package) -> tuple[str | None, list[Record]]:
    path = pkg.signatures_path()
    if path is None or path not in pkg.files:
        return path, []
    out = []
    for el in pkg.xml(path).iterfind("ofd:Signature", ofd.NSMAP):
        out.append(Record(el.get("ID", ""), el.get("Type", "Seal") or "Seal", pkg.resolve(el.get("BaseLoc", ""), path)))
    return path, out


def seal_codes(data: bytes | ofd.Package) -> tuple[set[str], set[int]]:
    """The seal codes (esID) and, for signatures of type Sign, the signer certificates' serials the document
    names; empty when it cannot be read (the verification says why)."""
    codes: set[str] = set()
    serials: set[int] = set()
    try:
        pkg = data if isinstance(data, ofd.Package) else ofd.Package.load(data)
        _, recs = records(pkg)
        for rec in recs:
            sig = pkg.xml(rec.path)
            value = pkg.read(pkg.resolve(sig.findtext("ofd:SignedValue", default="", namespaces=ofd.NSMAP), rec.path))
            if rec.type == "Sign":
                serials.add(x509.Certificate.load(gbt35275.parse(value).cert).serial_number)
            else:
                codes.add(ses.parse_signature(value).seal.es_id)
    except (ofd.OFDError, ValueError, TypeError):
        return codes, serials
    return codes, serials


def _integrity(
    pkg: ofd.Package,
    rec: Record,
    signature_xml: bytes,
    value_path: str,
    signatures_path: str | None,
    later_dirs: set[str],
    data_hash: bytes | None,
    signed_ok: bool | None = None,
) -> Check:
    sig = ofd.parse_xml(signature_xml)
    refs = sig.find("ofd:SignedInfo/ofd:References", ofd.NSMAP)
    if refs is None:
        return Check("integrity", "fail", f"/{rec.path} has no References")
    method = refs.get("CheckMethod", "")
    if method not in SM3_NAMES:
        return Check("integrity", "fail", f"unsupported CheckMethod {method!r} (SM3 expected)")
    problems: list[str] = []
    if data_hash is not None and data_hash != sm3(signature_xml):
        problems.append(f"/{rec.path} edited: its SM3 differs from the signed dataHash")
    if signed_ok is False:
        problems.append(f"/{rec.path} edited or its signature broken: the signature does not verify over it")
    referenced: set[str] = set()
    for ref in refs.iterfind("ofd:Reference", ofd.NSMAP):
        try:
            name = pkg.resolve(ref.get("FileRef", ""), rec.path)
            expected = base64.b64decode(ref.findtext("ofd:CheckValue", default="", namespaces=ofd.NSMAP).strip())
        except (ofd.OFDError, binascii.Error, ValueError):
            problems.append(f"unreadable Reference {ref.get('FileRef')!r}")
            continue
        referenced.add(name)
        if name not in pkg.files:
            problems.append(f"protected file /{name} removed")
        elif sm3(pkg.files[name]) != expected:
            problems.append(f"protected file /{name} changed")
    own = {rec.path, value_path, signatures_path}
    for name in pkg.files:
        if name in referenced or name in own or any(name.startswith(d + "/") for d in later_dirs):
            continue
        problems.append(f"file /{name} added after signing (not protected)")
    if problems:
        more = f" (+{len(problems) - 6} more)" if len(problems) > 6 else ""
        return Check("integrity", "fail", "; ".join(problems[:6]) + more)
    what = "Signature.xml matches dataHash" if data_hash is not None else "the signature covers Signature.xml"
    return Check(
        "integrity", "pass", f"{len(referenced)} protected files match their SM3 digests; {what}; nothing added"
    )


def _signature_time(signature_xml: bytes) -> dt.datetime | None:
    text = ofd.parse_xml(signature_xml).findtext("ofd:SignedInfo/ofd:SignatureDateTime", namespaces=ofd.NSMAP)
    if not text:
        return None
    text = text.strip().replace("Z", "+00:00")
    for parse in (dt.datetime.fromisoformat, lambda t: dt.datetime.strptime(t, "%Y%m%d%H%M%S")):
        try:
            value = parse(text)
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


async def _verify_sign(
    field_name: str, signature_xml: bytes, value: bytes, trust: Trust, integrity: Callable[[bool], Check]
) -> SignatureReport:
    try:
        signed = gbt35275.parse(value)
        cert = x509.Certificate.load(signed.cert)
        cert.subject  # noqa: B018 - parse now, fail as "format"
    except (ValueError, TypeError) as exc:
        return report(field_name, "sm2-sign", "", "", "", None, [Check("format", "fail", str(exc))])
    checks_: list[Check] = [Check("format", "pass", "GB/T 35275 SM2 SignedData (OFD signature of type Sign)")]
    good = signed.valid_over(signature_xml)
    checks_.append(
        Check(
            "signature",
            "pass" if good else "fail",
            "SM2 signature over Signature.xml verifies" if good else "SM2 signature does not verify",
        )
    )
    ts_check, ts_time = await checks.ses_timestamp(signed.timestamp, signed.signature, trust)
    at = ts_time or _signature_time(signature_xml)
    when = at or dt.datetime.now(dt.UTC)
    code = next((c for c, v in trust.seals.items() if str(cert.serial_number) in v.get("cert_serials", ())), "")
    if code:
        match, validity = seal_state(trust, code, cert.serial_number, when)
    else:
        match = Check("cert_seal_match", "absent", "digital signature without a seal")
        validity = Check("seal_validity", "absent", "digital signature without a seal")
    verdict, detail = chain(trust, signed.cert, when)
    checks_ += [match, validity, Check("certificate", verdict, detail)]  # type: ignore[arg-type]
    checks_ += [time_check(signed.cert, at), integrity(good), ts_check]
    name = trust.seals.get(code, {}).get("name", "") if code else ""
    return report(field_name, "sm2-sign", checks.subject_name(signed.cert), code, name, at, checks_)


def _failed(field_name: str, kind: str, detail: str) -> SignatureReport:
    return report(field_name, kind, "", "", "", None, [Check("format", "fail", detail)])


def load(data: bytes) -> ofd.Package | None:
    """The package, or None when it cannot be read (verification then reports why)."""
    try:
        return ofd.Package.load(data)
    except ofd.OFDError:
        return None


async def _verify_uncached(data: bytes, trust: Trust, digest: str, pkg: ofd.Package | None) -> VerifyResult:
    try:
        pkg = pkg or ofd.Package.load(data)
        signatures_path, recs = records(pkg)
    except ofd.OFDError as exc:
        failed = _failed("", "unknown", f"not a readable OFD: {exc}")
        return VerifyResult(document_sha256=digest, signatures=[failed], valid=False, format="ofd")
    reports: list[SignatureReport] = []
    for i, rec in enumerate(recs):
        field_name = f"/{rec.path} (ID {rec.id}, {rec.type})"
        later_dirs = {posixpath.dirname(r.path) for r in recs[i + 1 :]}
        try:
            signature_xml = pkg.read(rec.path)
            value_loc = ofd.parse_xml(signature_xml, rec.path).findtext("ofd:SignedValue", namespaces=ofd.NSMAP)
            if not value_loc:
                raise ofd.OFDError(f"/{rec.path} names no SignedValue")
            value_path = pkg.resolve(value_loc, rec.path)
            value = pkg.read(value_path)
        except (ofd.OFDError, etree.XMLSyntaxError) as exc:
            kind = "sm2-sign" if rec.type == "Sign" else "sm2-ses"
            reports.append(_failed(field_name, kind, f"{exc} — integrity: signature files missing or unreadable"))
            continue

        integrity = functools.partial(_integrity, pkg, rec, signature_xml, value_path, signatures_path, later_dirs)
        if rec.type == "Sign":

            def sign_integrity(ok: bool, f: functools.partial[Check] = integrity) -> Check:
                return f(None, ok)

            report_ = await _verify_sign(field_name, signature_xml, value, trust, sign_integrity)
        else:

            def seal_integrity(doc: ses.Signature, f: functools.partial[Check] = integrity) -> Check:
                return f(doc.data_hash)

            report_ = await checks.ses_report(value, trust, seal_integrity, field_name=field_name)
        reports.append(report_)
    if not reports:
        reports.append(_failed("", "unknown", "no signature found (no Signatures.xml)"))
    return VerifyResult(document_sha256=digest, signatures=reports, valid=all(r.valid for r in reports), format="ofd")


async def verify_bytes(data: bytes, trust: Trust, pkg: ofd.Package | None = None) -> VerifyResult:
    """Verify an OFD (`pkg`: the same bytes already loaded); cached like PDF verdicts (same bytes, same trust,
    within a minute)."""
    digest = hashlib.sha256(data).hexdigest()
    return await checks.cached(digest, trust, lambda: _verify_uncached(data, trust, digest, pkg))
