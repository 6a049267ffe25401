"""Cryptography for the whole project.

National algorithms (SM2 / SM3 / SM4) go through Tongsuo via ``tongsuopy``; international ones
(ES256 / RSA / SHA-256) through ``cryptography``. Everything here is thin on purpose: callers get
bytes in, bytes out, and one exception type (:class:`CryptoError`) for anything that is the
caller's data being wrong (bad ciphertext, bad key material). A bad *signature* is not an error:
the ``*_verify`` helpers return ``False``.

SM2 signatures use the default user id ``1234567812345678`` (GB/T 32918 / GM/T 0009); tongsuopy
offers no way to set another one, so neither do we.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Literal, NoReturn

from asn1crypto import core as asn1
from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes as _chashes
from cryptography.hazmat.primitives.asymmetric import ec as _cec
from cryptography.hazmat.primitives.asymmetric import padding as _padding
from cryptography.hazmat.primitives.asymmetric import rsa as _rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from tongsuopy.backends.tongsuo.backend import backend as _tongsuo
from tongsuopy.crypto import hashes as _thashes
from tongsuopy.crypto import serialization as _tser
from tongsuopy.crypto.asymciphers import ec as _tec
from tongsuopy.crypto.ciphers import Cipher as _Cipher
from tongsuopy.crypto.ciphers import algorithms as _algorithms
from tongsuopy.crypto.ciphers import modes as _modes
from tongsuopy.crypto.ciphers.aead import SM4GCM as _SM4GCM
from tongsuopy.crypto.exceptions import InternalError as _InternalError
from tongsuopy.crypto.exceptions import InvalidSignature as _InvalidSignature
from tongsuopy.crypto.exceptions import InvalidTag as _InvalidTag
from tongsuopy.crypto.exceptions import UnsupportedAlgorithm as _UnsupportedAlgorithm

__all__ = [
    "GCM_NONCE_LEN",
    "GCM_TAG_LEN",
    "OID_SM2_CURVE",
    "OID_SM2_WITH_SM3",
    "OID_SM3",
    "OID_SM4",
    "SM2_DEFAULT_USER_ID",
    "CryptoError",
    "SM2CipherFormat",
    "SM2PrivateKey",
    "SM2PublicKey",
    "der_to_raw",
    "es256_sign",
    "es256_verify",
    "generate_es256_key",
    "generate_rsa_key",
    "generate_sm2_key",
    "hmac_sm3",
    "hmac_sm3_verify",
    "random_bytes",
    "raw_to_der",
    "rsa_sign",
    "rsa_verify",
    "sha256",
    "sm2_ciphertext_from_raw",
    "sm2_ciphertext_to_raw",
    "sm2_decrypt",
    "sm2_encrypt",
    "sm2_sign",
    "sm2_verify",
    "sm3",
    "sm4_ecb_encrypt_block",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]

# Object identifiers (see shared/spec/crypto-vectors.md).
OID_SM2_CURVE = "1.2.156.10197.1.301"
OID_SM2_WITH_SM3 = "1.2.156.10197.1.501"
OID_SM3 = "1.2.156.10197.1.401"
OID_SM4 = "1.2.156.10197.1.104"

SM2_DEFAULT_USER_ID = b"1234567812345678"
# Order of the SM2 base point; a private key d must lie in [1, n-2] (GB/T 32918.1 §6.1).
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

GCM_NONCE_LEN = 12
GCM_TAG_LEN = 16
_SM3_BLOCK = 64


class CryptoError(Exception):
    """Bad key material, undecryptable or tampered ciphertext, malformed encodings."""


def random_bytes(n: int) -> bytes:
    return secrets.token_bytes(n)


# --------------------------------------------------------------------------- SM3


_SM3 = _thashes.SM3()


def sm3(data: bytes) -> bytes:
    h = _thashes.Hash(_SM3)
    h.update(data)
    return bytes(h.finalize())


# RFC 2104 pads as integers so the key XOR is one big-int operation, not a byte loop.
_IPAD = int.from_bytes(b"\x36" * _SM3_BLOCK, "big")
_OPAD = int.from_bytes(b"\x5c" * _SM3_BLOCK, "big")


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) over SM3. tongsuopy ships no HMAC module, so the construction is done here."""
    if len(key) > _SM3_BLOCK:
        key = sm3(key)
    k = int.from_bytes(key.ljust(_SM3_BLOCK, b"\0"), "big")
    inner = sm3((k ^ _IPAD).to_bytes(_SM3_BLOCK, "big") + data)
    return sm3((k ^ _OPAD).to_bytes(_SM3_BLOCK, "big") + inner)


