"""Key material and signatures of the two payment channels' protocols (WeChat Pay API v3 and Alipay open API,
RSA2 = RSA-SHA256 PKCS#1 v1.5). Keys are generated once under var/keys for development; a deployment puts the
merchant private key, the platform certificate's public key and the APIv3 key there instead."""

from __future__ import annotations

import base64
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.crypto import rsa_sign, rsa_verify
from core.secrets_file import read_or_create

MCHID = "1900000109"
APPID = "wxd930ea5d5a258f4f"
ALIPAY_APP_ID = "2021000000000001"


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@cache
def private_key(var_path: Path, who: str) -> rsa.RSAPrivateKey:
    """`who`: "merchant" (ours) or "platform" (the channel's, held by the simulator)."""
    pem = read_or_create(var_path / "keys" / f"pay-{who}.pem", _pem)
    key = serialization.load_pem_private_key(pem.replace("\\n", "\n").encode() + b"\n", password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def public_key(var_path: Path, who: str) -> rsa.RSAPublicKey:
    return private_key(var_path, who).public_key()


@cache
def apiv3_key(var_path: Path) -> bytes:
    return read_or_create(var_path / "keys" / "pay-apiv3.key", lambda: secrets.token_hex(16)).encode()  # 32 bytes


def rsa2_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(rsa_sign(key, message.encode())).decode()


def rsa2_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        return rsa_verify(key, base64.b64decode(signature), message.encode())
    except (ValueError, TypeError):
        return False


def wechat_message(*parts: str) -> str:
    """API v3 signs each part followed by a newline."""
    return "".join(p + "\n" for p in parts)


def alipay_content(params: dict[str, Any]) -> str:
    """Alipay signs the sorted `k=v` pairs joined by `&`, without `sign` (and, for notifications, `sign_type`)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k] != "")


def aead_encrypt(key: bytes, plaintext: bytes, associated: bytes) -> dict[str, str]:
    nonce = secrets.token_hex(6)
    ct = AESGCM(key).encrypt(nonce.encode(), plaintext, associated)
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ct).decode(),
        "nonce": nonce,
        "associated_data": associated.decode(),
    }


def aead_decrypt(key: bytes, resource: dict[str, str]) -> bytes:
    return AESGCM(key).decrypt(
        resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]), resource["associated_data"].encode()
    )
