"""The only way `eseal` reaches the signing server (GM/T 0029-style device; the simulator in development).

Base URL: `settings.signing_server_url` (`SIGNER_URL`, else the simulator on port 8200). Credentials: the env vars
`SZT_SIGNER_APP_ID` and `SZT_SIGNER_APP_SECRET`; when unset, the first app in the simulator's file
`<var>/signer/apps` (read lazily, at the first call, so the signer may start after us).

Every request is signed: `Authorization: HMAC-SM3 <hex>` over "METHOD\\npath\\ntimestamp\\nnonce\\nhex(SHA-256(body))"
with `X-App-Id`, `X-Timestamp` and a fresh `X-Nonce`. Errors come back as :class:`SignerError` carrying the
device's problem document.
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import msgspec

from core.http1 import KeepAliveClient
from core.reqsig import canonical, sign_headers
from core.settings import Settings

KeyAlgorithm = Literal["SM2", "RSA2048", "RSA3072", "EC-P256", "SM4", "AES128", "AES256"]
__all__ = ["Envelope", "SignerClient", "SignerError", "SignerKey", "canonical", "read_credentials"]

SignAlgorithm = Literal["SM2-SM3", "RSA-SHA256", "RSA-PSS-SHA256", "ECDSA-SHA256"]


class SignerError(Exception):
    """A non-2xx answer from the signing server; `type` is the problem type URI (empty when not a problem)."""

    def __init__(self, status: int, type_: str, detail: str) -> None:
        super().__init__(f"signing server answered {status} {type_}: {detail}")
        self.status = status
        self.type = type_
        self.detail = detail


class SignerKey(msgspec.Struct):
    index: int
    algorithm: KeyAlgorithm
    created_at: str
    public_key: str | None = None  # SPKI DER, base64

    @property
    def public_der(self) -> bytes:
        if self.public_key is None:
            raise ValueError(f"key {self.index} is symmetric: no public key")
        return base64.b64decode(self.public_key)


class Envelope(msgspec.Struct):
    algorithm: str
    encrypted_key: str
    ciphertext: str


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def read_credentials(settings: Settings) -> tuple[str, str]:
    app_id, secret = settings.signer_app_id, settings.signer_app_secret
    if app_id and secret:
        return app_id, secret
    path = Path(settings.var_path) / "signer" / "apps"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SignerError(
            0, "", f"no signer credentials: set SZT_SIGNER_APP_ID/SECRET or start the signer ({path})"
        ) from None
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            return parts[0], parts[1]
    raise SignerError(0, "", f"no app in {path}")


class SignerClient:
    def __init__(
        self,
        settings: Settings,
        *,
        app_id: str | None = None,
        secret: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._settings = settings
        self._credentials = (app_id, secret) if app_id and secret else None
        # Persistent keep-alive connections with a minimal HTTP/1.1 client (httpx was ~1.9 ms CPU per call).
        self._http = KeepAliveClient(settings.signing_server_url, timeout=timeout)

    async def __aenter__(self) -> SignerClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- transport

    def signed_headers(self, method: str, path: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        if self._credentials is None:
            self._credentials = read_credentials(self._settings)
        app_id, secret = self._credentials
        headers = sign_headers("X-App-Id", str(app_id), str(secret).encode(), method, path, body, timestamp=timestamp)
        headers["Content-Type"] = "application/json"
        return headers

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        body = msgspec.json.encode(payload) if payload is not None else b""
        resp = await self._http.request(method, path, body, lambda: self.signed_headers(method, path, body))
        if resp.status_code >= 400:
            try:
                doc = msgspec.json.decode(resp.content)
            except msgspec.DecodeError:
                doc = {}
            doc = doc if isinstance(doc, dict) else {}
            text = resp.content[:200].decode("utf-8", "replace")
            raise SignerError(resp.status_code, str(doc.get("type", "")), str(doc.get("detail", text)))
        return msgspec.json.decode(resp.content) if resp.content else None

    # -- keys

    async def device(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/v1/device")
        return result

    async def generate_key(self, index: int, algorithm: KeyAlgorithm = "SM2") -> SignerKey:
        return msgspec.convert(await self._call("POST", f"/v1/keys/{index}", {"algorithm": algorithm}), SignerKey)

    async def get_key(self, index: int) -> SignerKey:
        return msgspec.convert(await self._call("GET", f"/v1/keys/{index}"), SignerKey)

    async def delete_key(self, index: int) -> None:
        await self._call("DELETE", f"/v1/keys/{index}")

    async def generate_range(self, first: int, last: int, algorithm: KeyAlgorithm = "SM2") -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", "/v1/keys:generate-range", {"from": first, "to": last, "algorithm": algorithm}
        )
        return result

    # -- signatures

    async def sign(
        self,
        key_index: int,
        data: bytes | None = None,
        *,
        digest: bytes | None = None,
        algorithm: SignAlgorithm = "SM2-SM3",
    ) -> bytes:
        """SM2-SM3 signs `data` (DER signature); RSA and ECDSA algorithms take `data` or a SHA-256 `digest`."""
        payload: dict[str, Any] = {"key_index": key_index, "algorithm": algorithm}
        if data is not None:
            payload["data"] = _b64(data)
        if digest is not None:
            payload["digest"] = digest.hex()
        result = await self._call("POST", "/v1/sign", payload)
        return base64.b64decode(result["signature"])

    async def verify(
        self,
        signature: bytes,
        data: bytes | None = None,
        *,
        digest: bytes | None = None,
        key_index: int | None = None,
        public_key: bytes | None = None,
        certificate: bytes | None = None,
        algorithm: SignAlgorithm = "SM2-SM3",
    ) -> bool:
        """Verify with exactly one of the key at `key_index`, a `public_key` (SPKI DER) or a `certificate` (DER)."""
        payload: dict[str, Any] = {"algorithm": algorithm, "signature": _b64(signature)}
        if key_index is not None:
            payload["key_index"] = key_index
        if public_key is not None:
            payload["public_key"] = _b64(public_key)
        if certificate is not None:
            payload["certificate"] = _b64(certificate)
        if data is not None:
            payload["data"] = _b64(data)
        if digest is not None:
            payload["digest"] = digest.hex()
        result = await self._call("POST", "/v1/verify", payload)
        return bool(result["valid"])

    # -- digests, symmetric crypto, envelopes

    async def digest(self, data: bytes, algorithm: Literal["SM3", "SHA256"] = "SM3") -> bytes:
        result = await self._call("POST", "/v1/digest", {"algorithm": algorithm, "data": _b64(data)})
        return bytes.fromhex(result["digest"])

    async def encrypt(self, key_index: int, data: bytes, aad: bytes = b"") -> bytes:
        result = await self._call("POST", "/v1/encrypt", {"key_index": key_index, "data": _b64(data), "aad": _b64(aad)})
        return base64.b64decode(result["ciphertext"])

    async def decrypt(self, key_index: int, ciphertext: bytes, aad: bytes = b"") -> bytes:
        payload = {"key_index": key_index, "ciphertext": _b64(ciphertext), "aad": _b64(aad)}
        result = await self._call("POST", "/v1/decrypt", payload)
        return base64.b64decode(result["data"])

    async def mac(self, key_index: int, data: bytes) -> bytes:
        result = await self._call("POST", "/v1/mac", {"key_index": key_index, "data": _b64(data)})
        return base64.b64decode(result["mac"])

    async def envelope(self, public_key: bytes, data: bytes) -> Envelope:
        result = await self._call("POST", "/v1/envelope", {"public_key": _b64(public_key), "data": _b64(data)})
        return msgspec.convert(result, Envelope)

    async def open_envelope(self, key_index: int, envelope: Envelope) -> bytes:
        payload = {"key_index": key_index, "envelope": msgspec.to_builtins(envelope)}
        result = await self._call("POST", "/v1/envelope:open", payload)
        return base64.b64decode(result["data"])