def hmac_sm3_verify(key: bytes, data: bytes, mac: bytes) -> bool:
    # Constant-time compare so the MAC cannot be guessed byte by byte.
    return hmac.compare_digest(hmac_sm3(key, data), mac)


# --------------------------------------------------------------------------- SM4


def _check_sm4_key(key: bytes) -> None:
    if len(key) != 16:
        raise CryptoError(f"SM4 key must be 16 bytes, got {len(key)}")


def sm4_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Return ``nonce(12) || ciphertext || tag(16)``; a fresh random nonce per call."""
    _check_sm4_key(key)
    nonce = secrets.token_bytes(GCM_NONCE_LEN)
    return nonce + bytes(_SM4GCM(key).encrypt(nonce, plaintext, aad))


def sm4_gcm_decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    _check_sm4_key(key)
    if len(blob) < GCM_NONCE_LEN + GCM_TAG_LEN:
        raise CryptoError("SM4-GCM blob too short")
    nonce, body = blob[:GCM_NONCE_LEN], blob[GCM_NONCE_LEN:]
    try:
        return bytes(_SM4GCM(key).decrypt(nonce, body, aad))
    except _InvalidTag:
        # Wrong key, wrong AAD and tampering are indistinguishable by design.
        raise CryptoError("SM4-GCM authentication failed (wrong key/AAD or tampered data)") from None


def sm4_ecb_encrypt_block(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block. Only for the standard test vector; never use ECB for data."""
    _check_sm4_key(key)
    if len(block) != 16:
        raise CryptoError("SM4 block must be 16 bytes")
    enc = _Cipher(_algorithms.SM4(key), _modes.ECB()).encryptor()
    return bytes(enc.update(block) + enc.finalize())


# --------------------------------------------------------------------------- signature encodings


def der_to_raw(signature: bytes, size: int = 32) -> bytes:
    """DER ``SEQUENCE{r, s}`` -> fixed-width ``r || s`` (JOSE / gmssl form). ``size`` = scalar bytes."""
    try:
        r, s = decode_dss_signature(signature)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    except (ValueError, OverflowError) as exc:
        raise CryptoError("malformed DER signature") from exc


def raw_to_der(signature: bytes) -> bytes:
    """Fixed-width ``r || s`` -> DER ``SEQUENCE{r, s}``."""
    if not signature or len(signature) % 2:
        raise CryptoError("raw signature must be r || s of equal length")
    half = len(signature) // 2
    return encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))


# --------------------------------------------------------------------------- SM2 ciphertext encodings

# How an SM2 ciphertext travels:
#   "der"   - GM/T 0009 ASN.1 SEQUENCE {x, y, C3 hash, C2} as Tongsuo/OpenSSL produce and consume;
#   "raw"   - x(32) || y(32) || C3(32) || C2, as gmssl's CryptSM2(mode=1) produces (no 04 prefix);
#   "raw04" - 04 || x || y || C3 || C2, the GB/T 32918.4 byte-string form (BouncyCastle etc.).
SM2CipherFormat = Literal["der", "raw", "raw04"]


class _SM2Ciphertext(asn1.Sequence):
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("x", asn1.Integer),
        ("y", asn1.Integer),
        ("hash", asn1.OctetString),
        ("ciphertext", asn1.OctetString),
    ]


def sm2_ciphertext_to_raw(der: bytes, *, prefix: bool = False) -> bytes:
    """DER ciphertext -> C1C3C2 bytes (``prefix`` adds the 0x04 point marker)."""
    try:
        seq = _SM2Ciphertext.load(der, strict=True)
        x, y = seq["x"].native, seq["y"].native
        c3, c2 = seq["hash"].native, seq["ciphertext"].native
        c1 = x.to_bytes(32, "big") + y.to_bytes(32, "big")
    except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as exc:
        raise CryptoError("malformed SM2 DER ciphertext") from exc
    if len(c3) != 32:
        raise CryptoError("SM2 ciphertext hash must be 32 bytes")
    return (b"\x04" if prefix else b"") + c1 + c3 + c2


