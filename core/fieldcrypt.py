"""Encryption of personal data at rest (names, ID numbers, phones, addresses).

Each column value becomes a compact text token ``v1.<kid>.<base64url(nonce || ct || tag)>`` encrypted
with SM4-GCM. The column's *context* (e.g. ``"identity.person.name"``) is the GCM associated data, so a
token copied into another column, or another row type, fails to decrypt.

Keys come from a keyring spec ``"kid1:hex,kid2:hex"``: the first kid encrypts, every kid decrypts.
Each hex value is a master secret (16 or 32 bytes); the SM4 key is derived from it with HMAC-SM3
under a fixed label, so the master never touches data directly.

Lookups on encrypted columns use a *blind index*: HMAC-SM3 under a dedicated index key. That key is
deliberately independent of the encryption kids, so rotating encryption keys never changes an index.
Give it explicitly as an ``index:<hex>`` entry (files made by :meth:`FieldKeyring.load_or_create`
always have one). Without it, the index key is derived from the *first* kid's master, which means:
before putting a new kid first, add ``index:<old first master hex>`` or every index changes.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping
from pathlib import Path

from core.crypto import CryptoError, hmac_sm3, random_bytes, sm4_gcm_decrypt, sm4_gcm_encrypt
from core.secrets_file import read_or_create

__all__ = ["INDEX_KID", "VERSION_TAG", "FieldKeyring"]

VERSION_TAG = "v1"
INDEX_KID = "index"  # reserved keyring entry name for the blind-index master secret
_ENC_LABEL = b"szt-field-enc"
_INDEX_LABEL = b"szt-blind-index"
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # no dots: the token uses them as separators
_MASTER_LENGTHS = (16, 32)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_master(kid: str, master: bytes) -> None:
    if len(master) not in _MASTER_LENGTHS:
        raise CryptoError(f"field key {kid!r}: master secret must be 16 or 32 bytes, got {len(master)}")


def _aad(kid: str, context: str) -> bytes:
    # Version, kid and column context all authenticated: moving a token anywhere else fails.
    return f"{VERSION_TAG}.{kid}.{context}".encode()


class FieldKeyring:
    """SM4-GCM keys for column encryption plus one stable blind-index key."""

    __slots__ = ("_current", "_enc_keys", "_index_key")

    def __init__(self, masters: Mapping[str, bytes], *, index_key: bytes | None = None) -> None:
        """``masters``: kid -> master secret, in order; the first one encrypts.

        ``index_key`` is the blind-index *master* secret (16/32 bytes); the HMAC key is derived from
        it. When omitted it is derived from the first kid's master (see the module docstring).
        """
        if not masters:
            raise CryptoError("field keyring needs at least one key")
        enc: dict[str, bytes] = {}
        for kid, master in masters.items():
            if not _KID_RE.match(kid) or kid == INDEX_KID:
                raise CryptoError(f"invalid field key id {kid!r}")
            _check_master(kid, master)
            enc[kid] = hmac_sm3(master, _ENC_LABEL)[:16]
        self._enc_keys = enc
        self._current = next(iter(enc))
        index_master = index_key if index_key is not None else masters[self._current]
        _check_master(INDEX_KID, index_master)
        self._index_key = hmac_sm3(index_master, _INDEX_LABEL)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_string(cls, spec: str) -> FieldKeyring:
        """Parse ``"kid1:hex,kid2:hex[,index:hex]"`` (commas or whitespace/newlines separate entries)."""
        masters: dict[str, bytes] = {}
        index_key: bytes | None = None
        for entry in re.split(r"[,\s]+", spec.strip()):
            if not entry:
                continue
            kid, sep, hexval = entry.partition(":")
            if not sep:
                raise CryptoError("field key entry must be kid:hex")
            try:
                secret = bytes.fromhex(hexval)
            except ValueError:
                raise CryptoError(f"field key {kid!r}: not hex") from None
            if kid == INDEX_KID:
                index_key = secret
            elif kid in masters:
                raise CryptoError(f"duplicate field key id {kid!r}")
            else:
                masters[kid] = secret
        return cls(masters, index_key=index_key)

    @classmethod
    def from_dict(cls, keys: Mapping[str, str | bytes], *, index_key: str | bytes | None = None) -> FieldKeyring:
        """Like the constructor but values may be hex strings."""

        def raw(v: str | bytes) -> bytes:
            try:
                return bytes.fromhex(v) if isinstance(v, str) else v
            except ValueError:
                raise CryptoError("field key: not hex") from None

        return cls({k: raw(v) for k, v in keys.items()}, index_key=None if index_key is None else raw(index_key))

    @classmethod
    def generate_spec(cls) -> str:
        """A fresh keyring spec: one dated encryption kid plus an explicit index secret."""
        kid = "k" + time.strftime("%Y%m%d", time.gmtime())
        return f"{kid}:{random_bytes(32).hex()},{INDEX_KID}:{random_bytes(32).hex()}"

    @classmethod
    def load_or_create(cls, path: Path, env_value: str) -> FieldKeyring:
        """Keys from ``env_value`` if non-empty, else from ``path``, else a new key file (mode 0600)."""
        if env_value.strip():
            return cls.from_string(env_value)
        return cls.from_string(read_or_create(path, cls.generate_spec))

    # ------------------------------------------------------------------ properties

    @property
    def current_kid(self) -> str:
        return self._current

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._enc_keys)

    # ------------------------------------------------------------------ operations

    def encrypt(self, value: str, *, context: str) -> str:
        kid = self._current
        blob = sm4_gcm_encrypt(self._enc_keys[kid], value.encode("utf-8"), _aad(kid, context))
        return f"{VERSION_TAG}.{kid}.{_b64url(blob)}"

    def decrypt(self, token: str, *, context: str) -> str:
        kid, blob = self._parse(token)
        key = self._enc_keys.get(kid)
        if key is None:
            raise CryptoError(f"unknown field key id {kid!r}")
        plaintext = sm4_gcm_decrypt(key, blob, _aad(kid, context))
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("field plaintext is not UTF-8") from None

    def kid_of(self, token: str) -> str:
        return self._parse(token)[0]

    def needs_rotation(self, token: str) -> bool:
        return self.kid_of(token) != self._current

    def rotate(self, token: str, context: str) -> str:
        """Re-encrypt under the current key; returns ``token`` itself when it already uses it."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)

    def blind_index(self, value: str, *, context: str) -> bytes:
        """Keyed HMAC-SM3 (32 bytes) for equality lookups on an encrypted column.

        The value is hashed exactly as given: normalising it (strip, upper-case an ID number's
        trailing X, drop spaces in a phone number) is the caller's job, and must be done the same way
        on write and on lookup. ``context`` separates columns so equal values in two columns do not
        share an index. Stable across encryption-key rotation.
        """
        return hmac_sm3(self._index_key, context.encode("utf-8") + b"\x00" + value.encode("utf-8"))

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _parse(token: str) -> tuple[str, bytes]:
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != VERSION_TAG or not _KID_RE.match(parts[1]):
            raise CryptoError("not a field-encryption token")
        try:
            blob = _unb64url(parts[2])
        except (binascii.Error, ValueError):
            raise CryptoError("field token payload is not base64url") from None
        return parts[1], blob

    def __repr__(self) -> str:  # never print key material
        return f"FieldKeyring(current={self._current!r}, kids={self.kids!r})"
