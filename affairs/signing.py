"""The adapter protocol's request signature (docs/integration.md, szt-biz/1), used both ways between the handling
engine and every business system, and by the Ministry platform:

    X-Szt-System: <system>        X-Szt-Timestamp: <unix seconds>        X-Szt-Nonce: <16-64 chars [A-Za-z0-9_-]>
    X-Szt-Signature: hex(HMAC-SM3(key, METHOD "\\n" PATH "\\n" TIMESTAMP "\\n" NONCE "\\n" hex(SM3(body))))

A request is accepted once: the timestamp within ±300 s of ours and the nonce not seen in the last 10 minutes.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from core.crypto import hmac_sm3, hmac_sm3_verify, sm3
from core.secrets_file import read_or_create

SKEW_SECONDS = 300
NONCE_TTL = 600
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SYSTEM_RE = re.compile(r"^[a-z]{2,16}$")


def system_key(var_path: Path, system: str) -> bytes:
    """The shared secret of one system: generated once under var/keys (a real deployment provisions it)."""
    return bytes.fromhex(read_or_create(var_path / "keys" / f"affairs-{system}.hmac", lambda: secrets.token_hex(32)))


def _message(method: str, path: str, ts: str, nonce: str, body: bytes) -> bytes:
    return f"{method.upper()}\n{path}\n{ts}\n{nonce}\n{sm3(body).hex()}".encode()


def sign_headers(key: bytes, system: str, method: str, path: str, body: bytes) -> dict[str, str]:
    ts, nonce = str(int(time.time())), secrets.token_urlsafe(18)
    mac = hmac_sm3(key, _message(method, path, ts, nonce, body)).hex()
    return {"X-Szt-System": system, "X-Szt-Timestamp": ts, "X-Szt-Nonce": nonce, "X-Szt-Signature": mac}


def check(key: bytes, headers: dict[str, str], method: str, path: str, body: bytes) -> str | None:
    """None when the signature and timestamp are good, else the reason (the nonce is checked by the caller)."""
    ts, nonce, mac = headers.get("x-szt-timestamp", ""), headers.get("x-szt-nonce", ""), headers.get("x-szt-signature")
    if not mac:
        return "unsigned"
    if not ts.isdigit() or abs(int(ts) - time.time()) > SKEW_SECONDS:
        return "stale-timestamp"
    if not _NONCE.match(nonce):
        return "bad-nonce"
    try:
        raw = bytes.fromhex(mac)
    except ValueError:
        return "bad-signature"
    if not hmac_sm3_verify(key, _message(method, path, ts, nonce, body), raw):
        return "bad-signature"
    return None
