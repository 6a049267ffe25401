"""网号 (network ID number): 10 characters — 9 derived by a keyed SM3 function of the identity, then a check character.

Stable (same person, same 网号), non-reversible (keyed), and free of plaintext personal data. The alphabet has 31
characters (a prime), so a weighted sum modulo 31 catches every single-character error and every swap of two
neighbouring characters.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"  # no I, L, O, U, Z: easy to read aloud and to type
_BODY = 9


def check_character(body: str) -> str:
    total = sum((i + 1) * ALPHABET.index(c) for i, c in enumerate(body))
    return ALPHABET[total % 31]


def from_digest(digest: bytes) -> str:
    """The 网号 for a keyed digest (callers derive the digest; a collision retries with a counter)."""
    value = int.from_bytes(digest[:16], "big")
    body = []
    for _ in range(_BODY):
        value, r = divmod(value, 31)
        body.append(ALPHABET[r])
    text = "".join(body)
    return text + check_character(text)


def is_valid(wangha: str) -> bool:
    return (
        len(wangha) == _BODY + 1
        and all(c in ALPHABET for c in wangha)
        and check_character(wangha[:_BODY]) == wangha[_BODY]
    )
