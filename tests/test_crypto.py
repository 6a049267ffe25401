"""core.crypto / core.fieldcrypt / core.masking: standard vectors and cross-checks against gmssl."""

from __future__ import annotations

import secrets
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from gmssl import func, sm2
from gmssl import sm3 as gm_sm3

from core import crypto
from core.crypto import (
    CryptoError,
    SM2PrivateKey,
    SM2PublicKey,
    der_to_raw,
    hmac_sm3,
    raw_to_der,
    sm2_decrypt,
    sm2_encrypt,
    sm2_sign,
    sm2_verify,
    sm3,
    sm4_ecb_encrypt_block,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from core.fieldcrypt import FieldKeyring
from core.masking import mask_address, mask_email, mask_id_number, mask_name, mask_phone

# --------------------------------------------------------------------------- helpers


def gmssl_for(key: SM2PrivateKey | SM2PublicKey) -> sm2.CryptSM2:
    """A gmssl CryptSM2 (C1C3C2) for the same key pair."""
    pub = key.public_key() if isinstance(key, SM2PrivateKey) else key
    xy_hex = pub.to_uncompressed()[1:].hex()
    priv_hex = f"{key.private_value:064x}" if isinstance(key, SM2PrivateKey) else ""
    gm = sm2.CryptSM2(private_key=priv_hex, public_key=xy_hex, mode=1)
    # gmssl does public_key.lstrip("04"), which eats leading 0/4 digits of X; set it verbatim.
    gm.public_key = xy_hex
    return gm


def gmssl_k() -> str:
    return f"{secrets.randbelow(crypto.SM2_N - 2) + 1:064x}"


def ref_hmac_sm3(key: bytes, msg: bytes) -> bytes:
    """Independent HMAC-SM3 over gmssl's pure-Python SM3."""

    def h(data: bytes) -> bytes:
        return bytes.fromhex(gm_sm3.sm3_hash(func.bytes_to_list(data)))

    if len(key) > 64:
        key = h(key)
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    return h(opad + h(ipad + msg))


@pytest.fixture(scope="module")
def sm2_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


# --------------------------------------------------------------------------- SM3 / HMAC-SM3 / SM4 vectors


def test_sm3_vectors() -> None:
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


@pytest.mark.parametrize("key_len", [0, 16, 32, 64, 65, 100])
def test_hmac_sm3_matches_independent_implementation(key_len: int) -> None:
    key = secrets.token_bytes(key_len)
    for msg in (b"", b"abc", secrets.token_bytes(200)):
        assert hmac_sm3(key, msg) == ref_hmac_sm3(key, msg)
    mac = hmac_sm3(key, b"m")
    assert crypto.hmac_sm3_verify(key, b"m", mac)
    assert not crypto.hmac_sm3_verify(key, b"n", mac)


def test_sm4_ecb_vector() -> None:
    k = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert sm4_ecb_encrypt_block(k, k).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_roundtrip_and_layout() -> None:
    key = crypto.random_bytes(16)
    for pt in (b"", b"x", "苏证通".encode() * 100):
        blob = sm4_gcm_encrypt(key, pt, b"aad")
        assert len(blob) == 12 + len(pt) + 16
        assert sm4_gcm_decrypt(key, blob, b"aad") == pt
    # fresh nonce each time
    assert sm4_gcm_encrypt(key, b"same") != sm4_gcm_encrypt(key, b"same")


def test_sm4_gcm_tamper_and_wrong_aad() -> None:
    key = crypto.random_bytes(16)
    blob = sm4_gcm_encrypt(key, b"secret data", b"ctx")
    for i in (0, 12, len(blob) - 1):  # nonce, ciphertext, tag
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            sm4_gcm_decrypt(key, bytes(bad), b"ctx")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, blob, b"other")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(crypto.random_bytes(16), blob, b"ctx")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, blob[:20], b"ctx")
    with pytest.raises(CryptoError):
        sm4_gcm_encrypt(b"short", b"x")


# --------------------------------------------------------------------------- SM2 signatures


def test_sm2_sign_core_verify_gmssl(sm2_key: SM2PrivateKey) -> None:
    gm = gmssl_for(sm2_key.public_key())
    msg = "电子证照 signature".encode()
    for _ in range(3):
        sig = sm2_sign(sm2_key, msg)
        raw_hex = der_to_raw(sig).hex()
        assert gm.verify_with_sm3(raw_hex, msg)
        assert not gm.verify_with_sm3(raw_hex, msg + b"!")


