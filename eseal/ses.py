"""Electronic seal structures: GB/T 38540-2020 (version 4) built and read, GM/T 0031-2014 (version 1) read.

What is signed (docs/eseal-ofd.md says the same for a third party):

- **The seal maker's signature** (`SES_Seal.signedValue`, v4) is SM2-with-SM3 over DER(`SES_SealInfo`) — the exact
  bytes of the `eSealInfo` element — as ofdrw and the open GM/T 0031 / GB/T 38540 verifiers compute it. In a v1
  `SESeal` it is over DER(SEQUENCE { esealInfo, cert, signatureAlgorithm }) (`SES_SignInfo.signData`).
- **The signer's signature** (`SES_Signature.signature`, v4) is SM2-with-SM3 over DER(`TBS_Sign`); v1 likewise
  over its DER(`TBS_Sign`), which also holds the signer certificate and algorithm.
- SM2 uses the default user id `1234567812345678` (GB/T 35276); signature values are DER SEQUENCE { r, s } in
  the BIT STRING.
- `timeStamp` (v4, `[0]` EXPLICIT BIT STRING OPTIONAL, as ofdrw writes it; IMPLICIT is read too) holds the DER
  RFC 3161 `TimeStampToken` whose message imprint is SHA-256 of the signature value (the BIT STRING's bytes).
- `dataHash` is SM3 of what was signed: the PDF byte ranges, or for OFD the bytes of `Signature.xml`.

Our seals made before 2026-12-07 were signed over DER(SES_SealInfo) || DER(OCTET STRING cert) || DER(OID): the
*legacy* form. Verification accepts it with a warning (documents sealed then stay verifiable); the seal itself is
re-made in the standard form the next time it signs (`eseal.seals.standard_seal`).

Parsing is positional over the DER (not through typed asn1crypto classes), so both versions and the usual vendor
variants (OCTET STRING where BIT STRING is specified, UTCTime where GeneralizedTime is, a bare certificate where an
OCTET STRING wrapping is) read alike.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from asn1crypto import core, parser

from core.crypto import OID_SM2_WITH_SM3, SM2PublicKey, sm3
from eseal import x509build

SEAL_TYPES = {"official": 1, "contract": 2, "finance": 3, "personal": 4}  # 1 单位印章 … 4 个人印章 (ours: 2, 3)
TIMESTAMP_HASH = "sha256"

# --------------------------------------------------------------------------- v4 structures (built by us)


class SESHeader(core.Sequence):
    _fields: ClassVar = [("id", core.IA5String), ("version", core.Integer), ("vid", core.IA5String)]


class CertList(core.SequenceOf):
    _child_spec = core.OctetString


class PropertyInfo(core.Sequence):
    _fields: ClassVar = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", CertList),
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]


class PictureInfo(core.Sequence):
    _fields: ClassVar = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),  # millimetres
        ("height", core.Integer),
    ]


class ExtData(core.Sequence):
    _fields: ClassVar = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtDatas(core.SequenceOf):
    _child_spec = ExtData


class SealInfo(core.Sequence):
    _fields: ClassVar = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", PropertyInfo),
        ("picture", PictureInfo),
        ("ext_datas", ExtDatas, {"optional": True}),
    ]


class SESSeal(core.Sequence):
    _fields: ClassVar = [
        ("e_seal_info", SealInfo),
        ("cert", core.OctetString),
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
    ]


class TBSSign(core.Sequence):
    _fields: ClassVar = [
        ("version", core.Integer),
        ("eseal", SESSeal),
        ("time_info", core.GeneralizedTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("ext_datas", ExtDatas, {"optional": True}),
    ]


class SESSignature(core.Sequence):
    _fields: ClassVar = [
        ("to_sign", TBSSign),
        ("cert", core.OctetString),
        ("signature_alg_id", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


# Our extension in extDatas: the seal's registered code (private arc under a placeholder enterprise number).
OID_SEAL_CODE = "1.3.6.1.4.1.59999.1.1"


def seal_info(
    *,
    es_id: str,
    kind: str,
    name: str,
    signer_certs: list[bytes],
    picture_png: bytes,
    width_mm: int,
    height_mm: int,
    valid_start: dt.datetime,
    valid_end: dt.datetime,
    vid: str = "SZT",
) -> SealInfo:
    return SealInfo(
        {
            "header": {"id": "ES", "version": 4, "vid": vid},
            "es_id": es_id,
            "property": {
                "type": SEAL_TYPES[kind],
                "name": name,
                "cert_list_type": 1,
                "cert_list": signer_certs,
                "create_date": dt.datetime.now(dt.UTC).replace(microsecond=0),
                "valid_start": valid_start,
                "valid_end": valid_end,
            },
            "picture": {"type": "png", "data": picture_png, "width": width_mm, "height": height_mm},
            "ext_datas": [{"extn_id": OID_SEAL_CODE, "extn_value": es_id.encode()}],
        }
    )


def seal_to_be_signed(info: SealInfo, maker_cert: bytes | None = None) -> bytes:
    """What the maker signs (GB/T 38540 v4): DER(SES_SealInfo). The maker's certificate is not part of it
    (`maker_cert` is accepted and ignored for callers of the old signature)."""
    return bytes(info.dump())


def legacy_seal_to_be_signed(info_der: bytes, maker_cert: bytes) -> bytes:
    """Our form before 2026-12-07: DER(SES_SealInfo) || DER(OCTET STRING cert) || DER(OID). Only verified."""
    return info_der + bytes(core.OctetString(maker_cert).dump()) + bytes(core.ObjectIdentifier(OID_SM2_WITH_SM3).dump())


def assemble_seal(info: SealInfo, maker_cert: bytes, signature: bytes) -> bytes:
    seal = SESSeal(
        {"e_seal_info": info, "cert": maker_cert, "sign_alg_id": OID_SM2_WITH_SM3, "signed_value": signature}
    )
    return bytes(seal.dump())


def tbs_sign(seal_der: bytes, data_hash: bytes, at: dt.datetime, property_info: str) -> TBSSign:
    return TBSSign(
        {
            "version": 4,
            "eseal": SESSeal.load(seal_der),
            "time_info": at,
            "data_hash": data_hash,
            "property_info": property_info,
        }
    )


def assemble_signature(tbs: TBSSign, signer_cert: bytes, signature: bytes, timestamp: bytes | None = None) -> bytes:
    """The v4 SES_Signature; `timestamp` is a DER RFC 3161 TimeStampToken over the signature value."""
    value: dict[str, object] = {
        "to_sign": tbs,
        "cert": signer_cert,
        "signature_alg_id": OID_SM2_WITH_SM3,
        "signature": signature,
    }
    if timestamp is not None:
        value["time_stamp"] = timestamp
    return bytes(SESSignature(value).dump())


def timestamp_imprint(signature: bytes) -> bytes:
    """The message imprint of the SES_Signature timestamp: SHA-256 of the signature value."""
    return hashlib.sha256(signature).digest()


def bit_bytes(value: core.OctetBitString) -> bytes:
    return bytes(value.native)


# --------------------------------------------------------------------------- reading, both versions


class SESFormatError(ValueError):
    """Not a GB/T 38540 / GM/T 0031 structure."""


@dataclass(frozen=True)
class _El:
    class_: int
    constructed: bool
    tag: int
    contents: bytes
    encoded: bytes

    @property
    def universal(self) -> int:
        return self.tag if self.class_ == 0 else -1


def _parse_one(data: bytes) -> _El:
    try:
        class_, method, tag, header, contents, trailer = parser.parse(data, strict=False)
    except ValueError as exc:
        raise SESFormatError(f"bad DER: {exc}") from exc
    return _El(class_, method == 1, tag, contents, header + contents + trailer)


def _children(el: _El) -> list[_El]:
    if not el.constructed:
        raise SESFormatError("expected a SEQUENCE")
    out: list[_El] = []
    data, pos = el.contents, 0
    while pos < len(data):
        child = _parse_one(data[pos:])
        out.append(child)
        pos += len(child.encoded)
    return out


def _seq(data: bytes | _El, least: int = 0) -> list[_El]:
    el = _parse_one(data) if isinstance(data, bytes) else data
    if el.universal != 16:
        raise SESFormatError("expected a SEQUENCE")
    items = _children(el)
    if len(items) < least:
        raise SESFormatError(f"SEQUENCE of {len(items)} elements, expected at least {least}")
    return items


def _int(el: _El) -> int:
    if el.universal != 2:
        raise SESFormatError("expected an INTEGER")
    return int.from_bytes(el.contents, "big", signed=True)


def _text(el: _El) -> str:
    return el.contents.decode("utf-8", "replace")


def _octets(el: _El) -> bytes:
    """OCTET STRING or BIT STRING contents (vendors swap them); a bare SEQUENCE (a certificate) as encoded."""
    if el.universal == 3:
        return el.contents[1:]
    if el.universal == 16:
        return el.encoded
    return el.contents


def _oid(el: _El) -> str:
    if el.universal != 6:
        raise SESFormatError("expected an OBJECT IDENTIFIER")
    return str(core.ObjectIdentifier.load(el.encoded).dotted)


def _time(el: _El) -> dt.datetime | None:
    """GeneralizedTime, UTCTime, or (v1 timeInfo) a BIT/OCTET STRING holding one or its text."""
    try:
        if el.universal == 24:
            value = core.GeneralizedTime.load(el.encoded).native
        elif el.universal == 23:
            value = core.UTCTime.load(el.encoded).native
        elif el.universal in (3, 4):
            raw = _octets(el)
            if raw[:1] in (b"\x17", b"\x18"):
                return _time(_parse_one(raw))
            value = _text_time(raw.decode("ascii").strip())
        else:
            return None
    except (ValueError, UnicodeDecodeError, SESFormatError):
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value if isinstance(value, dt.datetime) else None


def _text_time(text: str) -> dt.datetime | None:
    body = text.rstrip("Z")
    for fmt, size in (("%Y%m%d%H%M%S", 14), ("%y%m%d%H%M%S", 12), ("%Y-%m-%d %H:%M:%S", 19), ("%Y-%m-%dT%H:%M:%S", 19)):
        try:
            return dt.datetime.strptime(body[:size], fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = (n.bit_length() + 7) // 8
    return bytes([0x80 | size]) + n.to_bytes(size, "big")


def der_sequence(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + der_length(len(body)) + body


def sequence_elements(data: bytes) -> list[bytes]:
    """The encoded elements of a DER SEQUENCE (SESFormatError when it is not one)."""
    return [el.encoded for el in _seq(data)]


def element_contents(encoded: bytes) -> bytes:
    """The contents of one encoded element (e.g. what an EXPLICIT tag wraps)."""
    return _parse_one(encoded).contents


MakerForm = Literal["standard", "sequence", "legacy"]


@dataclass
class Seal:
    """An electronic seal as read, either version."""

    version: int  # 4 (GB/T 38540) or 1 (GM/T 0031; header version 1-3)
    der: bytes
    vid: str
    es_id: str
    kind: int
    name: str
    cert_list_type: int  # 1 certificates, 2 certificate digests
    certs: list[bytes]  # signer certificates (type 1) or their digests (type 2)
    digest_algorithms: list[str]
    created: dt.datetime | None
    valid_start: dt.datetime | None
    valid_end: dt.datetime | None
    picture_type: str
    picture: bytes
    width_mm: int
    height_mm: int
    maker_cert: bytes
    sign_alg: str
    signed_value: bytes
    info_der: bytes
    _sign_info_parts: tuple[bytes, bytes] = field(default=(b"", b""), repr=False)  # DER of cert and algorithm

    def to_be_signed(self, form: MakerForm = "standard") -> bytes:
        cert_der, alg_der = self._sign_info_parts
        if form == "legacy":
            return legacy_seal_to_be_signed(self.info_der, self.maker_cert)
        if form == "sequence" or self.version == 1:
            return der_sequence(self.info_der, cert_der, alg_der)
        return self.info_der

    def maker_form(self) -> MakerForm | None:
        """Which form the maker's signature verifies over (standard first), or None when none does. The verdict
        is a function of the seal's bytes: kept per seal (every document sealed with it carries the same)."""
        return _maker_form(self)

    def _maker_form(self) -> MakerForm | None:
        if self.sign_alg != OID_SM2_WITH_SM3:
            return None
        key = sm2_key(self.maker_cert)
        if key is None:  # an unreadable maker certificate: nothing verifies
            return None
        forms: tuple[MakerForm, ...] = ("standard", "sequence") if self.version == 4 else ("standard",)
        if self.version == 4 and self.vid == "SZT":
            forms = (*forms, "legacy")
        for form in forms:
            if key.verify(self.signed_value, self.to_be_signed(form)):
                return form
        return None

    def lists_signer(self, cert_der: bytes) -> bool:
        if self.cert_list_type == 2:
            digests = {sm3(cert_der), hashlib.sha256(cert_der).digest(), hashlib.sha1(cert_der).digest()}  # noqa: S324 - matching a vendor's listed digest
            return any(d in digests for d in self.certs)
        return cert_der in self.certs


