"""TOTP (RFC 6238, HMAC-SHA1, 30 s steps, 6 digits) for administrators' second factor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
from urllib.parse import quote

STEP = 30
DIGITS = 6


def new_secret() -> str:
    return base64.b32encode(os.urandom(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def hotp(secret: str, counter: int) -> str:
    """RFC 4226 dynamic truncation."""
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**DIGITS
    return str(code).zfill(DIGITS)


def code_at(secret: str, at: float | None = None) -> str:
    return hotp(secret, int((time.time() if at is None else at) // STEP))


def verify(secret: str, code: str, *, after_step: int = 0, at: float | None = None) -> int | None:
    """The step a code matches (one step of clock drift either way), or None; steps up to `after_step` are
    refused so one code signs in once."""
    now = int((time.time() if at is None else at) // STEP)
    for step in (now - 1, now, now + 1):
        if step > after_step and hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def otpauth_uri(secret: str, username: str, issuer: str = "苏证通管理后台") -> str:
    label = quote(f"{issuer}:{username}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&algorithm=SHA1&digits=6&period=30"