def test_sm2_sign_gmssl_verify_core(sm2_key: SM2PrivateKey) -> None:
    gm = gmssl_for(sm2_key)
    pub = sm2_key.public_key()
    msg = b"hello from gmssl"
    raw_hex = gm.sign_with_sm3(msg, gmssl_k())
    der = raw_to_der(bytes.fromhex(raw_hex))
    assert sm2_verify(pub, der, msg)
    assert not sm2_verify(pub, der, b"hello from gmssl?")
    bad = bytearray(bytes.fromhex(raw_hex))
    bad[10] ^= 0x01
    assert not sm2_verify(pub, raw_to_der(bytes(bad)), msg)


def test_sm2_verify_never_raises_on_garbage(sm2_key: SM2PrivateKey) -> None:
    pub = sm2_key.public_key()
    sig = sm2_key.sign(b"m")
    for junk in (b"", b"\x30\x00", b"garbage", sig[:-1], sig + b"\x00"):
        assert pub.verify(junk, b"m") is False
    other = SM2PrivateKey.generate().public_key()
    assert not other.verify(sig, b"m")
    assert pub.verify(sig, b"m")  # error queue left clean


def test_der_raw_roundtrip(sm2_key: SM2PrivateKey) -> None:
    sig = sm2_key.sign(b"x")
    raw = der_to_raw(sig)
    assert len(raw) == 64
    assert raw_to_der(raw) == sig
    with pytest.raises(CryptoError):
        der_to_raw(b"junk")
    with pytest.raises(CryptoError):
        raw_to_der(b"abc")


# --------------------------------------------------------------------------- SM2 encryption


def test_sm2_encrypt_core_decrypt_gmssl(sm2_key: SM2PrivateKey) -> None:
    gm = gmssl_for(sm2_key)
    for msg in (b"8 bytes!", b"session key 0123456789abcdef", "苏证通".encode() * 20):
        ct = sm2_encrypt(sm2_key.public_key(), msg, fmt="raw")
        assert gm.decrypt(ct) == msg
        # and the DER form converts to exactly what gmssl expects
        der = sm2_encrypt(sm2_key.public_key(), msg)
        assert gm.decrypt(crypto.sm2_ciphertext_to_raw(der)) == msg


def test_sm2_encrypt_gmssl_decrypt_core(sm2_key: SM2PrivateKey) -> None:
    gm = gmssl_for(sm2_key.public_key())
    for msg in (b"b", b"from gmssl", bytes(range(256))):
        ct = gm.encrypt(msg)
        assert sm2_decrypt(sm2_key, ct, fmt="raw") == msg
        assert sm2_decrypt(sm2_key, b"\x04" + ct, fmt="raw04") == msg
        assert sm2_decrypt(sm2_key, crypto.sm2_ciphertext_from_raw(ct)) == msg


def test_sm2_decrypt_rejects_tampering(sm2_key: SM2PrivateKey) -> None:
    ct = bytearray(sm2_encrypt(sm2_key.public_key(), b"top secret", fmt="raw"))
    ct[-1] ^= 0x01  # C2 changed -> C3 check fails
    with pytest.raises(CryptoError):
        sm2_decrypt(sm2_key, bytes(ct), fmt="raw")
    with pytest.raises(CryptoError):
        sm2_decrypt(sm2_key, b"not a ciphertext")
    with pytest.raises(CryptoError):
        sm2_decrypt(sm2_key, b"\x00" * 10, fmt="raw")
    with pytest.raises(CryptoError):
        sm2_decrypt(SM2PrivateKey.generate(), sm2_encrypt(sm2_key.public_key(), b"wrong key!"))
    with pytest.raises(CryptoError):
        sm2_encrypt(sm2_key.public_key(), b"short")


# --------------------------------------------------------------------------- SM2 key import / export