@dataclass
class Signature:
    """An electronic signature (签章数据) as read, either version."""

    version: int
    der: bytes
    seal: Seal
    signed_at: dt.datetime | None
    data_hash: bytes
    property_info: str
    cert: bytes
    sign_alg: str
    signature: bytes
    tbs_der: bytes
    timestamp: bytes | None  # DER TimeStampToken

    def signature_valid(self) -> bool:
        if self.sign_alg != OID_SM2_WITH_SM3:
            return False
        key = sm2_key(self.cert)
        return key is not None and key.verify(self.signature, self.tbs_der)


@functools.lru_cache(maxsize=1024)
def sm2_key(cert_der: bytes) -> SM2PublicKey | None:
    """The SM2 public key of a certificate, loaded once per certificate (None when unreadable)."""
    try:
        return SM2PublicKey.from_der(x509build.spki_of(cert_der))
    except Exception:  # not a certificate, not an SM2 key
        return None


_maker_forms: dict[bytes, MakerForm | None] = {}


def _maker_form(seal: Seal) -> MakerForm | None:
    found = _maker_forms.get(seal.der, "?")
    if found == "?":
        found = seal._maker_form()
        if len(_maker_forms) > 1024:
            _maker_forms.clear()
        _maker_forms[seal.der] = found
    return found  # type: ignore[return-value]


