"""GB/T 35275 SM2 SignedData: the signed value of an OFD signature of type Sign (数字签名, GB/T 33190 §18).

ContentInfo { contentType 1.2.156.10197.6.1.4.2.2 (signedData), [0] EXPLICIT SignedData }, PKCS #7 v1.5 layout:
version 1, digestAlgorithms { SM3 }, contentInfo { 1.2.156.10197.6.1.4.2.1 (data), content absent — detached, the
content is Signature.xml }, certificates [0] { the signer's }, signerInfos { version 1, issuerAndSerialNumber,
SM3, digestEncryptionAlgorithm SM2 1.2.156.10197.1.301.1, encryptedDigest = SM2-with-SM3 signature (default user id)
over the content itself (no authenticated attributes), unauthenticatedAttributes [1] { signatureTimeStampToken
(1.2.840.113549.1.9.16.2.14): RFC 3161 token over SHA-256 of encryptedDigest } }.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import cms, core, x509

from core.crypto import OID_SM3
from eseal import ses

OID_SIGNED_DATA = "1.2.156.10197.6.1.4.2.2"
OID_DATA = "1.2.156.10197.6.1.4.2.1"
OID_SM2_SIGN = "1.2.156.10197.1.301.1"
OID_TIMESTAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"  # noqa: S105 - an OID, not a password


def build(cert_der: bytes, signature: bytes, timestamp: bytes | None = None) -> bytes:
    cert = x509.Certificate.load(cert_der)
    signer: dict[str, object] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            "issuer_and_serial_number", {"issuer": cert.issuer, "serial_number": cert.serial_number}
        ),
        "digest_algorithm": {"algorithm": OID_SM3},
        "signature_algorithm": {"algorithm": OID_SM2_SIGN},
        "signature": signature,
    }
    if timestamp is not None:
        signer["unsigned_attrs"] = [{"type": OID_TIMESTAMP_TOKEN, "values": [cms.ContentInfo.load(timestamp)]}]
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": OID_SM3}],
            "encap_content_info": {"content_type": OID_DATA},
            "certificates": [cert],
            "signer_infos": [signer],
        }
    )
    body = bytes(signed.dump())
    tagged = b"\xa0" + ses.der_length(len(body)) + body
    return ses.der_sequence(bytes(core.ObjectIdentifier(OID_SIGNED_DATA).dump()), tagged)


@dataclass
class Signed:
    cert: bytes
    signature: bytes
    timestamp: bytes | None

    def valid_over(self, content: bytes) -> bool:
        key = ses.sm2_key(self.cert)
        return key is not None and key.verify(self.signature, content)


def parse(data: bytes) -> Signed:
    """The signer certificate, signature value and timestamp of a GB/T 35275 (or RFC 5652) SignedData."""
    try:
        top = ses.sequence_elements(data)
        if len(top) < 2:
            raise ValueError("ContentInfo without content")
        inner = ses.element_contents(top[1])
        signed = cms.SignedData.load(inner)
        info = signed["signer_infos"][0]
        sid = info["sid"].chosen
        cert_der = b""
        for choice in signed["certificates"]:
            cert = choice.chosen
            if isinstance(cert, x509.Certificate) and (
                not isinstance(sid, cms.IssuerAndSerialNumber) or cert.serial_number == sid["serial_number"].native
            ):
                cert_der = bytes(cert.dump())
                break
        timestamp = None
        for attr in info["unsigned_attrs"] or []:
            if attr["type"].dotted == OID_TIMESTAMP_TOKEN:
                timestamp = bytes(attr["values"][0].dump())
        return Signed(cert_der, bytes(info["signature"].native), timestamp)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ses.SESFormatError(f"not a GB/T 35275 SignedData: {exc}") from exc
