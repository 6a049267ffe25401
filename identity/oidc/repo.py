"""SQL of the OpenID provider: consents, refresh tokens, the provider's signing keys, and the client metadata only
the provider reads (JWKS for private_key_jwt, logout URIs). Nothing but SQL: the rules are in grants, tokens,
authorization, client_auth, jose and logout."""

from __future__ import annotations

import uuid
from typing import Any

from core.db import Executor, Pool, Record


async def consents_of(db: Executor, person_id: str) -> list[Record]:
    """The person's live consents, newest first, with the client's name (`client_id, scopes, granted_at, name`)."""
    return await db.fetch(
        """SELECT c.client_id, c.scopes, c.granted_at, k.name FROM identity.consents c
           JOIN identity.clients k ON k.client_id = c.client_id
           WHERE c.person_id = $1 AND c.withdrawn_at IS NULL ORDER BY c.granted_at DESC LIMIT 200""",
        uuid.UUID(person_id),
    )


async def withdraw_consent(db: Executor, person_id: str, client_id: str) -> bool:
    """Mark the live consent withdrawn; False when there was none."""
    done = await db.fetchval(
        """UPDATE identity.consents SET withdrawn_at = now() WHERE person_id = $1 AND client_id = $2
           AND withdrawn_at IS NULL RETURNING 1""",
        uuid.UUID(person_id),
        client_id,
    )
    return bool(done)


async def grant_consent(db: Executor, person_id: str, client_id: str, scopes: list[str]) -> None:
    """Record (or renew) the person's consent to the client for these scopes."""
    await db.execute(
        """INSERT INTO identity.consents (person_id, client_id, scopes) VALUES ($1, $2, $3)
           ON CONFLICT (person_id, client_id) DO UPDATE SET scopes = $3, granted_at = now(), withdrawn_at = NULL""",
        uuid.UUID(person_id),
        client_id,
        scopes,
    )


async def has_consent(db: Executor, person_id: Any, client_id: str) -> bool:
    """Whether the person's consent to the client is live (not withdrawn)."""
    return bool(
        await db.fetchval(
            "SELECT 1 FROM identity.consents WHERE person_id = $1 AND client_id = $2 AND withdrawn_at IS NULL",
            person_id,
            client_id,
        )
    )


# ---------------------------------------------------------------- refresh tokens

# The refresh rows of a batch, inserted by the audit append's statement only when it moved the chain's head
# (core.audit.append_if_head): columns as unnest arrays from $14, scopes space-joined (an array of arrays would
# flatten).
REFRESH_IF_MOVED = """INSERT INTO identity.oidc_refresh (token_hash, family, client_id, person_id, scopes, acr, sid,
                                                      auth_time, expires_at)
    SELECT th, f, c, p, string_to_array(sc, ' '), a, s, at, ex
    FROM unnest($14::bytea[], $15::uuid[], $16::text[], $17::uuid[], $18::text[], $19::text[], $20::text[],
                $21::timestamptz[], $22::timestamptz[]) AS y(th, f, c, p, sc, a, s, at, ex)
    WHERE EXISTS (SELECT 1 FROM moved)"""


async def lock_refresh(conn: Executor, token_hash: bytes) -> Record | None:
    """The refresh token's row, locked until the caller's transaction ends."""
    return await conn.fetchrow("SELECT * FROM identity.oidc_refresh WHERE token_hash = $1 FOR UPDATE", token_hash)


async def mark_refresh_used(conn: Executor, token_hash: bytes) -> None:
    await conn.execute("UPDATE identity.oidc_refresh SET used_at = now() WHERE token_hash = $1", token_hash)


async def revoke_refresh(db: Executor, families: list[str]) -> None:
    """Revoke the live refresh tokens of these families."""
    await db.execute(
        "UPDATE identity.oidc_refresh SET revoked_at = now() WHERE family = ANY($1::uuid[]) AND revoked_at IS NULL",
        [uuid.UUID(f) for f in families],
    )


async def refresh_family(db: Executor, token_hash: bytes, client_id: str) -> Any:
    """The family of the client's refresh token with this digest, or None."""
    return await db.fetchval(
        "SELECT family FROM identity.oidc_refresh WHERE token_hash = $1 AND client_id = $2", token_hash, client_id
    )


async def live_families(db: Executor, person_id: str, client_id: str | None, sid: str | None) -> list[Record]:
    """`family, client_id` of the person's unrevoked refresh tokens (of one client, of one app session)."""
    return await db.fetch(
        """SELECT DISTINCT family, client_id FROM identity.oidc_refresh WHERE person_id = $1 AND revoked_at IS NULL
           AND ($2::text IS NULL OR client_id = $2) AND ($3::text IS NULL OR sid = $3)""",
        uuid.UUID(person_id),
        client_id,
        sid,
    )


async def live_families_of_sid(db: Executor, sid: str) -> list[Record]:
    """`family, client_id, person_id` of the unrevoked refresh tokens issued under app session `sid`."""
    return await db.fetch(
        "SELECT DISTINCT family, client_id, person_id FROM identity.oidc_refresh WHERE sid = $1 AND revoked_at IS NULL",
        sid,
    )


# ---------------------------------------------------------------- client metadata the provider reads


async def client_jwks(db: Executor, client_id: str) -> dict[str, Any]:
    """The JWKS a private_key_jwt client registered ({} when none)."""
    jwks: dict[str, Any] | None = await db.fetchval("SELECT jwks FROM identity.clients WHERE client_id = $1", client_id)
    return jwks or {}


async def backchannel_logout_uri(db: Executor, client_id: str) -> str | None:
    uri: str | None = await db.fetchval(
        "SELECT backchannel_logout_uri FROM identity.clients WHERE client_id = $1", client_id
    )
    return uri


async def post_logout_redirect_uris(db: Executor, client_id: str) -> list[str] | None:
    uris: list[str] | None = await db.fetchval(
        "SELECT post_logout_redirect_uris FROM identity.clients WHERE client_id = $1", client_id
    )
    return uris


# ---------------------------------------------------------------- the provider's ES256 signing keys


async def add_es256_key_once(db: Pool, kid: str, public_jwk: dict[str, str], private_key_enc: str) -> None:
    """Store a new ES256 key unless another process stored one meanwhile (under an advisory lock)."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7200102)")
        if await conn.fetchval("SELECT 1 FROM identity.jwt_keys WHERE alg = 'ES256' AND retired_at IS NULL"):
            return
        await conn.execute(
            "INSERT INTO identity.jwt_keys (kid, alg, public_jwk, private_key_enc) VALUES ($1, 'ES256', $2, $3)",
            kid,
            public_jwk,
            private_key_enc,
        )


async def live_es256_keys(db: Executor) -> list[Record]:
    """`kid, public_jwk, private_key_enc` of the unretired ES256 keys, newest first."""
    return await db.fetch(
        "SELECT kid, public_jwk, private_key_enc FROM identity.jwt_keys WHERE alg = 'ES256' AND retired_at IS NULL "
        "ORDER BY created_at DESC"
    )
