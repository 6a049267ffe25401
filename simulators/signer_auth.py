"""Client authentication of the signing server simulator: IP allow-list, then an HMAC-SM3 request signature.

Each request carries
    X-App-Id: <app id>
    X-Timestamp: <unix seconds>            (within ±300 s of the device clock)
    X-Nonce: <8–64 of [A-Za-z0-9_-]>        (one-time: remembered for 600 s)
    Authorization: HMAC-SM3 <hex>
where the hex is HMAC-SM3(app secret, "METHOD\\npath\\ntimestamp\\nnonce\\nhex(SHA-256(body))").
App ids and secrets live in `<var>/signer/apps` (0600), one "app_id secret" per line; created on first start with
the app `eseal` and a random secret. The allow-list comes from `SZT_SIGNER_ALLOW` (IPs or CIDRs, comma-separated;
default `127.0.0.1,::1`).
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from litestar import Request

from core.problems import ProblemError
from core.reqsig import NONCE_TTL, canonical, check_headers
from core.secrets_file import read_or_create

__all__ = ["NONCE_TTL", "Authenticator", "canonical", "load_apps"]


def load_apps(directory: Path) -> dict[str, bytes]:
    text = read_or_create(directory / "apps", lambda: f"eseal {secrets.token_hex(32)}")
    apps: dict[str, bytes] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            apps[parts[0]] = parts[1].encode()
    return apps


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "signer-unauthorized",
        "Client authentication failed",
        "客户端认证失败",
        detail,
        headers={"WWW-Authenticate": "HMAC-SM3"},
    )


class Authenticator:
    def __init__(self, directory: Path, allow: str) -> None:
        """`allow`: addresses or CIDRs accepted, comma-separated (Settings.signer_allow)."""
        self.apps = load_apps(directory)
        spec = allow
        self.allow = [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def allowed(self, host: str | None) -> bool:
        if not host:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr.version == net.version and addr in net for net in self.allow)

    def _fresh_nonce(self, key: str, now: float) -> bool:
        with self._lock:
            if now >= self._next_prune:
                self._nonces = {k: t for k, t in self._nonces.items() if t > now}
                self._next_prune = now + 30
            expiry = self._nonces.get(key)
            if expiry is not None and expiry > now:
                return False
            self._nonces[key] = now + NONCE_TTL
            return True

    async def __call__(self, request: Request[Any, Any, Any]) -> None:
        """Litestar `before_request` hook: raises a 403 or 401 problem, else lets the request through."""
        host = request.client.host if request.client else None
        if not self.allowed(host):
            raise ProblemError(403, "signer-ip-denied", "Address not allowed", "来源地址不在白名单内", f"{host}")
        headers = request.headers
        app_id = headers.get("x-app-id", "")
        if not app_id:
            raise _unauthorized("X-App-Id, X-Timestamp, X-Nonce and Authorization: HMAC-SM3 <hex> are required")
        secret = self.apps.get(app_id)
        if secret is None:
            raise _unauthorized("unknown app id")
        now = time.time()
        nonce = headers.get("x-nonce", "")
        body = await request.body()
        why = check_headers(secret, request.method, request.url.path, headers, body)
        if why is not None:
            raise _unauthorized(why)
        if not self._fresh_nonce(f"{app_id}:{nonce}", now):
            raise _unauthorized("nonce already used")
