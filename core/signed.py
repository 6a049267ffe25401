"""Compact SM2-signed documents: `base64url(JSON payload) "." base64url(r||s)`.

The signature covers the ASCII of the first part, with the SM2 default user id, so any SM2 implementation
(gmssl, Tongsuo, a verifier's own) checks it given only the published key named by the payload's `kid`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import msgspec

from core.crypto import SM2PrivateKey, SM2PublicKey, der_to_raw, raw_to_der, sm3

KEY_ID_BYTES = 4  # an issuer key's id: the first bytes of SM3(04 || X || Y)


def key_id(public_key: SM2PublicKey) -> bytes:
    """First 4 bytes of SM3(04 || X || Y): names an issuer key inside each code and signed document."""
    return sm3(public_key.to_uncompressed())[:KEY_ID_BYTES]


def key_id_text(public_key: SM2PublicKey) -> str:
    """Text form of :func:`key_id` (8 lowercase hex digits), the `kid` of published keys."""
    return key_id(public_key).hex()


class SignedDocumentError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "malformed" | "unknown-key" | "forged"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_document(key: SM2PrivateKey, payload: Mapping[str, Any]) -> str:
    head = b64u(msgspec.json.encode(payload, order="sorted"))
    return head + "." + b64u(der_to_raw(key.sign(head.encode())))


def verify_document(token: str, keys: Mapping[str, SM2PublicKey], *, max_len: int = 8192) -> dict[str, Any]:
    """Check structure and signature; returns the payload. Expiry is the caller's rule."""
    if len(token) > max_len or token.count(".") != 1:
        raise SignedDocumentError("malformed", "not a signed document")
    head, sig = token.split(".")
    try:
        payload = msgspec.json.decode(b64u_decode(head))
        raw = b64u_decode(sig)
    except (ValueError, msgspec.DecodeError) as exc:
        raise SignedDocumentError("malformed", "not a signed document") from exc
    if not isinstance(payload, dict) or len(raw) != 64:
        raise SignedDocumentError("malformed", "not a signed document")
    key = keys.get(str(payload.get("kid", "")))
    if key is None:
        raise SignedDocumentError("unknown-key", "signed with a key this issuer does not publish")
    if not key.verify(raw_to_der(raw), head.encode()):
        raise SignedDocumentError("forged", "signature does not verify")
    return payload
