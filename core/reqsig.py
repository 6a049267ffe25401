"""HMAC-SM3 request signatures, one scheme for the signing server and eseal's signing API.

A request carries an id header (`X-App-Id` or `X-App-Code`), `X-Timestamp` (unix seconds, ±300 s),
`X-Nonce` (8–64 of [A-Za-z0-9_-], one-time) and `Authorization: HMAC-SM3 <hex>`, the hex being
HMAC-SM3(secret, "METHOD\\npath\\ntimestamp\\nnonce\\nhex(SHA-256(body))"). Where nonces are remembered is the
caller's business (memory in the simulator, Redis in eseal).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

from core.crypto import hmac_sm3

CLOCK_SKEW = 300
NONCE_TTL = 600
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
AUTH_RE = re.compile(r"^HMAC-SM3 ([0-9a-fA-F]{64})$")


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()


def sign_headers(
    id_header: str, client_id: str, secret: bytes, method: str, path: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16)
    mac = hmac_sm3(secret, canonical(method, path, ts, nonce, body))
    return {id_header: client_id, "X-Timestamp": ts, "X-Nonce": nonce, "Authorization": f"HMAC-SM3 {mac.hex()}"}


def check(
    secret: bytes, method: str, path: str, timestamp: str, nonce: str, authorization: str, body: bytes, now: float
) -> str | None:
    """None when the signature is good and fresh; else why not (the nonce's one-time use is checked by the caller)."""
    match = AUTH_RE.match(authorization)
    if not timestamp or not nonce or match is None:
        return "X-Timestamp, X-Nonce and Authorization: HMAC-SM3 <hex> are required"
    if not timestamp.isdigit() or len(timestamp) > 12 or abs(now - int(timestamp)) > CLOCK_SKEW:
        return "timestamp missing or more than 300 s away from the server clock"
    if not NONCE_RE.match(nonce):
        return "nonce must be 8-64 of A-Z a-z 0-9 _ -"
    expected = hmac_sm3(secret, canonical(method, path, timestamp, nonce, body))
    if not hmac.compare_digest(expected, bytes.fromhex(match.group(1))):
        return "signature does not match"
    return None


def check_headers(secret: bytes, method: str, path: str, headers: Mapping[str, str], body: bytes) -> str | None:
    """`check` with the signature's parts read from a request's headers (X-Timestamp, X-Nonce, Authorization)."""
    return check(
        secret,
        method,
        path,
        headers.get("x-timestamp", ""),
        headers.get("x-nonce", ""),
        headers.get("authorization", ""),
        body,
        time.time(),
    )