def parse_seal(data: bytes | _El) -> Seal:
    el = _parse_one(data) if isinstance(data, bytes) else data
    top = _seq(el, 2)
    info_el = top[0]
    if len(top) >= 4:  # v4: eSealInfo, cert, signAlgID, signedValue
        version, cert_el, alg_el, value_el = 4, top[1], top[2], top[3]
    else:  # v1: esealInfo, signInfo { cert, signatureAlgorithm, signData }
        sign_info = _seq(top[1], 3)
        version, cert_el, alg_el, value_el = 1, sign_info[0], sign_info[1], sign_info[2]
    info = _seq(info_el, 4)
    header = _seq(info[0], 3)
    prop = _seq(info[2], 6)
    picture = _seq(info[3], 4)
    if len(prop) >= 7 and prop[2].universal == 2:  # v4 property: certListType present
        list_type, list_el, times = _int(prop[2]), prop[3], prop[4:7]
    else:
        list_type, list_el, times = 1, prop[2], prop[3:6]
    certs: list[bytes] = []
    algorithms: list[str] = []
    for item in _seq(list_el):
        if list_type == 2 and item.universal == 16:  # CertDigestObj { type PrintableString, value OCTET STRING }
            parts = _seq(item, 2)
            algorithms.append(_text(parts[0]).lower())
            certs.append(_octets(parts[1]))
        else:
            certs.append(_octets(item))
    _int(header[1])  # header version: 4 for GB/T 38540, 1-3 for GM/T 0031 (the structure decides)
    return Seal(
        version=version,
        der=el.encoded,
        vid=_text(header[2]),
        es_id=_text(info[1]),
        kind=_int(prop[0]),
        name=_text(prop[1]),
        cert_list_type=list_type,
        certs=certs,
        digest_algorithms=algorithms,
        created=_time(times[0]),
        valid_start=_time(times[1]),
        valid_end=_time(times[2]),
        picture_type=_text(picture[0]),
        picture=_octets(picture[1]),
        width_mm=_int(picture[2]),
        height_mm=_int(picture[3]),
        maker_cert=_octets(cert_el),
        sign_alg=_oid(alg_el),
        signed_value=_octets(value_el),
        info_der=info_el.encoded,
        _sign_info_parts=(cert_el.encoded, alg_el.encoded),
    )


