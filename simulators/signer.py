"""Signing server simulator (port 8200): plays a GM/T 0029-style signing and verification device.

JSON over HTTP under `/v1/`; every `/v1/` call is authenticated (see simulators.signer_auth: IP allow-list, then
an HMAC-SM3 request signature with timestamp and one-time nonce). Keys live at indexes 1..60000, kept encrypted
under the device master key (simulators.signer_store).

- `POST /v1/keys/{index}` generates SM2, RSA2048, RSA3072, EC-P256 (asymmetric) or SM4, AES128, AES256 (symmetric) keys;
  `GET` gives the public key (SubjectPublicKeyInfo DER, base64); `DELETE` destroys the key.
- `POST /v1/keys:generate-range` fills a range of indexes with fresh keys (50,000 SM2 keys take ~15-25 s).
- `POST /v1/sign` / `POST /v1/verify`: SM2-SM3 (SM2 with SM3 and the default user id 1234567812345678, DER
  signature) signs `data` only — a precomputed SM3 digest cannot be signed because SM2 hashes Z_A || M itself;
  RSA-SHA256 (PKCS#1 v1.5), RSA-PSS-SHA256 (salt = 32) and ECDSA-SHA256 (P-256, DER signature) take `data` or
  a SHA-256 `digest` (hex). Verification
  uses the key at `key_index`, a `public_key` (SPKI) or the key of a `certificate` (X.509 DER; not validated).
- `POST /v1/digest` (SM3, SHA256); `POST /v1/encrypt` / `/v1/decrypt` (SM4-GCM or AES-GCM, output
  nonce(12) || ciphertext || tag(16)); `POST /v1/mac` (HMAC-SM3 for SM4 slots, HMAC-SHA256 for AES slots).
- `POST /v1/envelope` seals data for a public key (SM2: SM4-GCM session key encrypted with SM2, DER C1C3C2;
  RSA: AES-256-GCM session key encrypted with RSA-OAEP-SHA256); `POST /v1/envelope:open` opens it with the
  private key at an index.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Annotated, Any, Literal

import msgspec
from anyio import to_thread
from asn1crypto import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar import Litestar, Request, Router, delete, get, post
from litestar.datastructures import State
from litestar.openapi.spec import SecurityScheme
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from core.app import build_app
from core.crypto import (
    CryptoError,
    SM2PrivateKey,
    SM2PublicKey,
    hmac_sm3,
    sm3,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from core.observe import ASGIApp, Observability
from core.problems import ProblemError, invalid
from core.settings import Settings, load_settings
from simulators.signer_auth import Authenticator
from simulators.signer_store import MAX_INDEX, MIN_INDEX, KeyStore, StoredKey

MAX_DATA = 1_048_576
B64_RE = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_B64_MAX = 4 * ((MAX_DATA + 2) // 3)

Data = Annotated[str, Meta(max_length=_B64_MAX, pattern=B64_RE, description="base64, at most 1 MiB decoded")]
SmallB64 = Annotated[str, Meta(max_length=8192, pattern=B64_RE, description="base64")]
CertB64 = Annotated[str, Meta(max_length=32768, pattern=B64_RE, description="base64")]
Digest = Annotated[str, Meta(min_length=64, max_length=64, pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 hex")]
KeyIndex = Annotated[int, Meta(ge=MIN_INDEX, le=MAX_INDEX, description="key index 1..60000")]
PathIndex = Annotated[int, Parameter(ge=MIN_INDEX, le=MAX_INDEX, description="key index 1..60000")]
KeyAlgorithm = Literal["SM2", "RSA2048", "RSA3072", "EC-P256", "SM4", "AES128", "AES256"]
RangeAlgorithm = Literal["SM2", "EC-P256", "SM4", "AES128", "AES256"]
SignAlgorithm = Literal["SM2-SM3", "RSA-SHA256", "RSA-PSS-SHA256", "ECDSA-SHA256"]
EnvelopeAlgorithm = Literal["SM2+SM4-GCM", "RSA-OAEP-SHA256+AES256-GCM"]


class GenerateKey(msgspec.Struct):
    algorithm: KeyAlgorithm


class KeyInfo(msgspec.Struct, omit_defaults=True):
    index: int
    algorithm: KeyAlgorithm
    created_at: str
    public_key: str | None = None  # SubjectPublicKeyInfo DER, base64 (asymmetric keys only)


class GenerateRange(msgspec.Struct):
    first: Annotated[KeyIndex, Meta(description="first index")] = msgspec.field(name="from")
    last: Annotated[KeyIndex, Meta(description="last index (inclusive)")] = msgspec.field(name="to")
    algorithm: RangeAlgorithm = "SM2"


class RangeResult(msgspec.Struct):
    generated: int
    skipped: Annotated[int, Meta(description="indexes that already held a key")]
    seconds: float


class SignRequest(msgspec.Struct):
    key_index: KeyIndex
    algorithm: SignAlgorithm
    data: Data | None = None
    digest: Annotated[Digest | None, Meta(description="RSA and ECDSA algorithms only")] = None


class SignResult(msgspec.Struct):
    key_index: int
    algorithm: SignAlgorithm
    signature: str  # base64; SM2: DER SEQUENCE{r, s}


class VerifyRequest(msgspec.Struct):
    algorithm: SignAlgorithm
    signature: SmallB64
    key_index: KeyIndex | None = None
    public_key: Annotated[SmallB64 | None, Meta(description="SubjectPublicKeyInfo DER, base64")] = None
    certificate: Annotated[CertB64 | None, Meta(description="X.509 certificate DER, base64 (its public key)")] = None
    data: Data | None = None
    digest: Digest | None = None


class VerifyResult(msgspec.Struct):
    valid: bool


class DigestRequest(msgspec.Struct):
    algorithm: Literal["SM3", "SHA256"]
    data: Data


class DigestResult(msgspec.Struct):
    algorithm: Literal["SM3", "SHA256"]
    digest: str  # hex


class EncryptRequest(msgspec.Struct):
    key_index: KeyIndex
    data: Data
    aad: SmallB64 = ""


class EncryptResult(msgspec.Struct):
    key_index: int
    algorithm: Literal["SM4-GCM", "AES-GCM"]
    ciphertext: str  # base64 of nonce(12) || ciphertext || tag(16)


class DecryptRequest(msgspec.Struct):
    key_index: KeyIndex
    ciphertext: Data
    aad: SmallB64 = ""


class DataResult(msgspec.Struct):
    data: str  # base64


class MacRequest(msgspec.Struct):
    key_index: KeyIndex
    data: Data


class MacResult(msgspec.Struct):
    key_index: int
    algorithm: Literal["HMAC-SM3", "HMAC-SHA256"]
    mac: str  # base64


class EnvelopeRequest(msgspec.Struct):
    public_key: Annotated[SmallB64, Meta(description="SubjectPublicKeyInfo DER, base64 (SM2 or RSA)")]
    data: Data


class Envelope(msgspec.Struct):
    algorithm: EnvelopeAlgorithm
    encrypted_key: SmallB64
    ciphertext: Data


class OpenEnvelope(msgspec.Struct):
    key_index: KeyIndex
    envelope: Envelope


class DeviceInfo(msgspec.Struct):
    model: str
    key_capacity: int
    keys: int
    by_algorithm: dict[str, int]


# --------------------------------------------------------------------------- helpers


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: str, field: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(field, "not valid base64") from None
    if len(raw) > MAX_DATA:
        raise invalid(field, "more than 1 MiB")
    return raw


def _key_not_found(index: int) -> ProblemError:
    return ProblemError(404, "signer-key-not-found", "No key at this index", "该索引下没有密钥", f"index {index}")


def _unsupported(detail: str, field: str | None = None) -> ProblemError:
    return ProblemError(
        422, "signer-unsupported", "Operation not supported for this key", "该密钥不支持此操作", detail, field=field
    )


def _crypto_failed(detail: str) -> ProblemError:
    return ProblemError(422, "signer-crypto-failed", "Cryptographic operation failed", "密码运算失败", detail)


def _store(state: State) -> KeyStore:
    store: KeyStore = state.signer_store
    return store


def _key(state: State, index: int) -> StoredKey:
    key = _store(state).get(index)
    if key is None:
        raise _key_not_found(index)
    return key


def _info(key: StoredKey) -> KeyInfo:
    public = _b64(key.public_der) if key.public_der is not None else None
    return KeyInfo(index=key.index, algorithm=key.algorithm, created_at=key.created_at, public_key=public)  # type: ignore[arg-type]


def _message(data: str | None, digest: str | None, algorithm: str) -> tuple[bytes, bool]:
    """(bytes to sign or verify, whether they are a SHA-256 digest)."""
    if (data is None) == (digest is None):
        raise invalid("data", "give exactly one of data or digest")
    if digest is not None:
        if algorithm == "SM2-SM3":
            raise _unsupported("SM2-SM3 signs data only: the device hashes Z_A || M itself", field="digest")
        return bytes.fromhex(digest), True
    assert data is not None
    return _unb64(data, "data"), False


def _rsa_padding(algorithm: str) -> padding.AsymmetricPadding:
    if algorithm == "RSA-PSS-SHA256":
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def _sha256(prehashed: bool) -> Any:
    return Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()


def _certificate_spki(der: bytes) -> bytes:
    try:
        cert = x509.Certificate.load(der, strict=True)
        spki: bytes = cert["tbs_certificate"]["subject_public_key_info"].dump()
    except (ValueError, TypeError, KeyError):
        raise invalid("certificate", "not a DER X.509 certificate") from None
    return spki


def _load_public(spki: bytes, field: str = "public_key") -> SM2PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if isinstance(key, rsa.RSAPublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    try:
        return SM2PublicKey.from_der(spki)
    except CryptoError:
        raise invalid(field, "not an SM2, RSA or P-256 public key") from None


def _expect(key: StoredKey, algorithms: tuple[str, ...], what: str) -> None:
    if key.algorithm not in algorithms:
        raise _unsupported(f"key {key.index} is {key.algorithm}; {what} needs {' or '.join(algorithms)}")


# --------------------------------------------------------------------------- handlers


@get("/v1/device", sync_to_thread=False, summary="Device information and key counts")
def device(state: State) -> DeviceInfo:
    counts = _store(state).counts()
    return DeviceInfo(
        model="SZT-SIM GM/T 0029 signing server",
        key_capacity=MAX_INDEX,
        keys=sum(counts.values()),
        by_algorithm=counts,
    )


@post("/v1/keys/{index:int}", status_code=201, summary="Generate a key at an index")
async def generate_key(state: State, index: PathIndex, data: JSONBody[GenerateKey]) -> KeyInfo:
    """409 when the index already holds a key (delete it first). RSA generation takes a while."""
    store = _store(state)
    if store.exists(index):
        raise ProblemError(409, "signer-key-exists", "Index already holds a key", "该索引已有密钥", f"index {index}")
    if data.algorithm.startswith("RSA"):
        key = await to_thread.run_sync(store.create, index, data.algorithm)
    else:
        key = store.create(index, data.algorithm)
    if key is None:
        raise ProblemError(409, "signer-key-exists", "Index already holds a key", "该索引已有密钥", f"index {index}")
    return _info(key)


@get("/v1/keys/{index:int}", sync_to_thread=False, summary="Public key (or symmetric key metadata) at an index")
def read_key(state: State, index: PathIndex) -> KeyInfo:
    return _info(_key(state, index))


@delete("/v1/keys/{index:int}", sync_to_thread=False, summary="Destroy the key at an index")
def delete_key(state: State, index: PathIndex) -> None:
    if not _store(state).delete(index):
        raise _key_not_found(index)


@post("/v1/keys:generate-range", status_code=200, summary="Generate keys at every free index of a range")
async def generate_range(state: State, data: JSONBody[GenerateRange]) -> RangeResult:
    if data.last < data.first:
        raise invalid("to", "must not be below from")
    generated, skipped, seconds = await to_thread.run_sync(
        _store(state).create_range, data.first, data.last, data.algorithm
    )
    return RangeResult(generated=generated, skipped=skipped, seconds=round(seconds, 3))


@post("/v1/sign", status_code=200, sync_to_thread=False, summary="Sign data (or a SHA-256 digest, RSA only)")
def sign(state: State, data: JSONBody[SignRequest]) -> SignResult:
    message, prehashed = _message(data.data, data.digest, data.algorithm)
    key = _key(state, data.key_index)
    if data.algorithm == "SM2-SM3":
        _expect(key, ("SM2",), data.algorithm)
        signature = key.secret.sign(message)
    elif data.algorithm == "ECDSA-SHA256":
        _expect(key, ("EC-P256",), data.algorithm)
        signature = key.secret.sign(message, ec.ECDSA(_sha256(prehashed)))
    else:
        _expect(key, ("RSA2048", "RSA3072"), data.algorithm)
        signature = key.secret.sign(message, _rsa_padding(data.algorithm), _sha256(prehashed))
    return SignResult(key_index=key.index, algorithm=data.algorithm, signature=_b64(signature))


@post(
    "/v1/verify",
    status_code=200,
    sync_to_thread=False,
    summary="Verify with an indexed key, a public key or a certificate",
)
def verify(state: State, data: JSONBody[VerifyRequest]) -> VerifyResult:
    """`valid` is false for a wrong or malformed signature; a key that does not fit the algorithm is a 422."""
    if sum(v is not None for v in (data.key_index, data.public_key, data.certificate)) != 1:
        raise invalid("key_index", "give exactly one of key_index, public_key or certificate")
    message, prehashed = _message(data.data, data.digest, data.algorithm)
    signature = _unb64(data.signature, "signature")
    public: Any
    if data.key_index is not None:
        key = _key(state, data.key_index)
        _expect(key, ("SM2", "RSA2048", "RSA3072", "EC-P256"), "verification")
        public = key.secret.public_key()
    elif data.public_key is not None:
        public = _load_public(_unb64(data.public_key, "public_key"))
    else:
        assert data.certificate is not None
        public = _load_public(_certificate_spki(_unb64(data.certificate, "certificate")), "certificate")
    if data.algorithm == "SM2-SM3":
        if not isinstance(public, SM2PublicKey):
            raise _unsupported("SM2-SM3 needs an SM2 key")
        return VerifyResult(valid=public.verify(signature, message))
    if data.algorithm == "ECDSA-SHA256":
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise _unsupported("ECDSA-SHA256 needs a P-256 key")
        try:
            public.verify(signature, message, ec.ECDSA(_sha256(prehashed)))
        except (InvalidSignature, ValueError):
            return VerifyResult(valid=False)
        return VerifyResult(valid=True)
    if not isinstance(public, rsa.RSAPublicKey):
        raise _unsupported(f"{data.algorithm} needs an RSA key")
    try:
        public.verify(signature, message, _rsa_padding(data.algorithm), _sha256(prehashed))
    except (InvalidSignature, ValueError):
        return VerifyResult(valid=False)
    return VerifyResult(valid=True)


@post("/v1/digest", status_code=200, sync_to_thread=False, summary="SM3 or SHA-256 digest")
def digest(data: JSONBody[DigestRequest]) -> DigestResult:
    raw = _unb64(data.data, "data")
    value = sm3(raw) if data.algorithm == "SM3" else hashlib.sha256(raw).digest()
    return DigestResult(algorithm=data.algorithm, digest=value.hex())


def _symmetric(state: State, index: int, what: str) -> StoredKey:
    key = _key(state, index)
    _expect(key, ("SM4", "AES128", "AES256"), what)
    return key


@post("/v1/encrypt", status_code=200, sync_to_thread=False, summary="SM4-GCM / AES-GCM encryption")
def encrypt(state: State, data: JSONBody[EncryptRequest]) -> EncryptResult:
    key = _symmetric(state, data.key_index, "encryption")
    plain, aad = _unb64(data.data, "data"), _unb64(data.aad, "aad")
    if key.algorithm == "SM4":
        return EncryptResult(
            key_index=key.index, algorithm="SM4-GCM", ciphertext=_b64(sm4_gcm_encrypt(key.secret, plain, aad))
        )
    nonce = secrets.token_bytes(12)
    blob = nonce + AESGCM(key.secret).encrypt(nonce, plain, aad)
    return EncryptResult(key_index=key.index, algorithm="AES-GCM", ciphertext=_b64(blob))


def _gcm_open(algorithm: str, key: bytes, blob: bytes, aad: bytes) -> bytes:
    if algorithm == "SM4":
        try:
            return sm4_gcm_decrypt(key, blob, aad)
        except CryptoError:
            raise _crypto_failed("authentication failed: wrong key or AAD, or tampered data") from None
    if len(blob) < 28:
        raise _crypto_failed("ciphertext too short")
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag:
        raise _crypto_failed("authentication failed: wrong key or AAD, or tampered data") from None


@post("/v1/decrypt", status_code=200, sync_to_thread=False, summary="SM4-GCM / AES-GCM decryption")
def decrypt(state: State, data: JSONBody[DecryptRequest]) -> DataResult:
    """422 when the ciphertext does not authenticate (tampered, wrong key or AAD)."""
    key = _symmetric(state, data.key_index, "decryption")
    blob, aad = _unb64(data.ciphertext, "ciphertext"), _unb64(data.aad, "aad")
    return DataResult(data=_b64(_gcm_open(key.algorithm, key.secret, blob, aad)))


@post("/v1/mac", status_code=200, sync_to_thread=False, summary="HMAC-SM3 (SM4 slot) or HMAC-SHA256 (AES slot)")
def mac(state: State, data: JSONBody[MacRequest]) -> MacResult:
    key = _symmetric(state, data.key_index, "MAC")
    raw = _unb64(data.data, "data")
    if key.algorithm == "SM4":
        return MacResult(key_index=key.index, algorithm="HMAC-SM3", mac=_b64(hmac_sm3(key.secret, raw)))
    value = hmac.new(key.secret, raw, hashlib.sha256).digest()
    return MacResult(key_index=key.index, algorithm="HMAC-SHA256", mac=_b64(value))


@post("/v1/envelope", status_code=200, sync_to_thread=False, summary="Seal data in a digital envelope for a public key")
def envelope(data: JSONBody[EnvelopeRequest]) -> Envelope:
    public = _load_public(_unb64(data.public_key, "public_key"))
    plain = _unb64(data.data, "data")
    if isinstance(public, SM2PublicKey):
        session = secrets.token_bytes(16)
        return Envelope(
            algorithm="SM2+SM4-GCM",
            encrypted_key=_b64(public.encrypt(session)),
            ciphertext=_b64(sm4_gcm_encrypt(session, plain)),
        )
    if not isinstance(public, rsa.RSAPublicKey):
        raise _unsupported("envelopes are for SM2 or RSA public keys", field="public_key")
    session = secrets.token_bytes(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    nonce = secrets.token_bytes(12)
    return Envelope(
        algorithm="RSA-OAEP-SHA256+AES256-GCM",
        encrypted_key=_b64(public.encrypt(session, oaep)),
        ciphertext=_b64(nonce + AESGCM(session).encrypt(nonce, plain, b"")),
    )


@post("/v1/envelope:open", status_code=200, sync_to_thread=False, summary="Open a digital envelope")
def envelope_open(state: State, data: JSONBody[OpenEnvelope]) -> DataResult:
    """422 when the envelope was not sealed for this key or was tampered with."""
    key = _key(state, data.key_index)
    env = data.envelope
    wrapped, blob = _unb64(env.encrypted_key, "envelope.encrypted_key"), _unb64(env.ciphertext, "envelope.ciphertext")
    if env.algorithm == "SM2+SM4-GCM":
        _expect(key, ("SM2",), env.algorithm)
        private: SM2PrivateKey = key.secret
        try:
            session = private.decrypt(wrapped)
        except CryptoError:
            raise _crypto_failed("the session key does not decrypt with this key") from None
        if len(session) != 16:
            raise _crypto_failed("session key has the wrong length")
        return DataResult(data=_b64(_gcm_open("SM4", session, blob, b"")))
    _expect(key, ("RSA2048", "RSA3072"), env.algorithm)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    try:
        session = key.secret.decrypt(wrapped, oaep)
    except ValueError:
        raise _crypto_failed("the session key does not decrypt with this key") from None
    if len(session) != 32:
        raise _crypto_failed("session key has the wrong length")
    return DataResult(data=_b64(_gcm_open("AES256", session, blob, b"")))


HANDLERS = [
    device,
    generate_key,
    read_key,
    delete_key,
    generate_range,
    sign,
    verify,
    digest,
    encrypt,
    decrypt,
    mac,
    envelope,
    envelope_open,
]

SECURITY = {
    "SignerHmac": SecurityScheme(
        type="apiKey",
        name="Authorization",
        security_scheme_in="header",
        description=(
            "`Authorization: HMAC-SM3 <hex>` with `X-App-Id`, `X-Timestamp` (unix seconds, ±300 s) and `X-Nonce` "
            "(8-64 of [A-Za-z0-9_-], one-time); hex = HMAC-SM3(app secret, "
            "METHOD\\npath\\ntimestamp\\nnonce\\nhex(SHA-256(body))). Callers outside the IP allow-list get 403."
        ),
    )
}


async def _authenticate(request: Request[Any, Any, Any]) -> None:
    authenticator: Authenticator = request.app.state.signer_auth
    await authenticator(request)


def create_app(settings: Settings) -> Litestar:
    directory = settings.var_path / "signer"
    store = KeyStore(directory)
    auth = Authenticator(directory, settings.signer_allow)
    v1 = Router(
        path="/",
        route_handlers=HANDLERS,
        before_request=_authenticate,
        security=[{"SignerHmac": []}],
        request_max_body_size=2 * 1024 * 1024,
    )
    app = build_app(
        "",
        settings=settings,
        behind_edge=False,
        title="Simulator: signing and verification server",
        description=__doc__ or "",
        route_handlers=[v1],
        stateless=True,
        security_schemes=SECURITY,
    )
    app.state.signer_store = store
    app.state.signer_auth = auth
    app.on_shutdown.append(store.close)
    return app


def create_signer(settings: Settings | None = None) -> ASGIApp:
    return Observability(create_app(settings or load_settings()), access_log_enabled=False)
