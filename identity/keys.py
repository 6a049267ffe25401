"""The issuer's SM2 signing keys: created on first start, private halves encrypted at rest, cached per process,
published with key ids so verifiers keep working across a rotation."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.crypto import SM2PrivateKey, SM2PublicKey
from core.resources import Resources
from core.signed import key_id_text as key_id
from identity import repo

_CONTEXT = "identity.issuer_key"
_RELOAD_SECONDS = 30.0


@dataclass
class IssuerKeys:
    kid: str
    private: SM2PrivateKey
    published: dict[str, SM2PublicKey]
    loaded_at: float


_cache: dict[int, IssuerKeys] = {}


async def _load(res: Resources) -> IssuerKeys:
    rows = await repo.issuer_keys(res.db)
    if not rows:
        await create_key(res)
        return await _load(res)
    published = {r["kid"]: SM2PublicKey.from_uncompressed(bytes(r["public_key"])) for r in rows if not r["retired_at"]}
    current = next(r for r in rows if not r["retired_at"])
    private = SM2PrivateKey.from_pem(res.fields.decrypt(current["private_key_enc"], context=_CONTEXT))
    return IssuerKeys(current["kid"], private, published, time.monotonic())


async def issuer_keys(res: Resources) -> IssuerKeys:
    keys = _cache.get(id(res))
    if keys is None or time.monotonic() - keys.loaded_at > _RELOAD_SECONDS:
        keys = await _load(res)
        _cache[id(res)] = keys
    return keys


async def create_key(res: Resources) -> str:
    """A new current key (rotation); earlier keys stay published until retired."""
    key = SM2PrivateKey.generate()
    kid = key_id(key.public_key())
    async with res.db.acquire() as conn, conn.transaction():
        await repo.lock_issuer_keys(conn)
        await repo.insert_issuer_key(
            conn, kid, key.public_key().to_uncompressed(), res.fields.encrypt(key.to_pem(), context=_CONTEXT)
        )
    _cache.pop(id(res), None)
    return kid


async def retire_key(res: Resources, kid: str) -> None:
    await repo.retire_issuer_key(res.db, kid)
    _cache.pop(id(res), None)
