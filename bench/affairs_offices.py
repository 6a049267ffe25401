"""`python -m bench.affairs_offices N`: fill a running bench server's database with N offices across the 13
cities (the police map at scale), with the server's environment like bench.make_clients. Prints the count."""

from __future__ import annotations

import asyncio
import sys


async def fill(n: int) -> int:
    from affairs import repo
    from affairs.seed import CITIES, KINDS, office_rows
    from core.boot import with_embedded
    from core.resources import Resources
    from core.settings import load_settings

    settings, embedded = with_embedded(load_settings())
    try:
        res = await Resources.open(settings)
        try:
            have = await repo.office_count(res.db)
            if have < n:
                per_kind = max(1, (n - have) // (len(CITIES) * len(KINDS)) + 1)
                rows = office_rows(dict.fromkeys(KINDS, per_kind), seed=7)[: n - have]
                for i in range(0, len(rows), 2000):
                    await repo.insert_offices(res.db, rows[i : i + 2000])
                await res.db.execute("ANALYZE affairs.offices")
            return await repo.office_count(res.db)
        finally:
            await res.close()
    finally:
        embedded.stop()


def main() -> None:
    print(asyncio.run(fill(int(sys.argv[1]))))


if __name__ == "__main__":
    main()
