"""What every verification shares, PDF or OFD: trust material, certificate chains and revocation, seal states,
the signing-time check, the eight-check report, the GB/T 38540 SES checks and the verdict cache.

1 format, 2 signature value, 3 certificate–seal match, 4 seal validity, 5 certificate chain / validity /
revocation, 6 signing time within the certificate's validity, 7 document integrity, 8 timestamp. Every check gets
pass / fail / warn / absent and a detail; a signature is valid when none failed. Integrity is the caller's (the
format decides what was signed); the others for an SES_Signature are `ses_report`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms, tsp, x509
from asn1crypto import crl as acrl
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko_certvalidator import ValidationContext

from core.crypto import SM2PublicKey, sm3
from eseal import ses, x509build
from eseal.models import Check, SignatureReport, VerifyResult

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
    generation: int = 0  # eseal.trust_generation it was read at (0: not from the database)
    _anchors: str = field(default="", repr=False, compare=False)

    def anchors_key(self) -> str:
        """Identifies the roots, intermediates and CRLs (what pyhanko's ValidationContext is built from); computed
        once per Trust (they are not changed after it is made)."""
        if not self._anchors:
            h = hashlib.sha256()
            for group in (self.roots, self.intermediates, self.crls):
                h.update(len(group).to_bytes(4, "big"))
                for der in group:
                    h.update(hashlib.sha256(der).digest())
            self._anchors = h.hexdigest()
        return self._anchors

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


_contexts = _Ttl(8, VC_TTL)  # anchors -> (trust manager, certificate registry, revocation manager)
_paths = _Ttl(4096, 3600.0)  # (cert, anchors) -> certificates up to a trusted root, signatures checked
_revocations = _Ttl(4096, 3600.0)  # (cert, CRLs) -> revocation reason or None


def validation_context(trust: Trust) -> ValidationContext:
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


def _revoked(trust: Trust, cert_der: bytes) -> str | None:
    """The revocation reason when a CRL of its issuer lists it (after checking the CRL's signature)."""
    key = (hashlib.sha256(cert_der).digest(), trust.anchors_key())
    hit = _revocations.get(key)
    if hit is None:
        hit = (_revoked_uncached(trust, x509.Certificate.load(cert_der)),)
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


def chain(trust: Trust, cert_der: bytes, at: dt.datetime) -> tuple[str, str]:
    """(verdict, detail) for chain to a trusted root, validity at `at`, revocation. The path (with each
    certificate's validity window) is kept per certificate and trust material; the certificate is parsed only
    when it is not."""
    key = (hashlib.sha256(cert_der).digest(), trust.anchors_key())
    found = _paths.get(key)
    if found is None:
        cert = x509.Certificate.load(cert_der)
        path = _path(trust, cert)
        found = (
            path
            if isinstance(path, str)
            else (
                cert.serial_number,
                [
                    (
                        c["tbs_certificate"]["validity"]["not_before"].native,
                        c["tbs_certificate"]["validity"]["not_after"].native,
                        c.subject.human_friendly,
                    )
                    for c in path
                ],
            )
        )
        _paths.put(key, found)
    if isinstance(found, str):
        return "fail", found
    serial, windows = found
    for not_before, not_after, subject in windows:
        if not not_before <= at <= not_after:
            return "fail", f"{subject} not valid at {at.isoformat()}"
    reason = _revoked(trust, cert_der)
    if reason == "certificate_hold":
        return "fail", "certificate suspended (on hold)"
    if reason is not None:
        return "fail", f"certificate revoked ({reason})"
    return "pass", f"chains to a trusted root, serial {serial}, not revoked"


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


def seal_state(trust: Trust, code: str, serial: int, at: dt.datetime) -> tuple[Check, Check]:
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


@functools.lru_cache(maxsize=1024)
def _validity(cert_der: bytes) -> tuple[dt.datetime, dt.datetime]:
    validity = x509.Certificate.load(cert_der)["tbs_certificate"]["validity"]
    return validity["not_before"].native, validity["not_after"].native


def time_check(cert_der: bytes, at: dt.datetime | None) -> Check:
    if at is None:
        return Check("signing_time", "warn", "no signing time given")
    not_before, not_after = _validity(cert_der)
    if not_before <= at <= not_after:
        return Check("signing_time", "pass", f"signed {at.isoformat()} within the certificate's validity")
    return Check("signing_time", "fail", f"signed {at.isoformat()} outside the certificate's validity")


def report(
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


# --------------------------------------------------------------------------- GB/T 38540 / GM/T 0031 signatures


@functools.lru_cache(maxsize=1024)
def subject_name(cert_der: bytes) -> str:
    """A certificate's subject for reports (asn1crypto's human_friendly costs ~0.5 ms: once per certificate)."""
    return str(x509.Certificate.load(cert_der).subject.human_friendly)


def _imprint(algorithm: str, data: bytes) -> bytes:
    if algorithm in ("sm3", "1.2.156.10197.1.401"):
        return sm3(data)
    try:
        return hashlib.new(algorithm, data).digest()
    except ValueError:
        return b""


_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
    "sha1": hashes.SHA1(),  # noqa: S303 - a TSA token's digest, as the TSA chose it
}


@functools.lru_cache(maxsize=256)
def _public_key(spki: bytes) -> Any:
    return serialization.load_der_public_key(spki)


@dataclass(frozen=True)
class _TsaCert:
    der: bytes
    serial: int
    issuer: bytes
    key_id: bytes | None
    spki: bytes
    name: str
    time_stamping: bool


@functools.lru_cache(maxsize=256)
def _tsa_cert(der: bytes) -> _TsaCert:
    """What a token check needs of a certificate, parsed once per certificate (parsing was most of the check)."""
    cert = x509.Certificate.load(der)
    eku = cert.extended_key_usage_value
    return _TsaCert(
        der,
        cert.serial_number,
        bytes(cert.issuer.dump()),
        cert.key_identifier,
        bytes(cert.public_key.dump()),
        str(cert.subject.human_friendly),
        "time_stamping" in (eku.native if eku else []),
    )


def _token_signature_ok(spki: bytes, info: cms.SignerInfo, signed_bytes: bytes) -> bool:
    """The TSA's signature over its signed attributes: RSA PKCS #1 v1.5, ECDSA or SM2."""
    value = bytes(info["signature"].native)
    algorithm = info["signature_algorithm"]["algorithm"].dotted
    digest_name = info["digest_algorithm"]["algorithm"].native
    if algorithm in ("1.2.156.10197.1.501", "1.2.156.10197.1.301.1"):
        return SM2PublicKey.from_der(spki).verify(value, signed_bytes)
    hash_alg = _HASHES.get(digest_name)
    if hash_alg is None:
        return False
    key = _public_key(spki)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(value, signed_bytes, padding.PKCS1v15(), hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(value, signed_bytes, ec.ECDSA(hash_alg))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _token_verdict(token: bytes, signature: bytes, trust: Trust) -> tuple[Check, dt.datetime | None]:
    info = cms.ContentInfo.load(token)
    if info["content_type"].native != "signed_data":
        raise ValueError("not SignedData")
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise ValueError("not a TSTInfo")
    tst_bytes = bytes(encap["content"].contents)
    tst = tsp.TSTInfo.load(tst_bytes)
    when: dt.datetime = tst["gen_time"].native
    imprint = tst["message_imprint"]
    signer = signed["signer_infos"][0]
    sid = signer["sid"].chosen
    by_serial = isinstance(sid, cms.IssuerAndSerialNumber)
    wanted = (sid["serial_number"].native, bytes(sid["issuer"].dump())) if by_serial else sid.native
    cert: _TsaCert | None = None
    for choice in signed["certificates"]:
        if choice.name != "certificate":
            continue
        candidate = _tsa_cert(bytes(choice.chosen.dump()))
        if (candidate.serial, candidate.issuer) == wanted if by_serial else candidate.key_id == wanted:
            cert = candidate
            break
    if cert is None:
        return Check("timestamp", "fail", "timestamp token without the TSA's certificate"), None
    tsa = cert.name
    attrs = signer["signed_attrs"]
    values = {a["type"].native: a["values"][0] for a in attrs}
    digest_name = signer["digest_algorithm"]["algorithm"].native
    good = (
        bytes(imprint["hashed_message"].native) == _imprint(imprint["hash_algorithm"]["algorithm"].native, signature)
        and values.get("content_type") is not None
        and values["content_type"].native == "tst_info"
        and values.get("message_digest") is not None
        and bytes(values["message_digest"].native) == _imprint(digest_name, tst_bytes)
        and _token_signature_ok(cert.spki, signer, b"\x31" + bytes(attrs.dump())[1:])
    )
    if not good:
        return Check("timestamp", "fail", f"timestamp token of {tsa} does not verify over the signature"), None
    if not cert.time_stamping:
        return Check("timestamp", "fail", f"{tsa} is not a time-stamping authority (no timeStamping EKU)"), None
    verdict, detail = chain(trust, cert.der, when)
    if verdict != "pass":
        return Check("timestamp", "fail", f"TSA {tsa} not trusted ({detail}), time {when.isoformat()}"), None
    return Check("timestamp", "pass", f"RFC 3161 timestamp {when.isoformat()} by {tsa}"), when


async def ses_timestamp(token: bytes | None, signature: bytes, trust: Trust) -> tuple[Check, dt.datetime | None]:
    """Check 8 for an SES_Signature (and a GB/T 35275 signature): the RFC 3161 token is over the signature value,
    the TSA's signature verifies, the TSA certificate has the timeStamping EKU and chains to a trusted root (not
    revoked); its time when good. Checked here rather than through pyhanko: path building per token was ~45 ms."""
    if not token:
        return Check("timestamp", "absent", "no timestamp token in SES_Signature"), None
    try:
        return _token_verdict(token, signature, trust)
    except Exception as exc:  # an unreadable token is this check's failure, not the verification's
        return Check("timestamp", "fail", f"unreadable timestamp token: {type(exc).__name__}"), None


async def ses_report(
    ses_der: bytes, trust: Trust, integrity: Callable[[ses.Signature], Check], *, field_name: str, code: str = ""
) -> SignatureReport:
    """The eight checks of one SES_Signature (v4 or v1); `integrity` checks its dataHash against the document."""
    try:
        doc = ses.parse_signature(ses_der)
        cert = x509.Certificate.load(doc.cert)
        cert.subject  # noqa: B018 - parse now, fail as "format"
    except (ValueError, TypeError, KeyError) as exc:
        return report(
            field_name,
            "sm2-ses",
            "",
            code,
            "",
            None,
            [Check("format", "fail", f"not a GB/T 38540 SES_Signature: {exc}")],
        )
    seal = doc.seal
    at = doc.signed_at
    label = "GB/T 38540 SES_Signature v4" if doc.version == 4 else f"GM/T 0031 SES_Signature v{doc.version}"
    checks = [Check("format", "pass" if doc.version in (1, 4) else "warn", f"{label}, seal {seal.vid}/{seal.es_id}")]
    good = doc.signature_valid()
    checks.append(
        Check(
            "signature",
            "pass" if good else "fail",
            "SM2 signature over TBS_Sign verifies" if good else "SM2 signature does not verify",
        )
    )
    ts_check, ts_time = await ses_timestamp(doc.timestamp, doc.signature, trust)
    when = ts_time or at or dt.datetime.now(dt.UTC)
    code = code or seal.es_id
    match, validity = seal_state(trust, code, cert.serial_number, when)
    if not seal.lists_signer(doc.cert):
        match = Check("cert_seal_match", "fail", "signer certificate not in the seal's certificate list")
    form = seal.maker_form()
    maker_chain, maker_detail = chain(trust, seal.maker_cert, when)
    if form is None:
        validity = Check("seal_validity", "fail", "seal maker's signature over SES_Seal does not verify")
    elif maker_chain != "pass":
        validity = Check("seal_validity", "fail", f"seal maker certificate: {maker_detail}")
    elif validity.verdict == "pass" and not (
        seal.valid_start is not None and seal.valid_end is not None and seal.valid_start <= when <= seal.valid_end
    ):
        validity = Check("seal_validity", "fail", "signed outside the seal's validity")
    elif validity.verdict == "pass" and form == "legacy":
        validity = Check(
            "seal_validity",
            "warn",
            f"{validity.detail}; maker's signature in our legacy form (seal made before 2026-12-07)",
        )
    checks += [match, validity]
    verdict, detail = chain(trust, doc.cert, when)
    checks.append(Check("certificate", verdict, detail))  # type: ignore[arg-type]
    checks.append(time_check(doc.cert, ts_time or at))
    checks.append(integrity(doc))
    checks.append(ts_check)
    return report(field_name, "sm2-ses", subject_name(doc.cert), code, seal.name, at, checks)


# --------------------------------------------------------------------------- the verdict cache


_results = _Ttl(RESULT_CACHE_SIZE, RESULT_TTL)
_inflight: dict[tuple[str, str], asyncio.Future[VerifyResult]] = {}


async def cached(digest: str, trust: Trust, verify: Callable[[], Awaitable[VerifyResult]]) -> VerifyResult:
    """The same document under the same trust within a minute gets the same verdict, and simultaneous requests
    for one document wait for a single verification."""
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
        result = await verify()
        _results.put(key, result)
        future.set_result(result)
        return result
    finally:
        if not future.done():
            future.cancel()
        if _inflight.get(key) is future:
            del _inflight[key]


def clear_caches() -> None:
    for cache in (_results, _contexts, _paths, _revocations):
        cache.clear()
