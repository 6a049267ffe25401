"""The process's one SignerClient and key-index allocation in the signing server."""

from __future__ import annotations

import asyncio

from core.resources import Resources
from eseal import repo
from eseal.signer_client import KeyAlgorithm, SignerClient, SignerError, SignerKey

_clients: dict[int, tuple[asyncio.AbstractEventLoop, SignerClient]] = {}


def signer(res: Resources) -> SignerClient:
    """One client per Resources and event loop (its connection pool belongs to the loop)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(id(res))
    if found is None or found[0] is not loop:
        found = (loop, SignerClient(res.settings))
        _clients[id(res)] = found
    return found[1]


async def new_key(res: Resources, algorithm: KeyAlgorithm) -> SignerKey:
    """A fresh key at the next free index (an index already used on the device, e.g. after a DB reset, is skipped)."""
    client = signer(res)
    for _ in range(100):
        index = await repo.next_key_index(res.db)
        try:
            return await client.generate_key(index, algorithm)
        except SignerError as exc:
            if exc.status != 409:
                raise
    raise SignerError(409, "signer-key-exists", "no free key index after 100 tries")