def _timestamp_of(el: _El) -> bytes | None:
    if el.class_ != 2 or el.tag != 0:
        return None
    if el.constructed:  # EXPLICIT: [0] { BIT STRING }
        inner = _parse_one(el.contents)
        return _octets(inner) or None
    return el.contents[1:] or None  # IMPLICIT BIT STRING


@functools.lru_cache(maxsize=64)
def parse_signature(data: bytes) -> Signature:
    """A SES_Signature of either version; SESFormatError when it is neither. (Read-only result, kept for the
    few calls of one verification: the seal codes are read before the checks.)"""
    # The DER's own length ends it: the zero padding of a PDF's /Contents after it is ignored by the parser, and
    # stripping zeros would cut a signature whose last byte is 0 (one in 256).
    el = _parse_one(data)
    top = _seq(el, 2)
    tbs_el = top[0]
    tbs = _seq(tbs_el, 5)
    version = _int(tbs[0])
    seal = parse_seal(tbs[1])
    if len(top) >= 4:  # v4: toSign, cert, signatureAlgID, signature, [0] timeStamp
        cert, alg, value = _octets(top[1]), _oid(top[2]), _octets(top[3])
        timestamp = _timestamp_of(top[4]) if len(top) > 4 else None
    else:  # v1: toSign { ..., cert, signatureAlgorithm }, signature
        tbs = _seq(tbs_el, 7)
        cert, alg, value, timestamp = _octets(tbs[5]), _oid(tbs[6]), _octets(top[1]), None
    return Signature(
        version=version,
        der=el.encoded,
        seal=seal,
        signed_at=_time(tbs[2]),
        data_hash=_octets(tbs[3]),
        property_info=_text(tbs[4]),
        cert=cert,
        sign_alg=alg,
        signature=value,
        tbs_der=tbs_el.encoded,
        timestamp=timestamp,
    )


def seal_signature_valid(seal_der: bytes) -> bool:
    """The seal maker's signature verifies, in the standard form (or, for our own old seals, the legacy one)."""
    try:
        return parse_seal(seal_der).maker_form() is not None
    except SESFormatError:
        return False


@functools.lru_cache(maxsize=256)
def is_legacy_seal(seal_der: bytes) -> bool:
    """Our own seal from before 2026-12-07, signed in the legacy form (to be re-made)."""
    try:
        return parse_seal(seal_der).maker_form() == "legacy"
    except SESFormatError:
        return False


def signature_valid(ses_der: bytes) -> bool:
    """The signer's SM2 signature over TBS_Sign, with the key in the embedded signer certificate."""
    try:
        return parse_signature(ses_der).signature_valid()
    except SESFormatError:
        return False
