"""The issuer's SM2 signing keys: created on first start, private halves encrypted at rest, cached per process,
published with key ids so verifiers keep working across a rotation."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.crypto import SM2PrivateKey, SM2PublicKey
from core.resources import Resources
from identity.codes.codec import key_id_text as key_id

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
    rows = await res.db.fetch(
        "SELECT kid, public_key, private_key_enc, retired_at FROM identity.issuer_keys ORDER BY created_at DESC"
    )
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
        await conn.execute("SELECT pg_advisory_xact_lock(7200101)")
        await conn.execute(
            "INSERT INTO identity.issuer_keys (kid, public_key, private_key_enc) VALUES ($1, $2, $3)",
            kid,
            key.public_key().to_uncompressed(),
            res.fields.encrypt(key.to_pem(), context=_CONTEXT),
        )
    _cache.pop(id(res), None)
    return kid


async def retire_key(res: Resources, kid: str) -> None:
    await res.db.execute("UPDATE identity.issuer_keys SET retired_at = now() WHERE kid = $1", kid)
    _cache.pop(id(res), None)
