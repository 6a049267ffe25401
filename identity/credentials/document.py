"""网证 (network ID credential): the 网号, issuer, validity, assurance level and salted SM3 digests of the identity
attributes, bound to the device's SM2 key, signed with the issuer's SM2 key (see core.signed)."""

from __future__ import annotations

import secrets
from datetime import datetime

from core.crypto import SM2PrivateKey, SM2PublicKey, sm3
from core.signed import b64u, sign_document

CREDENTIAL_TYPE = "szt-wangzheng"
# Attributes whose salted digests a credential carries; the holder may reveal value + salt to a verifier.
ATTRIBUTES = ("name", "id_number", "birth_date", "gender")


def attribute_digest(salt: bytes, value: str) -> str:
    return sm3(salt + value.encode()).hex()


def new_salts() -> dict[str, str]:
    return {a: secrets.token_hex(16) for a in ATTRIBUTES}


def build(
    *,
    key: SM2PrivateKey,
    kid: str,
    issuer: str,
    serial: str,
    wangha: str,
    level: str,
    device_key: SM2PublicKey,
    attributes: dict[str, str],
    salts: dict[str, str],
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    payload = {
        "typ": CREDENTIAL_TYPE,
        "v": 1,
        "kid": kid,
        "iss": issuer,
        "sn": serial,
        "wh": wangha,
        "lvl": level,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "cnf": {"sm2": b64u(device_key.to_uncompressed())},
        "att": {a: attribute_digest(bytes.fromhex(salts[a]), attributes[a]) for a in ATTRIBUTES},
    }
    return sign_document(key, payload)
