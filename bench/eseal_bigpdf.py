"""Child of bench.eseal_bench: seal one large PDF (PAdES) and print the peak RSS in KiB, so that the parent's
memory does not count. Usage: python -m bench.eseal_bigpdf SRC OUT SEAL_CODE APP_CODE"""

from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path


async def main(src: str, out: str, seal_code: str, app_code: str) -> None:
    from core.resources import Resources
    from core.settings import load_settings
    from eseal import signing
    from eseal.models import SignPosition

    res = await Resources.open(load_settings())
    try:
        await signing.sign_file(
            res, Path(src), Path(out), [SignPosition(seal_code=seal_code, x=300, y=500)], app_code=app_code
        )
    finally:
        await res.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
