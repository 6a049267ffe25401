"""Dynamic identity codes (身份码): short-lived, SM2-signed tokens shown as a QR code.

Binary layout (89 bytes, all integers big-endian)::

    version (1) = 1 | kid (4) | code_id (16, random) | expires_at (4, unix seconds) | signature (64, raw r || s)

``kid`` is the first 4 bytes of SM3 over the issuer public key's uncompressed point; the signature is SM2-with-SM3
(default user id) over the first 25 bytes. The code carries no personal data: whoever holds the published issuer
keys can check it offline and learns only ``code_id``, ``kid`` and ``expires_at``; resolving ``code_id`` to a person
is the issuer's business.

Text form (what goes into the QR): ``"SZT1" + base32`` (RFC 4648, uppercase, no padding), 147 characters, all in
the QR alphanumeric set so the symbol stays at version <= 10 at error-correction level M.

Pure module: no I/O, no clock unless ``now`` is omitted.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import time
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from core.crypto import CryptoError, SM2PrivateKey, SM2PublicKey, der_to_raw, random_bytes, raw_to_der
from core.signed import KEY_ID_BYTES, key_id, key_id_text

__all__ = [
    "CODE_BYTES",
    "CODE_VERSION",
    "MAX_TEXT_CHARS",
    "TEXT_CHARS",
    "TEXT_PREFIX",
    "CodeError",
    "CodeErrorKind",
    "IssuedCode",
    "ParsedCode",
    "issue",
    "key_id",
    "key_id_text",
    "keyring",
    "parse",
    "verify",
]

CODE_VERSION = 1
TEXT_PREFIX = "SZT1"

CODE_ID_BYTES = 16
SIGNATURE_BYTES = 64
# version | kid | code_id | expires_at: the part the signature covers.
_SIGNED = struct.Struct(f">B{KEY_ID_BYTES}s{CODE_ID_BYTES}sI")
SIGNED_BYTES = _SIGNED.size  # 25
CODE_BYTES = SIGNED_BYTES + SIGNATURE_BYTES  # 89
TEXT_CHARS = len(TEXT_PREFIX) + (CODE_BYTES * 8 + 4) // 5  # 147
# Anything longer is rejected before decoding, so hostile input costs nothing.
MAX_TEXT_CHARS = 400

# expires_at is an unsigned 32-bit field; a day is far beyond any sane lifetime for a code shown on screen.
MAX_TTL_SECONDS = 86_400

_BASE32_BODY = re.compile(r"[A-Z2-7]+")

CodeErrorKind = Literal["malformed", "unknown-key", "forged", "expired"]


class CodeError(Exception):
    """A code that must not be accepted; ``kind`` says why (callers map it to their own responses)."""

    def __init__(self, kind: CodeErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: CodeErrorKind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"CodeError({self.kind!r}, {self.message!r})"


class IssuedCode(msgspec.Struct, frozen=True, kw_only=True):
    text: str  # what the QR encodes
    code_id: bytes  # 16 random bytes; the issuer maps it to the holder
    expires_at: int  # unix seconds
    kid: str  # key_id_text() of the signing key


class ParsedCode(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    code_id: bytes
    expires_at: int


# --------------------------------------------------------------------------- key ids


def keyring(public_keys: Iterable[SM2PublicKey]) -> dict[str, SM2PublicKey]:
    """``{kid text: key}`` for :func:`verify`, from the published issuer keys."""
    return {key_id_text(k): k for k in public_keys}


# --------------------------------------------------------------------------- issue


def issue(private_key: SM2PrivateKey, *, ttl_seconds: int = 60, now: float | None = None) -> IssuedCode:
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be in [1, {MAX_TTL_SECONDS}]")
    issued_at = int(time.time() if now is None else now)
    expires_at = issued_at + ttl_seconds
    kid = key_id(private_key.public_key())
    code_id = random_bytes(CODE_ID_BYTES)
    signed = _SIGNED.pack(CODE_VERSION, kid, code_id, expires_at)
    signature = der_to_raw(private_key.sign(signed))
    body = base64.b32encode(signed + signature).decode("ascii").rstrip("=")
    return IssuedCode(text=TEXT_PREFIX + body, code_id=code_id, expires_at=expires_at, kid=kid.hex())


# --------------------------------------------------------------------------- parse / verify


def _malformed(message: str) -> CodeError:
    return CodeError("malformed", message)


def _decode(text: str) -> tuple[ParsedCode, bytes, bytes]:
    """Structure checks only. Returns the parsed fields, the signed bytes and the raw signature."""
    if not isinstance(text, str):
        raise _malformed("code must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise _malformed(f"code longer than {MAX_TEXT_CHARS} characters")
    if not text.startswith(TEXT_PREFIX):
        raise _malformed(f"code must start with {TEXT_PREFIX!r}")
    if len(text) != TEXT_CHARS:
        raise _malformed(f"code must be {TEXT_CHARS} characters, got {len(text)}")
    body = text[len(TEXT_PREFIX) :]
    if not _BASE32_BODY.fullmatch(body):
        raise _malformed("code body is not uppercase base32")
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except binascii.Error as exc:
        raise _malformed("code body is not valid base32") from exc
    # The last character carries 3 unused bits that b32decode ignores; insisting on the canonical encoding means
    # one code has exactly one text, so a flipped character can never decode to the same, validly signed bytes.
    if base64.b32encode(raw).decode("ascii").rstrip("=") != body:
        raise _malformed("code body is not canonical base32")
    if len(raw) != CODE_BYTES:
        raise _malformed(f"code must decode to {CODE_BYTES} bytes, got {len(raw)}")
    version, kid, code_id, expires_at = _SIGNED.unpack_from(raw)
    if version != CODE_VERSION:
        raise _malformed(f"unsupported code version {version}")
    parsed = ParsedCode(kid=kid.hex(), code_id=code_id, expires_at=expires_at)
    return parsed, raw[:SIGNED_BYTES], raw[SIGNED_BYTES:]


def parse(text: str) -> ParsedCode:
    """Check the structure only (no key, no signature, no clock). Raises ``CodeError("malformed", ...)``."""
    return _decode(text)[0]


def verify(
    text: str,
    keys: Mapping[str, SM2PublicKey],
    *,
    now: float | None = None,
    leeway: int = 5,
) -> ParsedCode:
    """The offline check anyone holding the published issuer keys can run.

    ``keys`` maps kid text (:func:`key_id_text`) to the issuer public key. Checks, in this order: structure
    ("malformed"), kid known ("unknown-key"), signature ("forged"), ``now <= expires_at + leeway`` ("expired").
    Expiry comes last so a stale forgery is reported as forged, never as merely stale.
    """
    if leeway < 0:
        raise ValueError("leeway must not be negative")
    parsed, signed, signature = _decode(text)
    public_key = keys.get(parsed.kid)
    if public_key is None:
        raise CodeError("unknown-key", f"no issuer key with kid {parsed.kid}")
    try:
        signature_der = raw_to_der(signature)
    except CryptoError as exc:  # cannot happen for 64 bytes, but never let it escape as a 500
        raise CodeError("forged", "signature does not verify") from exc
    if not public_key.verify(signature_der, signed):
        raise CodeError("forged", "signature does not verify")
    current = time.time() if now is None else now
    if current > parsed.expires_at + leeway:
        raise CodeError("expired", "code has expired")
    return parsed
