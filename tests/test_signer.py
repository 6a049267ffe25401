"""Signing server simulator over real HTTP, through the client class `eseal` uses."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from asn1crypto import keys, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from gmssl import sm2

from core.crypto import SM2PublicKey, der_to_raw, hmac_sm3, sm3
from core.settings import load_settings
from eseal.signer_client import Envelope, SignerClient, SignerError, canonical
from tests.harness import ROOT, Stack, free_port, wait_http


@pytest.fixture
async def signer(stack: Stack) -> AsyncIterator[SignerClient]:
    async with SignerClient(load_settings(signer_url=stack.signer_url)) as client:
        yield client


async def test_sm2_sign_verify_and_independent_checks(signer: SignerClient) -> None:
    key = await signer.generate_key(101, "SM2")
    assert key.algorithm == "SM2" and key.index == 101
    assert (await signer.get_key(101)).public_key == key.public_key
    data = "苏证通 electronic seal".encode()
    sig = await signer.sign(101, data)
    assert await signer.verify(sig, data, key_index=101)
    assert await signer.verify(sig, data, public_key=key.public_der)
    assert not await signer.verify(sig, data + b"!", key_index=101)
    assert not await signer.verify(b"\x30\x02\x01", data, key_index=101)  # malformed: just invalid

    public = SM2PublicKey.from_der(key.public_der)
    assert public.verify(sig, data)
    xy = public.to_uncompressed()[1:].hex()
    crypt = sm2.CryptSM2(private_key="", public_key=xy, mode=1)
    crypt.public_key = xy
    assert crypt.verify_with_sm3(der_to_raw(sig).hex(), data)
    assert not crypt.verify_with_sm3(der_to_raw(sig).hex(), data + b"!")

    with pytest.raises(SignerError) as err:  # SM2 cannot sign a bare digest
        await signer.sign(101, digest=hashlib.sha256(data).digest())
    assert err.value.status == 422


async def test_rsa_sign_verify_with_cryptography(signer: SignerClient) -> None:
    key = await signer.generate_key(102, "RSA2048")
    public = serialization.load_der_public_key(key.public_der)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    data = b"contract.pdf byte range"
    sig = await signer.sign(102, data, algorithm="RSA-SHA256")
    public.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    digest_sig = await signer.sign(102, digest=hashlib.sha256(data).digest(), algorithm="RSA-SHA256")
    assert digest_sig == sig  # PKCS#1 v1.5 is deterministic: prehashed gives the same signature
    pss = await signer.sign(102, digest=hashlib.sha256(data).digest(), algorithm="RSA-PSS-SHA256")
    pss_padding = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    public.verify(pss, data, pss_padding, hashes.SHA256())
    assert await signer.verify(pss, data, key_index=102, algorithm="RSA-PSS-SHA256")
    assert await signer.verify(
        sig, digest=hashlib.sha256(data).digest(), public_key=key.public_der, algorithm="RSA-SHA256"
    )
    assert not await signer.verify(sig, b"tampered", key_index=102, algorithm="RSA-SHA256")
    with pytest.raises(SignerError) as err:  # an RSA key cannot do SM2-SM3
        await signer.sign(102, data)
    assert err.value.status == 422


def _certificate_for(spki_der: bytes) -> bytes:
    """A structurally valid X.509 certificate around a public key (its own signature is not checked by verify)."""
    when = x509.Time({"utc_time": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})
    name = x509.Name.build({"common_name": "signer test"})
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": 1,
            "signature": {"algorithm": "sha256_rsa"},
            "issuer": name,
            "validity": {"not_before": when, "not_after": when},
            "subject": name,
            "subject_public_key_info": keys.PublicKeyInfo.load(spki_der),
        }
    )
    cert = x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sha256_rsa"}, "signature_value": b"\0"}
    )
    der: bytes = cert.dump()
    return der


async def test_verify_with_a_certificate(signer: SignerClient) -> None:
    sm2_key = await signer.generate_key(111, "SM2")
    sig = await signer.sign(111, b"certified")
    cert = _certificate_for(sm2_key.public_der)
    assert await signer.verify(sig, b"certified", certificate=cert)
    assert not await signer.verify(sig, b"certified!", certificate=cert)
    rsa_key = await signer.generate_key(112, "RSA3072")
    rsa_sig = await signer.sign(112, b"certified", algorithm="RSA-SHA256")
    assert await signer.verify(
        rsa_sig, b"certified", certificate=_certificate_for(rsa_key.public_der), algorithm="RSA-SHA256"
    )
    with pytest.raises(SignerError) as err:
        await signer.verify(sig, b"certified", certificate=b"not a certificate")
    assert err.value.status == 400
    with pytest.raises(SignerError) as err:  # two key sources at once
        await signer.verify(sig, b"certified", key_index=111, certificate=cert)
    assert err.value.status == 400


async def test_key_lifecycle(signer: SignerClient) -> None:
    await signer.generate_key(103, "SM2")
    with pytest.raises(SignerError) as err:
        await signer.generate_key(103, "SM2")
    assert err.value.status == 409
    await signer.delete_key(103)
    with pytest.raises(SignerError) as err:
        await signer.get_key(103)
    assert err.value.status == 404
    with pytest.raises(SignerError) as err:
        await signer.sign(103, b"x")
    assert err.value.status == 404


async def test_digests(signer: SignerClient) -> None:
    assert await signer.digest(b"abc", "SM3") == sm3(b"abc")
    assert await signer.digest(b"abc", "SHA256") == hashlib.sha256(b"abc").digest()


async def test_sm4_and_aes_encrypt_decrypt_mac(signer: SignerClient) -> None:
    await signer.generate_key(104, "SM4")
    await signer.generate_key(105, "AES256")
    info = await signer.get_key(104)
    assert info.public_key is None
    for index in (104, 105):
        blob = await signer.encrypt(index, b"secret seal data", aad=b"seal-1")
        assert await signer.decrypt(index, blob, aad=b"seal-1") == b"secret seal data"
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(SignerError) as err:
            await signer.decrypt(index, tampered, aad=b"seal-1")
        assert err.value.status == 422 and err.value.type.endswith("signer-crypto-failed")
        with pytest.raises(SignerError):
            await signer.decrypt(index, blob, aad=b"seal-2")
    mac = await signer.mac(104, b"message")
    assert len(mac) == 32 and mac == await signer.mac(104, b"message") and mac != await signer.mac(104, b"other")
    assert len(await signer.mac(105, b"message")) == 32
    with pytest.raises(SignerError) as err:  # an asymmetric slot does no symmetric encryption
        await signer.generate_key(106, "SM2")
        await signer.encrypt(106, b"x")
    assert err.value.status == 422


async def test_envelopes(signer: SignerClient) -> None:
    sm2_key = await signer.generate_key(107, "SM2")
    env = await signer.envelope(sm2_key.public_der, b"a document for the bureau")
    assert env.algorithm == "SM2+SM4-GCM"
    assert await signer.open_envelope(107, env) == b"a document for the bureau"
    await signer.generate_key(108, "SM2")
    with pytest.raises(SignerError) as err:  # another key cannot open it
        await signer.open_envelope(108, env)
    assert err.value.status == 422
    raw = base64.b64decode(env.ciphertext)
    bad = Envelope(env.algorithm, env.encrypted_key, base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode())
    with pytest.raises(SignerError):
        await signer.open_envelope(107, bad)
    rsa_key = await signer.generate_key(109, "RSA2048")
    env = await signer.envelope(rsa_key.public_der, b"rsa envelope")
    assert env.algorithm.startswith("RSA-OAEP")
    assert await signer.open_envelope(109, env) == b"rsa envelope"


async def test_generate_range(signer: SignerClient) -> None:
    await signer.generate_key(1000, "SM2")
    result = await signer.generate_range(1000, 1199)
    assert result["generated"] == 199 and result["skipped"] == 1
    again = await signer.generate_range(1000, 1199)
    assert again["generated"] == 0 and again["skipped"] == 200
    key = await signer.get_key(1150)
    sig = await signer.sign(1150, b"bulk")
    assert SM2PublicKey.from_der(key.public_der).verify(sig, b"bulk")
    device = await signer.device()
    assert device["key_capacity"] == 60000 and device["by_algorithm"]["SM2"] >= 200


def _second_signer(stack: Stack, name: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """Another signer process on the same var directory (the same key store), on a port of its own."""
    port = free_port()
    log = stack.var_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "szt.cli", "sim-only", "signer"],
            env={**stack.env, "SZT_SIGNER_PORT": str(port), **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc, log)
    return proc, url


async def test_keys_survive_a_restart(signer: SignerClient, stack: Stack) -> None:
    key = await signer.generate_key(110, "SM2")
    proc, url = _second_signer(stack, "signer-restart")
    try:
        async with SignerClient(load_settings(signer_url=url)) as other:
            assert (await other.get_key(110)).public_key == key.public_key
            sig = await other.sign(110, b"after restart")
        assert await signer.verify(sig, b"after restart", key_index=110)
    finally:
        proc.terminate()
        proc.wait(15)


def _raw(stack: Stack, client: SignerClient, *, timestamp: int | None = None, tamper: bool = False) -> httpx.Response:
    body = b'{"algorithm":"SM3","data":"YWJj"}'
    headers = client.signed_headers("POST", "/v1/digest", body, timestamp=timestamp)
    if tamper:
        headers["Authorization"] = "HMAC-SM3 " + "0" * 64
    return httpx.post(f"{stack.signer_url}/v1/digest", content=body, headers=headers)


async def test_client_authentication(signer: SignerClient, stack: Stack) -> None:
    assert _raw(stack, signer).status_code == 200
    bad = _raw(stack, signer, tamper=True)
    assert bad.status_code == 401 and bad.headers["content-type"].startswith("application/problem+json")
    assert _raw(stack, signer, timestamp=int(time.time()) - 400).status_code == 401
    assert httpx.post(f"{stack.signer_url}/v1/digest", json={"algorithm": "SM3", "data": ""}).status_code == 401

    # a replayed request (same nonce, same signature) is refused
    body = b'{"algorithm":"SM3","data":"YWJj"}'
    headers = signer.signed_headers("POST", "/v1/digest", body)
    assert httpx.post(f"{stack.signer_url}/v1/digest", content=body, headers=headers).status_code == 200
    replay = httpx.post(f"{stack.signer_url}/v1/digest", content=body, headers=headers)
    assert replay.status_code == 401 and "nonce" in replay.json()["detail"]

    # another body under the same signature is refused
    headers = signer.signed_headers("POST", "/v1/digest", body)
    other = httpx.post(f"{stack.signer_url}/v1/digest", content=body.replace(b"YWJj", b"YWJk"), headers=headers)
    assert other.status_code == 401

    # an unknown app
    ts, nonce = str(int(time.time())), "n0nce-unknown-app"
    mac = hmac_sm3(b"whatever", canonical("POST", "/v1/digest", ts, nonce, body)).hex()
    unknown = {"X-App-Id": "nobody", "X-Timestamp": ts, "X-Nonce": nonce, "Authorization": f"HMAC-SM3 {mac}"}
    assert httpx.post(f"{stack.signer_url}/v1/digest", content=body, headers=unknown).status_code == 401


def test_apps_file_is_private(stack: Stack) -> None:
    for name in ("apps", "master-key", "keys.sqlite"):
        assert os.stat(stack.var_dir / "signer" / name).st_mode & 0o077 == 0, name


async def test_ip_allow_list(stack: Stack) -> None:
    """A signer that allows only another network answers 403 to loopback callers."""
    proc, url = _second_signer(stack, "signer-allow", SZT_SIGNER_ALLOW="10.0.0.0/8")
    try:
        async with SignerClient(load_settings(signer_url=url)) as other:
            with pytest.raises(SignerError) as err:
                await other.digest(b"abc")
        assert err.value.status == 403
    finally:
        proc.terminate()
        proc.wait(15)