def sm2_ciphertext_from_raw(raw: bytes, *, prefix: bool = False) -> bytes:
    """C1C3C2 bytes (with a 0x04 marker when ``prefix``) -> DER ciphertext."""
    if prefix:
        if raw[:1] != b"\x04":
            raise CryptoError("SM2 raw04 ciphertext must start with 0x04")
        raw = raw[1:]
    if len(raw) < 64 + 32 + 1:
        raise CryptoError("SM2 raw ciphertext too short")
    seq = _SM2Ciphertext(
        {
            "x": int.from_bytes(raw[:32], "big"),
            "y": int.from_bytes(raw[32:64], "big"),
            "hash": raw[64:96],
            "ciphertext": raw[96:],
        }
    )
    return bytes(seq.dump())


# --------------------------------------------------------------------------- SM2 keys

_SM2_SIG = _tec.ECDSA(_thashes.SM3())  # tongsuopy picks SM2-with-SM3 (Z_A, default id) for SM2 keys


def _pkey_crypt(evp_pkey: Any, data: bytes, *, encrypt: bool) -> bytes:
    """EVP_PKEY_encrypt/decrypt through tongsuopy's cffi binding (tongsuopy has no public API for it).

    Tongsuo's SM2 EVP method speaks the DER C1C3C2 form with SM3, same as ``openssl pkeyutl``.
    """
    lib, ffi = _tongsuo._lib, _tongsuo._ffi
    ctx = lib.EVP_PKEY_CTX_new(evp_pkey, ffi.NULL)
    if ctx == ffi.NULL:
        _tongsuo._consume_errors()
        raise CryptoError("EVP_PKEY_CTX_new failed")
    ctx = ffi.gc(ctx, lib.EVP_PKEY_CTX_free)
    init, op = (
        (lib.EVP_PKEY_encrypt_init, lib.EVP_PKEY_encrypt)
        if encrypt
        else (lib.EVP_PKEY_decrypt_init, lib.EVP_PKEY_decrypt)
    )
    outlen = ffi.new("size_t *")
    if init(ctx) != 1 or op(ctx, ffi.NULL, outlen, data, len(data)) != 1:
        _pkey_crypt_failed(encrypt)
    buf = ffi.new("unsigned char[]", max(outlen[0], 1))
    if op(ctx, buf, outlen, data, len(data)) != 1:
        _pkey_crypt_failed(encrypt)
    return bytes(ffi.buffer(buf)[: outlen[0]])


def _pkey_crypt_failed(encrypt: bool) -> NoReturn:
    # Leave the shared OpenSSL error queue clean for the next caller.
    _tongsuo._consume_errors()
    raise CryptoError("SM2 encryption failed" if encrypt else "SM2 decryption failed")


def _load_or_raise(loader: Any, *args: Any) -> Any:
    try:
        return loader(*args)
    except (ValueError, TypeError, _UnsupportedAlgorithm, _InternalError) as exc:
        raise CryptoError(f"cannot load SM2 key: {exc}") from exc


def _is_sm2(key: Any) -> bool:
    return isinstance(getattr(key, "curve", None), _tec.SM2)


SM2_MIN_PLAINTEXT = 8


