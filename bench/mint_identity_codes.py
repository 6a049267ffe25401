"""`python -m bench.mint_identity_codes ACCESS_TOKEN N`: N more identity codes for the verify runs' pool.

Run with a bench server's environment. Calls the server's own `identity.codes.service.issue_code` for the citizen
signed in with ACCESS_TOKEN, in this process, 32 at a time, so the codes are stored exactly as the HTTP endpoint
stores them; only the QR version shown to the app is not computed (`qr_version` builds the whole QR symbol, about
8 ms, and the verifier never sees it). Prints one payload a line.
"""

from __future__ import annotations

import asyncio
import sys

BATCH = 32


async def mint(access_token: str, n: int) -> list[str]:
    from core.boot import with_embedded
    from core.resources import Resources
    from core.settings import load_settings
    from identity.facade import authenticate, models
    from identity.facade import codes as verification

    verification.qr_version = lambda _text: 0  # type: ignore[assignment]  # see the module docstring
    settings, embedded = with_embedded(load_settings())
    out: list[str] = []
    try:
        res = await Resources.open(settings)
        try:
            principal = await authenticate(res, f"Bearer {access_token}")
            request = models.CodeRequest(ttl_seconds=300)
            while len(out) < n:
                batch = min(BATCH, n - len(out))
                made = await asyncio.gather(*(verification.issue_code(res, principal, request) for _ in range(batch)))
                out += [view.payload for view, _ in made]
        finally:
            await res.close()
    finally:
        embedded.stop()
    return out


def main() -> None:
    token, n = sys.argv[1], int(sys.argv[2])
    if not 0 < n <= 200_000:
        raise SystemExit("N must be 1..200000")
    sys.stdout.write("".join(p + "\n" for p in asyncio.run(mint(token, n))))


if __name__ == "__main__":
    main()
