"""The registry of relying parties (apps, portals, verifiers, business systems), shared with the OIDC provider."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import unquote_plus

import msgspec

from core.auth import credentials
from core.crypto import sm3
from core.problems import ProblemError
from core.resources import Resources
from identity import repo

KINDS = ("app", "portal", "verifier", "business")
ZONES = ("internet", "government", "police")
_CACHE_SECONDS = 30.0
# Any printable text (RFC 6749's VSCHAR and, as registered ids may hold it, non-ASCII), no control characters,
# spaces or lone surrogates: those never reach PostgreSQL.
CLIENT_ID = re.compile(r"^[^\x00-\x20\x7f-\x9f\ud800-\udfff]{1,128}$")


class Client(msgspec.Struct, frozen=True):
    client_id: str
    name: str
    kind: str
    zone: str
    sector: str
    entitlements: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    min_acr: str
    auth_method: str
    id_token_alg: str
    status: str
    secret_hash: str | None


class NewClient(msgspec.Struct):
    client: Client
    client_secret: str | None


def hash_secret(secret: str) -> str:
    # Secrets are 256-bit random strings we generate: a plain SM3 digest suffices (no dictionary to guess from).
    return sm3(secret.encode()).hex()


async def create(
    res: Resources,
    *,
    client_id: str,
    name: str,
    kind: str,
    zone: str = "internet",
    redirect_uris: list[str] | None = None,
    entitlements: list[str] | None = None,
    sector: str | None = None,
    min_acr: str = "wz",
    auth_method: str = "client_secret_basic",
    secret: str | None = None,
    id_token_alg: str = "ES256",  # noqa: S107  (an algorithm name, not a password)
    post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str | None = None,
    jwks: dict[str, object] | None = None,
) -> NewClient:
    if kind not in KINDS or zone not in ZONES:
        raise ValueError("unknown client kind or zone")
    if zone == "police":
        min_acr = "wz+face"  # police-network clients always require 网证+人脸
    public = auth_method == "none"
    secret = None if public else (secret or secrets.token_urlsafe(32))
    await repo.insert_client(
        res.db,
        client_id=client_id,
        name=name,
        kind=kind,
        zone=zone,
        secret_hash=hash_secret(secret) if secret else None,
        auth_method=auth_method,
        redirect_uris=redirect_uris or [],
        entitlements=entitlements or [],
        sector=sector or client_id,
        min_acr=min_acr,
        id_token_alg=id_token_alg,
        post_logout_redirect_uris=post_logout_redirect_uris or [],
        backchannel_logout_uri=backchannel_logout_uri,
        jwks=jwks,
    )
    client = await get(res, client_id)
    assert client is not None
    return NewClient(client, secret)


_cache: dict[str, tuple[float, Client | None]] = {}


async def get(res: Resources, client_id: str, *, cached: bool = False) -> Client | None:
    if not CLIENT_ID.match(client_id):
        return None  # also keeps NUL bytes and the like away from PostgreSQL
    if cached:
        hit = _cache.get(client_id)
        if hit and time.monotonic() - hit[0] < _CACHE_SECONDS:
            return hit[1]
    row = await repo.client(res.db, client_id)
    client = None
    if row is not None:
        client = Client(
            client_id=row["client_id"],
            name=row["name"],
            kind=row["kind"],
            zone=row["zone"],
            sector=row["sector"],
            entitlements=tuple(row["entitlements"]),
            redirect_uris=tuple(row["redirect_uris"]),
            min_acr=row["min_acr"],
            auth_method=row["auth_method"],
            id_token_alg=row["id_token_alg"],
            status=row["status"],
            secret_hash=row["secret_hash"],
        )
    _cache[client_id] = (time.monotonic(), client)
    return client


def _invalid_client() -> ProblemError:
    return ProblemError(
        401,
        "invalid-client",
        "Client authentication failed",
        "客户端认证失败",
        headers={"WWW-Authenticate": 'Basic realm="szt"'},
    )


_basic_ok: dict[bytes, tuple[float, Client]] = {}  # keyed by a digest: no secret kept in memory as is


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The client_id and secret of a client_secret_basic header, or None when it holds none. RFC 6749 §2.3.1: the
    client form-urlencodes (Appendix B) its id and its secret, then joins them with ":" and Base64-encodes them as
    HTTP Basic does; so they are split on the first ":" and each form-decoded (UTF-8). The scheme is
    case-insensitive (RFC 9110 §11.1)."""
    token = credentials(authorization, "basic")
    if token is None:
        return None
    try:
        user, colon, password = base64.b64decode(token, validate=True).decode().partition(":")
        if not colon:
            return None
        return unquote_plus(user, errors="strict"), unquote_plus(password, errors="strict")
    except (binascii.Error, UnicodeDecodeError):
        return None


async def authenticate_basic(res: Resources, authorization: str | None) -> Client:
    """client_secret_basic (RFC 6749 §2.3.1, see basic_credentials). A header that authenticated is remembered as
    long as the client record itself is cached (30 s): verifiers send the same header on every request, and the fast
    path (basic_cached) takes a header only once it authenticated here."""
    if not authorization or len(authorization) > 512 or credentials(authorization, "basic") is None:
        raise _invalid_client()
    key = hashlib.sha256(authorization.encode()).digest()
    hit = _basic_ok.get(key)
    if hit and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    client = await _authenticate_basic(res, authorization)
    if len(_basic_ok) > 1024:
        _basic_ok.clear()
    _basic_ok[key] = (time.monotonic(), client)
    return client


def basic_cached(authorization: bytes) -> Client | None:
    """The client a client_secret_basic header authenticated within the cache time, else None (the caller then
    takes the full path, which checks the secret and fills this cache). Only headers authenticate_basic accepted are
    here, so the fast path agrees with the routes on schemes and encodings by construction."""
    if len(authorization) > 512:
        return None
    hit = _basic_ok.get(hashlib.sha256(authorization).digest())
    return hit[1] if hit and time.monotonic() - hit[0] < _CACHE_SECONDS else None


async def _authenticate_basic(res: Resources, authorization: str) -> Client:
    pair = basic_credentials(authorization)
    if pair is None:
        raise _invalid_client()
    return await authenticate_secret(res, *pair)


async def authenticate_secret(res: Resources, client_id: str, secret: str) -> Client:
    client = await get(res, client_id[:128], cached=True)
    if client is None or client.status != "active" or not client.secret_hash:
        raise _invalid_client()
    if not hmac.compare_digest(client.secret_hash, hash_secret(secret)):
        raise _invalid_client()
    return client


async def update_grants(
    res: Resources, client_id: str, *, entitlements: list[str], redirect_uris: list[str], zone: str
) -> None:
    """A new approved version of an onboarded app changes what its client may receive and where it redirects."""
    if zone not in ZONES:
        raise ValueError("unknown zone")
    await repo.update_client_grants(res.db, client_id, entitlements, redirect_uris, zone)
    _cache.pop(client_id, None)
