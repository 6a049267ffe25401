"""口令 (PIN) rules and hashing: 8 digits, no trivial patterns, scrypt with a per-PIN salt."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import os

PIN_LENGTH = 8
MAX_FAILURES = 5
LOCK_MINUTES = 30
_N, _R, _P = 2**14, 8, 1


def weakness(pin: str) -> str | None:
    """Why a PIN is refused, or None when it is acceptable."""
    if len(pin) != PIN_LENGTH or not pin.isdigit():
        return "the PIN is exactly 8 digits"
    digits = [int(c) for c in pin]
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    if steps == {0}:
        return "the PIN may not repeat one digit"
    if steps in ({1}, {9}):
        return "the PIN may not be a run such as 12345678 or 87654321"
    if pin[:2] * 4 == pin or pin[:4] * 2 == pin:
        return "the PIN may not repeat a short pattern"
    return None


def _hash(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)


async def hash_pin(pin: str) -> str:
    salt = os.urandom(16)
    digest = await asyncio.to_thread(_hash, pin, salt)  # ~50 ms of CPU: keep it off the event loop
    enc = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${enc(salt).decode()}${enc(digest).decode()}"


async def check_pin(pin: str, stored: str) -> bool:
    _, n, r, p, salt_b64, digest_b64 = stored.split("$")
    salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)

    def run() -> bytes:
        return hashlib.scrypt(pin.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected))

    return hmac.compare_digest(await asyncio.to_thread(run), expected)