class SM2PublicKey:
    """An SM2 public key; wraps a tongsuopy key so per-call work is just the EVP operation."""

    __slots__ = ("_key",)

    def __init__(self, key: _tec.EllipticCurvePublicKey) -> None:
        if not (isinstance(key, _tec.EllipticCurvePublicKey) and _is_sm2(key)):
            raise CryptoError("not an SM2 public key")
        self._key = key

    # -- import
    @classmethod
    def from_der(cls, data: bytes) -> SM2PublicKey:
        return cls(_load_or_raise(_tser.load_der_public_key, data))

    @classmethod
    def from_pem(cls, data: bytes | str) -> SM2PublicKey:
        raw = data.encode() if isinstance(data, str) else data
        return cls(_load_or_raise(_tser.load_pem_public_key, raw))

    @classmethod
    def from_uncompressed(cls, data: bytes) -> SM2PublicKey:
        """``04 || X || Y`` (65 bytes); the bare 64-byte ``X || Y`` used by gmssl is accepted too."""
        if len(data) == 64:
            data = b"\x04" + data
        if len(data) != 65 or data[0] != 4:
            raise CryptoError("uncompressed SM2 point must be 04 || X || Y (65 bytes)")
        return cls(_load_or_raise(_tec.EllipticCurvePublicKey.from_encoded_point, _tec.SM2(), data))

    @classmethod
    def from_xy(cls, x: int, y: int) -> SM2PublicKey:
        # Tongsuo rejects points that are not on the curve.
        nums = _tec.EllipticCurvePublicNumbers(x, y, _tec.SM2())
        return cls(_load_or_raise(nums.public_key))

    # -- export
    def to_der(self) -> bytes:
        return bytes(self._key.public_bytes(_tser.Encoding.DER, _tser.PublicFormat.SubjectPublicKeyInfo))

    def to_pem(self) -> str:
        return bytes(self._key.public_bytes(_tser.Encoding.PEM, _tser.PublicFormat.SubjectPublicKeyInfo)).decode(
            "ascii"
        )

    def to_uncompressed(self) -> bytes:
        return bytes(self._key.public_bytes(_tser.Encoding.X962, _tser.PublicFormat.UncompressedPoint))

    @property
    def xy(self) -> tuple[int, int]:
        nums = self._key.public_numbers()
        return int(nums.x), int(nums.y)

    @property
    def key(self) -> Any:
        """The underlying tongsuopy key, for code that needs the library object."""
        return self._key

    # -- operations
    def verify(self, signature: bytes, data: bytes) -> bool:
        """SM2-with-SM3 (default user id), DER signature. False on any bad/malformed signature."""
        try:
            self._key.verify(signature, data, _SM2_SIG)
        except (_InvalidSignature, _InternalError, ValueError):
            # Malformed DER surfaces from tongsuopy as InternalError; to a verifier it is just "invalid".
            return False
        return True

    def encrypt(self, plaintext: bytes, *, fmt: SM2CipherFormat = "der") -> bytes:
        if len(plaintext) < SM2_MIN_PLAINTEXT:
            # GB/T 32918.4 requires the KDF output t to be non-zero (else C2 would equal the message). Tongsuo
            # does not retry on t = 0, which for a 1-byte message happens once in 256; from 8 bytes on it is 2^-64.
            raise CryptoError(f"SM2 encryption needs at least {SM2_MIN_PLAINTEXT} bytes of plaintext")
        der = _pkey_crypt(self._key._evp_pkey, plaintext, encrypt=True)
        return der if fmt == "der" else sm2_ciphertext_to_raw(der, prefix=fmt == "raw04")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SM2PublicKey):
            return NotImplemented
        return self.to_uncompressed() == other.to_uncompressed()

    def __hash__(self) -> int:
        return hash(self.to_uncompressed())


