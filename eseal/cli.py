"""`szt eseal import DIR`: the legacy seal import (eseal/legacy_import.py) from the command line."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


def main(args: argparse.Namespace) -> None:
    from core.boot import prepare, with_embedded
    from core.resources import Resources
    from core.settings import load_settings
    from eseal import legacy_import

    async def go() -> None:
        settings, embedded = with_embedded(load_settings())
        await prepare(settings, seed=False)
        res = await Resources.open(settings)
        try:
            report = await legacy_import.run(res, Path(args.directory))
        finally:
            await res.close()
            embedded.stop()
        print(
            f"{report.imported} imported, {report.rejected} rejected (see {args.directory}/rejects.csv), "
            f"{report.skipped} done earlier; {report.rate:,.0f} rows/s"
        )

    asyncio.run(go())
