"""Client authentication at the token, introspection and revocation endpoints: client_secret_basic,
client_secret_post, private_key_jwt (RFC 7523) and none (public clients, PKCE only)."""

from __future__ import annotations

import time
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from core.auth import credentials
from core.problems import ProblemError
from core.resources import Resources
from identity import clients
from identity.clients import Client
from identity.oidc import repo
from identity.oidc.tokens import OAuthError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


async def _private_key_jwt(res: Resources, form: dict[str, str], endpoint: str) -> Client:
    assertion = form.get("client_assertion", "")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise _invalid("client_assertion is not a JWT") from exc
    client_id = str(claims.get("iss", ""))
    client = await clients.get(res, client_id[:128], cached=True)
    if client is None or client.auth_method != "private_key_jwt" or claims.get("sub") != client_id:
        raise _invalid("unknown client or wrong authentication method")
    jwks = await repo.client_jwks(res.db, client_id)
    key_data = next((k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if key_data is None:
        raise _invalid("no registered key matches the assertion's kid")
    alg = header.get("alg", "")
    key: Any = ECAlgorithm.from_jwk(key_data) if key_data.get("kty") == "EC" else RSAAlgorithm.from_jwk(key_data)
    try:
        jwt.decode(
            assertion,
            key,
            algorithms=["ES256", "RS256", "PS256"],
            audience=[endpoint, res.settings.issuer_url],
            options={"require": ["exp", "jti", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise _invalid(f"client_assertion rejected: {type(exc).__name__}") from exc
    if alg not in ("ES256", "RS256", "PS256"):
        raise _invalid("unsupported assertion algorithm")
    ttl = max(1, int(claims["exp"] - time.time()) + 60)
    if not await res.redis.set(f"jti:{client_id}:{str(claims['jti'])[:128]}", b"1", nx=True, ex=ttl):
        raise _invalid("client_assertion was already used")
    return client


async def authenticate(res: Resources, authorization: str | None, form: dict[str, str], endpoint: str) -> Client:
    if credentials(authorization, "basic") is not None:  # client_secret_basic, the scheme in any case (RFC 9110)
        try:
            return await clients.authenticate_basic(res, authorization)
        except ProblemError as exc:
            raise _invalid("client authentication failed") from exc
    if form.get("client_assertion_type") == ASSERTION_TYPE:
        return await _private_key_jwt(res, form, endpoint)
    client_id = form.get("client_id", "")
    if "client_secret" in form:
        try:
            return await clients.authenticate_secret(res, client_id, form["client_secret"])
        except ProblemError as exc:
            raise _invalid("client authentication failed") from exc
    client = await clients.get(res, client_id[:128], cached=True) if client_id else None
    if client is None or client.auth_method != "none" or client.status != "active":
        raise _invalid("client authentication required")
    return client