class SM2PrivateKey:
    __slots__ = ("_key", "_public")

    def __init__(self, key: _tec.EllipticCurvePrivateKey) -> None:
        if not (isinstance(key, _tec.EllipticCurvePrivateKey) and _is_sm2(key)):
            raise CryptoError("not an SM2 private key")
        self._key = key
        # Derived once: public_key() is on hot paths (JWKS, verify-after-sign) and costs an EC_KEY copy.
        self._public = SM2PublicKey(key.public_key())

    # -- creation / import
    @classmethod
    def generate(cls) -> SM2PrivateKey:
        return cls(_tec.generate_private_key(_tec.SM2()))

    @classmethod
    def from_private_value(cls, d: int) -> SM2PrivateKey:
        if not 1 <= d <= SM2_N - 2:
            raise CryptoError("SM2 private value out of range [1, n-2]")
        return cls(_load_or_raise(_tec.derive_private_key, d, _tec.SM2()))

    @classmethod
    def from_pem(cls, data: bytes | str, password: bytes | None = None) -> SM2PrivateKey:
        raw = data.encode() if isinstance(data, str) else data
        return cls(_load_or_raise(_tser.load_pem_private_key, raw, password))

    @classmethod
    def from_der(cls, data: bytes, password: bytes | None = None) -> SM2PrivateKey:
        return cls(_load_or_raise(_tser.load_der_private_key, data, password))

    # -- export
    def _encryption(self, password: bytes | None) -> Any:
        return _tser.BestAvailableEncryption(password) if password else _tser.NoEncryption()

    def to_pem(self, password: bytes | None = None) -> str:
        """PKCS#8 PEM (encrypted when a password is given)."""
        return bytes(
            self._key.private_bytes(_tser.Encoding.PEM, _tser.PrivateFormat.PKCS8, self._encryption(password))
        ).decode("ascii")

    def to_der(self, password: bytes | None = None) -> bytes:
        """PKCS#8 DER."""
        return bytes(self._key.private_bytes(_tser.Encoding.DER, _tser.PrivateFormat.PKCS8, self._encryption(password)))

    @property
    def private_value(self) -> int:
        return int(self._key.private_numbers().private_value)

    @property
    def key(self) -> Any:
        return self._key

    # -- operations
    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        """SM2-with-SM3 signature (default user id), DER encoded. Use der_to_raw() for JOSE."""
        return bytes(self._key.sign(data, _SM2_SIG))

    def decrypt(self, ciphertext: bytes, *, fmt: SM2CipherFormat = "der") -> bytes:
        der = ciphertext if fmt == "der" else sm2_ciphertext_from_raw(ciphertext, prefix=fmt == "raw04")
        return _pkey_crypt(self._key._evp_pkey, der, encrypt=False)


def generate_sm2_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


def sm2_sign(private_key: SM2PrivateKey, data: bytes) -> bytes:
    return private_key.sign(data)


def sm2_verify(public_key: SM2PublicKey, signature: bytes, data: bytes) -> bool:
    return public_key.verify(signature, data)


def sm2_encrypt(public_key: SM2PublicKey, plaintext: bytes, *, fmt: SM2CipherFormat = "der") -> bytes:
    return public_key.encrypt(plaintext, fmt=fmt)


def sm2_decrypt(private_key: SM2PrivateKey, ciphertext: bytes, *, fmt: SM2CipherFormat = "der") -> bytes:
    return private_key.decrypt(ciphertext, fmt=fmt)


# --------------------------------------------------------------------------- international


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def generate_es256_key() -> _cec.EllipticCurvePrivateKey:
    return _cec.generate_private_key(_cec.SECP256R1())


def es256_sign(private_key: _cec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256 / SHA-256, DER encoded (der_to_raw() gives the JOSE form)."""
    return private_key.sign(data, _cec.ECDSA(_chashes.SHA256()))


def es256_verify(public_key: _cec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data, _cec.ECDSA(_chashes.SHA256()))
    except _CryptographyInvalidSignature:
        return False
    return True


def generate_rsa_key(bits: int = 2048) -> _rsa.RSAPrivateKey:
    if bits not in (2048, 3072, 4096):
        raise CryptoError("RSA key size must be 2048, 3072 or 4096")
    return _rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _rsa_padding(pss: bool) -> _padding.AsymmetricPadding:
    # PSS salt = digest length, as JOSE PS256 (RFC 7518 §3.5) requires.
    if pss:
        return _padding.PSS(mgf=_padding.MGF1(_chashes.SHA256()), salt_length=_padding.PSS.DIGEST_LENGTH)
    return _padding.PKCS1v15()


def rsa_sign(private_key: _rsa.RSAPrivateKey, data: bytes, *, pss: bool = False) -> bytes:
    """RSA with SHA-256: PKCS#1 v1.5 (RS256) by default, PSS (PS256) when ``pss``."""
    return private_key.sign(data, _rsa_padding(pss), _chashes.SHA256())


def rsa_verify(public_key: _rsa.RSAPublicKey, signature: bytes, data: bytes, *, pss: bool = False) -> bool:
    try:
        public_key.verify(signature, data, _rsa_padding(pss), _chashes.SHA256())
    except _CryptographyInvalidSignature:
        return False
    return True
