"""GB/T 38540-2020 electronic seal structures (version 4) in asn1crypto: SES_Seal and SES_Signature.

SES_Seal    ::= SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING, signAlgID OID, signedValue BIT STRING }
SES_SealInfo ::= SEQUENCE { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
                            picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
SES_Signature ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING, signatureAlgID OID, signature BIT STRING,
                             timeStamp [0] BIT STRING OPTIONAL }
TBS_Sign    ::= SEQUENCE { version INTEGER, eseal SES_Seal, timeInfo GeneralizedTime, dataHash BIT STRING,
                           propertyInfo IA5String, extDatas ExtensionDatas OPTIONAL }

`signedValue` is the seal maker's SM2 signature over DER(SES_SealInfo) || cert || signAlgID (the standard's
"原文"); `signature` is the signer's SM2 signature over DER(TBS_Sign). `dataHash` is SM3 of the signed bytes.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from asn1crypto import core

from core.crypto import OID_SM2_WITH_SM3, SM2PublicKey
from eseal import x509build

SEAL_TYPES = {"official": 1, "contract": 2, "finance": 3, "personal": 4}  # 1 单位印章 … 4 个人印章 (ours: 2, 3)


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
        ("time_stamp", core.OctetBitString, {"implicit": 0, "optional": True}),
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
                "create_date": dt.datetime.now(dt.UTC),
                "valid_start": valid_start,
                "valid_end": valid_end,
            },
            "picture": {"type": "png", "data": picture_png, "width": width_mm, "height": height_mm},
            "ext_datas": [{"extn_id": OID_SEAL_CODE, "extn_value": es_id.encode()}],
        }
    )


def seal_to_be_signed(info: SealInfo, maker_cert: bytes) -> bytes:
    return (
        bytes(info.dump())
        + bytes(core.OctetString(maker_cert).dump())
        + bytes(core.ObjectIdentifier(OID_SM2_WITH_SM3).dump())
    )


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


def assemble_signature(tbs: TBSSign, signer_cert: bytes, signature: bytes) -> bytes:
    doc = SESSignature(
        {"to_sign": tbs, "cert": signer_cert, "signature_alg_id": OID_SM2_WITH_SM3, "signature": signature}
    )
    return bytes(doc.dump())


def bit_bytes(value: core.OctetBitString) -> bytes:
    return bytes(value.native)


def seal_signature_valid(seal_der: bytes) -> bool:
    """The seal maker's signature over the seal, with the key in the embedded maker certificate."""
    seal = SESSeal.load(seal_der)
    maker = bytes(seal["cert"].native)
    tbs = seal_to_be_signed(seal["e_seal_info"], maker)
    return SM2PublicKey.from_der(x509build.spki_of(maker)).verify(bit_bytes(seal["signed_value"]), tbs)


def signature_valid(ses_der: bytes) -> bool:
    """The signer's SM2 signature over TBS_Sign, with the key in the embedded signer certificate."""
    doc = SESSignature.load(ses_der)
    cert = bytes(doc["cert"].native)
    return SM2PublicKey.from_der(x509build.spki_of(cert)).verify(
        bit_bytes(doc["signature"]), bytes(doc["to_sign"].dump())
    )
