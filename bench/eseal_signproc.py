"""Child of bench.eseal_bench: one of N processes sealing one-page PDFs through `eseal.signing.sign_request` (what
`POST /eseal/v1/documents:sign` runs once the app's HMAC-SM3 signature is checked), as N server worker processes
would. Warms up, waits for the common start time, seals for SECONDS with CONCURRENCY loops, prints JSON
{"latencies": [...], "cpu": seconds}.

Usage: python -m bench.eseal_signproc SRC SEAL_CODE APP_CODE START_AT SECONDS CONCURRENCY
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from pathlib import Path


async def main(src: str, seal_code: str, app_code: str, start_at: float, seconds: float, concurrency: int) -> None:
    from core.resources import Resources
    from core.settings import load_settings
    from eseal import signing
    from eseal.models import SignPosition, SignRequest

    res = await Resources.open(load_settings())
    req = SignRequest(
        document=base64.b64encode(Path(src).read_bytes()).decode(),  # noqa: ASYNC240 - once, before timing
        seals=[SignPosition(seal_code=seal_code, x=300, y=500)],
    )
    try:
        for _ in range(3):  # caches, connections, the TSA certificate check
            await signing.sign_request(res, req, app_code, "127.0.0.1")
        await asyncio.sleep(max(0.0, start_at - time.time()))
        lat: list[float] = []
        deadline = time.perf_counter() + seconds
        cpu0 = time.process_time()

        async def loop() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await signing.sign_request(res, req, app_code, "127.0.0.1")
                lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        print(json.dumps({"latencies": lat, "cpu": time.process_time() - cpu0, "wall": wall}))
    finally:
        await res.close()


if __name__ == "__main__":
    a = sys.argv[1:7]
    asyncio.run(main(a[0], a[1], a[2], float(a[3]), float(a[4]), int(a[5])))
