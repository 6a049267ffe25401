"""JOSE for the OpenID provider: ES256 keys (default) and SM2 keys (alg "SM2", SM2 with SM3 over the JWS signing
input, r||s signature) for clients that ask for national algorithms; one JWKS publishes both."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import Algorithm, ECAlgorithm

from core.crypto import SM2PrivateKey, SM2PublicKey, der_to_raw, raw_to_der
from core.resources import Resources
from core.signed import b64u, b64u_decode
from identity.keys import issuer_keys
from identity.oidc import repo

SM2_ALG = "SM2"
_CTX = "identity.jwt_key"
_RELOAD = 30.0


class SM2Algorithm(Algorithm):
    """pyjwt algorithm for SM2 signatures (GB/T 32918, default user id) with SM3."""

    def prepare_key(self, key: Any) -> Any:
        if isinstance(key, SM2PrivateKey | SM2PublicKey):
            return key
        raise jwt.InvalidKeyError("expected an SM2 key")

    def sign(self, msg: bytes, key: Any) -> bytes:
        return der_to_raw(key.sign(msg))

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        if isinstance(key, SM2PrivateKey):
            key = key.public_key()
        return len(sig) == 64 and bool(key.verify(raw_to_der(sig), msg))

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:
        return sm2_jwk(key_obj if isinstance(key_obj, SM2PublicKey) else key_obj.public_key(), "")

    @staticmethod
    def from_jwk(jwk: str | dict[str, Any]) -> Any:
        assert isinstance(jwk, dict)
        return SM2PublicKey.from_xy(
            int.from_bytes(b64u_decode(jwk["x"]), "big"), int.from_bytes(b64u_decode(jwk["y"]), "big")
        )


_jws = jwt.PyJWS()
_jws.register_algorithm(SM2_ALG, SM2Algorithm())


def sm2_jwk(pub: SM2PublicKey, kid: str) -> dict[str, str]:
    x, y = pub.xy
    return {
        "kty": "EC",
        "crv": "SM2",
        "x": b64u(x.to_bytes(32, "big")),
        "y": b64u(y.to_bytes(32, "big")),
        "kid": kid,
        "use": "sig",
        "alg": SM2_ALG,
    }


@dataclass
class SigningKeys:
    es256_kid: str
    es256: ec.EllipticCurvePrivateKey
    sm2_kid: str
    sm2: SM2PrivateKey
    jwks: list[dict[str, str]]
    loaded_at: float
    es256_public: dict[str, ec.EllipticCurvePublicKey]
    sm2_public: dict[str, SM2PublicKey]


_cache: dict[int, SigningKeys] = {}


async def _create_es256(res: Resources) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, str] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    kid = "es-" + hashlib.sha256(f"{jwk['x']}{jwk['y']}".encode()).hexdigest()[:12]
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    await repo.add_es256_key_once(
        res.db, kid, {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}, res.fields.encrypt(pem, context=_CTX)
    )


async def signing_keys(res: Resources) -> SigningKeys:
    cached = _cache.get(id(res))
    if cached and time.monotonic() - cached.loaded_at < _RELOAD:
        return cached
    rows = await repo.live_es256_keys(res.db)
    if not rows:
        await _create_es256(res)
        return await signing_keys(res)
    es_private = serialization.load_pem_private_key(
        res.fields.decrypt(rows[0]["private_key_enc"], context=_CTX).encode(), password=None
    )
    assert isinstance(es_private, ec.EllipticCurvePrivateKey)
    sm2 = await issuer_keys(res)  # the SM2 issuer keys of identity also sign SM2 ID tokens
    es_public = {
        r["kid"]: es_private.public_key() if r["kid"] == rows[0]["kid"] else _ec_public(r["public_jwk"]) for r in rows
    }
    jwks = [dict(r["public_jwk"]) for r in rows] + [sm2_jwk(k, kid) for kid, k in sm2.published.items()]
    keys = SigningKeys(
        rows[0]["kid"], es_private, sm2.kid, sm2.private, jwks, time.monotonic(), es_public, dict(sm2.published)
    )
    _cache[id(res)] = keys
    return keys


def _ec_public(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    key = ECAlgorithm.from_jwk(jwk)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


async def sign_jwt(res: Resources, claims: dict[str, Any], *, alg: str = "ES256", typ: str = "JWT") -> str:
    keys = await signing_keys(res)
    if alg == SM2_ALG:
        key: Any = keys.sm2  # pyjwt types keys by its own algorithms; SM2Algorithm takes ours
        return _jws.encode(
            msgspec.json.encode(claims), key, algorithm=SM2_ALG, headers={"kid": keys.sm2_kid, "typ": typ}
        )
    return es256_jws(msgspec.json.encode(claims), keys.es256, keys.es256_kid, typ)


def es256_jws(payload: bytes, key: ec.EllipticCurvePrivateKey, kid: str, typ: str) -> str:
    """A compact ES256 JWS (RFC 7515/7518): what pyjwt's encode makes, without its JSON and algorithm dispatch —
    an ID token is signed on every code redemption."""
    header = b64u(msgspec.json.encode({"alg": "ES256", "kid": kid, "typ": typ}))
    signing_input = f"{header}.{b64u(payload)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), _ECDSA_SHA256))
    return f"{signing_input}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


async def verify_own_jwt(
    res: Resources, token: str, *, audience: str | None = None, verify_exp: bool = True
) -> dict[str, Any]:
    """Verify a JWT this provider issued (id_token_hint, logout tokens)."""
    keys = await signing_keys(res)
    header = jwt.get_unverified_header(token)
    kid = header.get("kid", "")
    options: jwt.types.Options = {"verify_exp": verify_exp, "verify_aud": audience is not None}
    if header.get("alg") == SM2_ALG:
        key_sm2 = keys.sm2_public.get(kid)
        if key_sm2 is None:
            raise jwt.InvalidTokenError("unknown kid")
        payload = _jws.decode(token, key_sm2, algorithms=[SM2_ALG])  # type: ignore[arg-type]
        claims: dict[str, Any] = msgspec.json.decode(payload)
        return claims
    key_es = keys.es256_public.get(kid)
    if key_es is None:
        raise jwt.InvalidTokenError("unknown kid")
    decoded: dict[str, Any] = jwt.decode(token, key_es, algorithms=["ES256"], audience=audience, options=options)
    return decoded