def test_sm2_key_serialization(sm2_key: SM2PrivateKey) -> None:
    d = sm2_key.private_value
    pub = sm2_key.public_key()
    assert SM2PrivateKey.from_pem(sm2_key.to_pem()).private_value == d
    assert SM2PrivateKey.from_der(sm2_key.to_der()).private_value == d
    assert SM2PrivateKey.from_pem(sm2_key.to_pem(b"pw"), b"pw").private_value == d
    assert SM2PrivateKey.from_private_value(d).public_key() == pub
    assert "BEGIN PRIVATE KEY" in sm2_key.to_pem()

    unc = pub.to_uncompressed()
    assert len(unc) == 65 and unc[0] == 4
    x, y = pub.xy
    assert unc[1:] == x.to_bytes(32, "big") + y.to_bytes(32, "big")
    assert SM2PublicKey.from_uncompressed(unc) == pub
    assert SM2PublicKey.from_uncompressed(unc[1:]) == pub  # gmssl's bare X||Y
    assert SM2PublicKey.from_xy(x, y) == pub
    assert SM2PublicKey.from_der(pub.to_der()) == pub
    assert SM2PublicKey.from_pem(pub.to_pem()) == pub
    # SPKI names id-ecPublicKey with the SM2 curve OID (1.2.156.10197.1.301 -> 06 08 2a 81 1c cf 55 01 82 2d)
    assert bytes.fromhex("06082a811ccf5501822d") in pub.to_der()


def test_sm2_key_import_errors() -> None:
    with pytest.raises(CryptoError):
        SM2PublicKey.from_xy(1, 2)  # not on the curve
    with pytest.raises(CryptoError):
        SM2PublicKey.from_uncompressed(b"\x04" + b"\x01" * 64)
    with pytest.raises(CryptoError):
        SM2PublicKey.from_der(b"junk")
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_private_value(0)
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_private_value(crypto.SM2_N)
    # a P-256 key is not an SM2 key
    from cryptography.hazmat.primitives import serialization

    p256 = crypto.generate_es256_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_pem(p256)


# --------------------------------------------------------------------------- international


def test_es256_roundtrip() -> None:
    key = crypto.generate_es256_key()
    sig = crypto.es256_sign(key, b"payload")
    assert crypto.es256_verify(key.public_key(), sig, b"payload")
    assert not crypto.es256_verify(key.public_key(), sig, b"payload!")
    assert len(der_to_raw(sig)) == 64
    assert crypto.es256_verify(key.public_key(), raw_to_der(der_to_raw(sig)), b"payload")


@pytest.mark.parametrize("pss", [False, True])
def test_rsa_roundtrip(pss: bool) -> None:
    key = crypto.generate_rsa_key(2048)
    sig = crypto.rsa_sign(key, b"payload", pss=pss)
    assert len(sig) == 256
    assert crypto.rsa_verify(key.public_key(), sig, b"payload", pss=pss)
    assert not crypto.rsa_verify(key.public_key(), sig, b"other", pss=pss)
    assert not crypto.rsa_verify(key.public_key(), sig, b"payload", pss=not pss)


def test_rsa_bad_size_and_sha256() -> None:
    with pytest.raises(CryptoError):
        crypto.generate_rsa_key(1024)
    assert crypto.sha256(b"abc").hex().startswith("ba7816bf")
    assert len(crypto.random_bytes(24)) == 24


# --------------------------------------------------------------------------- fieldcrypt

K1 = "11" * 32
K2 = "22" * 16
IDX = "33" * 32


def test_fieldcrypt_roundtrip_and_token_shape() -> None:
    ring = FieldKeyring.from_string(f"k1:{K1}")
    token = ring.encrypt("张三丰", context="identity.person.name")
    version, kid, payload = token.split(".")
    assert (version, kid) == ("v1", "k1")
    assert "=" not in payload and "+" not in payload and "/" not in payload
    assert ring.decrypt(token, context="identity.person.name") == "张三丰"
    assert ring.encrypt("", context="c") != ring.encrypt("", context="c")
    assert ring.decrypt(ring.encrypt("", context="c"), context="c") == ""


def test_fieldcrypt_context_binding() -> None:
    ring = FieldKeyring.from_string(f"k1:{K1}")
    token = ring.encrypt("320106199001011234", context="identity.person.id_number")
    with pytest.raises(CryptoError):
        ring.decrypt(token, context="identity.person.phone")


