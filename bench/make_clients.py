"""`python -m bench.make_clients SPEC_JSON`: register relying parties in a running bench server's database.

Run with the server's environment (SZT_VAR_DIR and the rest): like `szt clients create`, it attaches to the
embedded PostgreSQL and Redis already running under that var dir. SPEC_JSON is a list of keyword arguments for
identity.clients.create; prints {client_id: client_secret} as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


async def create_all(specs: list[dict[str, Any]]) -> dict[str, str]:
    from core.boot import with_embedded
    from core.resources import Resources
    from core.settings import load_settings
    from identity.facade import clients

    settings, embedded = with_embedded(load_settings())
    made: dict[str, str] = {}
    try:
        res = await Resources.open(settings)
        try:
            for spec in specs:
                new = await clients.create(res, **spec)
                assert new.client_secret is not None
                made[new.client.client_id] = new.client_secret
        finally:
            await res.close()
    finally:
        embedded.stop()
    return made


def main() -> None:
    specs = json.loads(sys.argv[1])
    if not isinstance(specs, list):
        raise SystemExit("SPEC_JSON must be a list")
    print(json.dumps(asyncio.run(create_all(specs))))


if __name__ == "__main__":
    main()
