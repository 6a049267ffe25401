"""Administrator passwords: scrypt (memory-hard, ~50 ms) with a per-password salt, off the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os

_N, _R, _P = 2**14, 8, 1


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = 32) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=64 * 1024 * 1024)


def hash_password_sync(password: str) -> str:
    salt = os.urandom(16)
    enc = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${enc(salt).decode()}${enc(_scrypt(password, salt, _N, _R, _P)).decode()}"


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hash_password_sync, password)


async def check_password(password: str, stored: str) -> bool:
    _, n, r, p, salt_b64, digest_b64 = stored.split("$")
    salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    got = await asyncio.to_thread(_scrypt, password, salt, int(n), int(r), int(p), len(expected))
    return hmac.compare_digest(got, expected)


# A hash to check against when the username is unknown, so timing does not tell which usernames exist.
DUMMY = hash_password_sync("not-a-password-" + os.urandom(8).hex())