def test_fieldcrypt_rotation_keeps_old_tokens_and_blind_index() -> None:
    old = FieldKeyring.from_string(f"k1:{K1},index:{IDX}")
    token = old.encrypt("13812345678", context="p.phone")
    idx = old.blind_index("13812345678", context="p.phone")

    new = FieldKeyring.from_string(f"k2:{K2}, k1:{K1}, index:{IDX}")
    assert new.current_kid == "k2" and new.kids == ("k2", "k1")
    assert new.decrypt(token, context="p.phone") == "13812345678"
    assert new.kid_of(new.encrypt("x", context="c")) == "k2"
    assert new.blind_index("13812345678", context="p.phone") == idx

    rotated = new.rotate(token, "p.phone")
    assert new.kid_of(rotated) == "k2" and not new.needs_rotation(rotated)
    assert new.decrypt(rotated, context="p.phone") == "13812345678"
    assert new.rotate(rotated, "p.phone") == rotated  # already current: untouched
    with pytest.raises(CryptoError):
        old.decrypt(rotated, context="p.phone")  # old ring does not know k2


def test_fieldcrypt_index_key_defaults_and_constructor() -> None:
    # Without an explicit index entry the index key derives from the first kid's master...
    a = FieldKeyring.from_string(f"k1:{K1}")
    b = FieldKeyring({"k1": bytes.fromhex(K1)}, index_key=bytes.fromhex(K1))
    assert a.blind_index("v", context="c") == b.blind_index("v", context="c")
    # ... and an explicit one survives putting a new kid first.
    c = FieldKeyring({"k2": bytes.fromhex(K2), "k1": bytes.fromhex(K1)}, index_key=bytes.fromhex(K1))
    assert c.blind_index("v", context="c") == a.blind_index("v", context="c")
    d = FieldKeyring.from_dict({"k2": K2, "k1": K1}, index_key=K1)
    assert d.blind_index("v", context="c") == a.blind_index("v", context="c")
    # index separates columns and values, and is not the plain HMAC of the value under the master
    assert a.blind_index("v", context="c") != a.blind_index("v", context="d")
    assert a.blind_index("v", context="c") != a.blind_index("w", context="c")
    assert len(a.blind_index("v", context="c")) == 32


def test_fieldcrypt_bad_input() -> None:
    ring = FieldKeyring.from_string(f"k1:{K1}")
    token = ring.encrypt("value", context="c")
    bad_payload = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for junk in (
        "",
        "garbage",
        "v1.k1",
        "v2.k1.AAAA",
        "v1.k9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.AAAA",
        "v1.k1.%%%",
        "v1.k.1.AAAA",
        bad_payload,
    ):
        with pytest.raises(CryptoError):
            ring.decrypt(junk, context="c")
    for spec in ("", "k1", "k1:zz", f"k1:{'ab' * 20}", f"a.b:{K1}", f"k1:{K1},k1:{K1}", f"index:{K1}"):
        with pytest.raises(CryptoError):
            FieldKeyring.from_string(spec)
    assert K1 not in repr(ring)


def test_fieldcrypt_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "field-keys"
    ring = FieldKeyring.load_or_create(path, "")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = ring.encrypt("李四", context="c")
    idx = ring.blind_index("李四", context="c")

    again = FieldKeyring.load_or_create(path, "")
    assert again.current_kid == ring.current_kid
    assert again.decrypt(token, context="c") == "李四"
    assert again.blind_index("李四", context="c") == idx

    from_env = FieldKeyring.load_or_create(tmp_path / "unused", f"e1:{K1}")
    assert from_env.current_kid == "e1"
    assert not (tmp_path / "unused").exists()


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("func_", "value", "expected"),
    [
        (mask_name, "张三丰", "张**"),
        (mask_name, "张三", "张*"),
        (mask_name, "张", "*"),
        (mask_name, "", ""),
        (mask_name, None, ""),
        (mask_name, "欧阳娜娜", "欧***"),
        (mask_id_number, "320106199001011234", "320***********1234"),
        (mask_id_number, "32010619900101123X", "320***********123X"),
        (mask_id_number, "1234567", "*******"),
        (mask_id_number, "", ""),
        (mask_phone, "13812345678", "138****5678"),
        (mask_phone, "12345", "*****"),
        (mask_phone, "", ""),
        (mask_address, "江苏省南京市玄武区北京东路41号", "江苏省南京市****"),
        (mask_address, "南京市", "南****"),
        (mask_address, "", ""),
        (mask_email, "zhangsan@example.com", "z***@example.com"),
        (mask_email, "a@example.com", "***@example.com"),
        (mask_email, "noatsign", "n***"),
        (mask_email, "", ""),
    ],
)
def test_masking(func_: Callable[[str | None], str], value: str | None, expected: str) -> None:
    assert func_(value) == expected
    if value and func_ in (mask_id_number, mask_phone):
        assert len(func_(value)) == len(value)
