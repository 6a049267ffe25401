"""X.509 certificates and CRLs built with asn1crypto and signed by a key in the signing server.

One code path for both families: the TBS structure is built here and its signature comes from an async callable
(the signing server's SM2-SM3 or RSA-SHA256 with the CA's key index), so no CA private key is ever in this process.
SM2 certificates carry the national OIDs: public key `id-ecPublicKey` on curve 1.2.156.10197.1.301 and signature
algorithm SM2-with-SM3 1.2.156.10197.1.501 (GM/T 0015).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Sequence

from asn1crypto import algos, crl, keys, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from core.crypto import OID_SM2_WITH_SM3, SM2PublicKey

Sign = Callable[[bytes], Awaitable[bytes]]
SIG_SM2 = OID_SM2_WITH_SM3
SIG_RSA = "sha256_rsa"
SIG_ECDSA = "sha256_ecdsa"
_SIG = {"SM2": SIG_SM2, "RSA": SIG_RSA, "EC": SIG_ECDSA}
_ECDSA_SHA256_OID = "1.2.840.10045.4.3.2"


def algorithm_of(spki_der: bytes) -> str:
    """'SM2', 'RSA' or 'EC' (P-256) for a SubjectPublicKeyInfo."""
    info = keys.PublicKeyInfo.load(spki_der)
    if info.algorithm == "rsa":
        return "RSA"
    if info.algorithm == "ec" and info.curve == ("named", "secp256r1"):
        return "EC"
    return "SM2"


def _sig_alg(algorithm: str) -> algos.SignedDigestAlgorithm:
    return algos.SignedDigestAlgorithm({"algorithm": _SIG[algorithm]})


def name(common_name: str, org: str = "苏州市公安局", unit: str = "", country: str = "CN") -> x509.Name:
    attrs: dict[str, str] = {"country_name": country, "organization_name": org, "common_name": common_name}
    if unit:
        attrs["organizational_unit_name"] = unit
    return x509.Name.build(attrs, use_printable=False)


def _key_id(spki_der: bytes) -> bytes:
    return hashlib.sha1(keys.PublicKeyInfo.load(spki_der)["public_key"].contents).digest()[:20]  # noqa: S324 - RFC 5280 key id


def new_serial() -> int:
    return secrets.randbits(63) | (1 << 62)


async def build_certificate(
    *,
    subject: x509.Name,
    subject_spki: bytes,
    issuer: x509.Name,
    issuer_spki: bytes,
    issuer_algorithm: str,
    sign: Sign,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int,
    ca: bool = False,
    path_len: int | None = None,
    usage: str = "sign",
    crl_url: str = "",
    extended_key_usage: tuple[str, ...] = (),
) -> bytes:
    """A DER certificate. `usage`: 'sign' (digitalSignature, nonRepudiation) or 'encrypt' (key/data encipherment);
    `extended_key_usage` (asn1crypto names, e.g. 'time_stamping') is added as a critical extension."""
    if ca:
        key_usage = {"key_cert_sign", "crl_sign", "digital_signature"}
    elif usage == "encrypt":
        key_usage = {"key_encipherment", "data_encipherment", "key_agreement"}
    else:
        key_usage = {"digital_signature", "non_repudiation"}
    basic: dict[str, object] = {"ca": ca}
    if ca and path_len is not None:
        basic["path_len_constraint"] = path_len
    extensions = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": basic},
        {"extn_id": "key_usage", "critical": True, "extn_value": key_usage},
        {"extn_id": "key_identifier", "critical": False, "extn_value": _key_id(subject_spki)},
        {
            "extn_id": "authority_key_identifier",
            "critical": False,
            "extn_value": {"key_identifier": _key_id(issuer_spki)},
        },
    ]
    if extended_key_usage:
        extensions.append({"extn_id": "extended_key_usage", "critical": True, "extn_value": list(extended_key_usage)})
    if crl_url:
        extensions.append(
            {
                "extn_id": "crl_distribution_points",
                "critical": False,
                "extn_value": [
                    {"distribution_point": x509.DistributionPointName(name="full_name", value=[_uri(crl_url)])}
                ],
            }
        )
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": _sig_alg(issuer_algorithm),
            "issuer": issuer,
            "validity": {
                "not_before": x509.Time(name="utc_time", value=not_before),
                "not_after": x509.Time(name="utc_time", value=not_after),
            },
            "subject": subject,
            "subject_public_key_info": keys.PublicKeyInfo.load(subject_spki),
            "extensions": extensions,
        }
    )
    signature = await sign(tbs.dump())
    cert = x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": _sig_alg(issuer_algorithm),
            "signature_value": signature,
        }
    )
    return bytes(cert.dump())


def _uri(url: str) -> x509.GeneralName:
    return x509.GeneralName(name="uniform_resource_identifier", value=url)


async def build_crl(
    *,
    issuer: x509.Name,
    issuer_spki: bytes,
    issuer_algorithm: str,
    sign: Sign,
    number: int,
    revoked: Sequence[tuple[int, dt.datetime, str]],
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """A DER CRL (v2) listing (serial, revoked at, reason) — reason is an RFC 5280 CRLReason name."""
    entries = []
    for serial, at, reason in revoked:
        entry: dict[str, object] = {"user_certificate": serial, "revocation_date": x509.Time(name="utc_time", value=at)}
        if reason:
            entry["crl_entry_extensions"] = [{"extn_id": "crl_reason", "critical": False, "extn_value": reason}]
        entries.append(entry)
    tbs = crl.TbsCertList(
        {
            "version": "v2",
            "signature": _sig_alg(issuer_algorithm),
            "issuer": issuer,
            "this_update": x509.Time(name="utc_time", value=this_update),
            "next_update": x509.Time(name="utc_time", value=next_update),
            "revoked_certificates": entries or None,
            "crl_extensions": [
                {"extn_id": "crl_number", "critical": False, "extn_value": number},
                {
                    "extn_id": "authority_key_identifier",
                    "critical": False,
                    "extn_value": {"key_identifier": _key_id(issuer_spki)},
                },
            ],
        }
    )
    signature = await sign(tbs.dump())
    doc = crl.CertificateList(
        {"tbs_cert_list": tbs, "signature_algorithm": _sig_alg(issuer_algorithm), "signature": signature}
    )
    return bytes(doc.dump())


def verify_signed(tbs_der: bytes, signature: bytes, sig_oid: str, issuer_spki: bytes) -> bool:
    """Check a certificate's or CRL's signature with core.crypto (SM2) or cryptography (RSA, ECDSA P-256)."""
    if sig_oid == SIG_SM2:
        return SM2PublicKey.from_der(issuer_spki).verify(signature, tbs_der)
    key = serialization.load_der_public_key(issuer_spki)
    if sig_oid == _ECDSA_SHA256_OID:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        try:
            key.verify(signature, tbs_der, ec.ECDSA(hashes.SHA256()))
        except Exception:
            return False
        return True
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, tbs_der, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def cert_signed_by(cert_der: bytes, issuer_spki: bytes) -> bool:
    cert = x509.Certificate.load(cert_der)
    oid = cert["signature_algorithm"]["algorithm"].dotted
    return verify_signed(cert["tbs_certificate"].dump(), cert["signature_value"].native, oid, issuer_spki)


def crl_signed_by(crl_der: bytes, issuer_spki: bytes) -> bool:
    doc = crl.CertificateList.load(crl_der)
    oid = doc["signature_algorithm"]["algorithm"].dotted
    return verify_signed(doc["tbs_cert_list"].dump(), doc["signature"].native, oid, issuer_spki)


def spki_of(cert_der: bytes) -> bytes:
    return bytes(x509.Certificate.load(cert_der).public_key.dump())
