"""Clients of the push providers, one class each, configured by URL (`settings.simulators_url` in development).

Each send answers one `Outcome` per device: delivered, invalid (the token or address is gone: deactivate it),
retry (transient: 429/5xx/timeouts, with the provider's Retry-After when given) or failed (permanent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.secrets_file import read_or_create
from core.settings import Settings

log = logging.getLogger("szt.push.providers")

APNS_TEAM_ID = "SZT0000001"
APNS_KEY_ID = "SZTPUSH001"
APNS_TOPIC = "cn.gov.jiangsu.szt"
HMS_PROJECT_ID = "101000001"
HMS_SERVICE_ACCOUNT = "szt-push@101000001.iam.gserviceaccount.huawei"
HMS_KEY_ID = "szt-push-key-1"
HMS_AUDIENCE = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
HMS_BATCH = 1000
TOKEN_REFRESH = 50 * 60  # APNs accepts a provider token for an hour; refresh before
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Concurrent APNs requests per worker (SMS: 80, within the shared client's pool of 100 connections). More does not
# send faster: httpcore scans its whole queue for each request it assigns.
IN_FLIGHT = 128


@dataclass(frozen=True)
class Outcome:
    kind: Literal["delivered", "invalid", "retry", "failed"]
    reason: str = ""
    retry_after: float | None = None
    provider_id: str = ""
    # A retry whose first try may have reached the provider (the answer was lost): re-sent as a recovered pair.
    uncertain: bool = False


@dataclass(frozen=True)
class Notification:
    message_id: str
    title: str
    body: str
    priority: str  # high | normal
    expires_at: int  # UNIX seconds; 0: deliver now or never
    ttl: int
    collapse_key: str | None
    template: str
    params: dict[str, str]

    @property
    def collapse_id(self) -> str:
        """What a device collapses on: the sender's collapse key, else the message itself (a repeat of the same
        message, e.g. a re-send after a worker crash, replaces the first rather than showing twice)."""
        return self.collapse_key or self.message_id

    @property
    def notify_id(self) -> int:
        """HarmonyOS `notifyId` (int32): the same for every send of this message or collapse key."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f"szt-push:{self.collapse_id}").int % 2**31


def transport_failure(exc: Exception) -> Outcome:
    """A failed call: certainly not sent when the connection was never made, otherwise perhaps sent."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return Outcome("retry", f"transport: {type(exc).__name__}", uncertain=not never_sent)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _private_pem(settings: Settings, name: str, make: Any) -> Any:
    pem = read_or_create(settings.var_path / "keys" / name, make)
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _pem(key: Any) -> str:
    raw: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return raw.decode()


class _SignedToken:
    """A provider JWT, minted once and reused until it is nearly expired."""

    def __init__(self) -> None:
        self.value = ""
        self.minted = 0.0

    def get(self, mint: Any) -> str:
        now = time.time()
        if not self.value or now - self.minted > TOKEN_REFRESH:
            self.value = mint(int(now))
            self.minted = now
        return self.value

    def reset(self) -> None:
        self.value = ""


class ApnsClient:
    """APNs provider API over HTTP/2 (prior knowledge over cleartext to the simulator; TLS+ALPN to Apple)."""

    def __init__(self, settings: Settings, *, http2: bool = True) -> None:
        self.base = f"{settings.simulators_url}/apns"
        self.key = _private_pem(settings, "push-apns-es256.pem", lambda: _pem(ec.generate_private_key(ec.SECP256R1())))
        cleartext = self.base.startswith("http://")
        # httpx speaks h2c only with prior knowledge (http1=False); over TLS it negotiates h2 by ALPN.
        self.http = httpx.AsyncClient(
            http2=http2,
            http1=not (http2 and cleartext),
            timeout=httpx.Timeout(10.0, connect=3.0),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )
        self.token = _SignedToken()
        self.registered = False
        self.registering = asyncio.Lock()  # hundreds of concurrent first sends register the key once, not each
        # Calls in flight (HTTP/2 streams over the few connections): more wait here rather than in httpx's pool,
        # whose timeout would turn a long queue of concurrent consumers' sends into needless retries.
        self.in_flight = asyncio.Semaphore(IN_FLIGHT)
        self.http_version = ""  # of the last answer: "HTTP/2" unless a fallback was configured

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return jwk

    async def register_key(self) -> None:
        """Simulator only: tell it our public key (Apple learns it from the developer account)."""
        r = await self.http.post(
            f"{self.base}/_sim/keys", json={"team_id": APNS_TEAM_ID, "key_id": APNS_KEY_ID, "jwk": self.public_jwk()}
        )
        r.raise_for_status()
        self.registered = True

    def _mint(self, iat: int) -> str:
        return jwt.encode({"iss": APNS_TEAM_ID, "iat": iat}, self.key, algorithm="ES256", headers={"kid": APNS_KEY_ID})

    async def send(self, token: str, n: Notification, apns_id: str) -> Outcome:
        if not self.registered:
            async with self.registering:
                if not self.registered:
                    await self.register_key()
        payload = {
            "aps": {"alert": {"title": n.title, "body": n.body}, "sound": "default"},
            "msg_id": n.message_id,
            "template": n.template,
        }
        headers = {
            "apns-topic": APNS_TOPIC,
            "apns-push-type": "alert",
            "apns-priority": "10" if n.priority == "high" else "5",
            "apns-expiration": str(n.expires_at),
            "apns-id": apns_id,
        }
        headers["apns-collapse-id"] = n.collapse_id
        for attempt in (1, 2):
            headers["authorization"] = f"bearer {self.token.get(self._mint)}"
            try:
                async with self.in_flight:
                    resp = await self.http.post(f"{self.base}/3/device/{token}", json=payload, headers=headers)
            except httpx.HTTPError as exc:
                return transport_failure(exc)
            self.http_version = resp.http_version
            if resp.status_code == 200:
                return Outcome("delivered", provider_id=resp.headers.get("apns-id", apns_id))
            reason = _reason(resp)
            if resp.status_code == 403 and attempt == 1:  # a restarted simulator forgot our key, or token expired
                self.token.reset()
                await self.register_key()
                continue
            if resp.status_code == 410 or reason in ("BadDeviceToken", "DeviceTokenNotForTopic"):
                return Outcome("invalid", reason)
            if resp.status_code in RETRY_STATUSES:
                return Outcome("retry", reason, _retry_after(resp))
            return Outcome("failed", reason)
        return Outcome("failed", "InvalidProviderToken")

    async def aclose(self) -> None:
        await self.http.aclose()


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    return str(body.get("reason", "")) if isinstance(body, dict) else f"HTTP {resp.status_code}"


class HmsClient:
    """HarmonyOS Push Kit v3: one request per up to 1000 tokens, authorised by a service-account JWT."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.base = f"{settings.simulators_url}/hms"
        self.http = http
        self.key = _private_pem(
            settings,
            "push-hms-ps256.pem",
            lambda: _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        )
        self.token = _SignedToken()
        self.registered = False
        self.registering = asyncio.Lock()

    async def register_key(self) -> None:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        r = await self.http.post(
            f"{self.base}/_sim/keys",
            json={"project_id": HMS_PROJECT_ID, "key_id": HMS_KEY_ID, "iss": HMS_SERVICE_ACCOUNT, "jwk": jwk},
        )
        r.raise_for_status()
        self.registered = True

    def _mint(self, iat: int) -> str:
        claims = {"iss": HMS_SERVICE_ACCOUNT, "aud": HMS_AUDIENCE, "iat": iat, "exp": iat + 3600}
        return jwt.encode(claims, self.key, algorithm="PS256", headers={"kid": HMS_KEY_ID, "typ": "JWT"})

    async def send(self, tokens: list[str], n: Notification) -> dict[str, Outcome]:
        """Outcome per token for one batch (at most 1000)."""
        assert 0 < len(tokens) <= HMS_BATCH
        if not self.registered:
            async with self.registering:
                if not self.registered:
                    await self.register_key()
        body = {
            "payload": {
                "notification": {
                    "category": "ACCOUNT" if n.template != "broadcast" else "MARKETING",
                    "title": n.title,
                    "body": n.body,
                    "clickAction": {"actionType": 0},
                    "notifyId": n.notify_id,
                },
                "data": json.dumps({"msg_id": n.message_id}),
            },
            "target": {"token": tokens},
            "pushOptions": {"ttl": n.ttl, "testMessage": False, "collapseKey": n.collapse_key or ""},
        }
        url = f"{self.base}/v3/{HMS_PROJECT_ID}/messages:send"
        for attempt in (1, 2):
            headers = {"authorization": f"Bearer {self.token.get(self._mint)}", "push-type": "0"}
            try:
                resp = await self.http.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                return dict.fromkeys(tokens, transport_failure(exc))
            try:
                answer = resp.json()
                code, msg, request_id = str(answer["code"]), str(answer["msg"]), str(answer.get("requestId", ""))
            except (ValueError, KeyError, TypeError):
                code, msg, request_id = "", f"HTTP {resp.status_code}", ""
            if resp.status_code == 401 and attempt == 1:
                self.token.reset()
                await self.register_key()
                continue
            if code == "80000000":
                return dict.fromkeys(tokens, Outcome("delivered", provider_id=request_id))
            if code == "80100000":
                try:
                    illegal = set(json.loads(msg).get("illegal_tokens", []))
                except (ValueError, AttributeError):
                    illegal = set()
                return {
                    t: Outcome("invalid", "illegal token")
                    if t in illegal
                    else Outcome("delivered", provider_id=request_id)
                    for t in tokens
                }
            if code == "80300007":
                return dict.fromkeys(tokens, Outcome("invalid", "illegal token"))
            if resp.status_code in RETRY_STATUSES:
                return dict.fromkeys(tokens, Outcome("retry", f"{code} {msg}".strip(), _retry_after(resp)))
            return dict.fromkeys(tokens, Outcome("failed", f"{code} {msg}".strip()))
        return dict.fromkeys(tokens, Outcome("failed", "80200001 authentication"))


class SmsClient:
    """The SMS gateway (template messages); the push templates map to gateway template codes."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.url = f"{settings.simulators_url}/sms/v1/messages"
        self.http = http
        self.in_flight = asyncio.Semaphore(80)

    async def send(self, phone: str, n: Notification, out_id: str) -> Outcome:
        params = {k: v[:64] for k, v in list(n.params.items())[:10]}
        body = {"phone": phone, "template": f"SZT_PUSH_{n.template.upper()}", "params": params, "out_id": out_id}
        try:
            async with self.in_flight:
                resp = await self.http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        if resp.status_code == 200:
            return Outcome("delivered", provider_id=str(resp.json().get("message_id", "")))
        if resp.status_code in RETRY_STATUSES:
            return Outcome("retry", f"HTTP {resp.status_code}", _retry_after(resp))
        if resp.status_code == 400:
            return Outcome("invalid", "rejected phone")
        return Outcome("failed", f"HTTP {resp.status_code}")

    async def sent_id(self, out_id: str) -> str | None:
        """The gateway's id of a message sent under our `out_id`, or None if it never got one (QuerySendDetails)."""
        resp = await self.http.get(self.url, params={"out_id": out_id})
        resp.raise_for_status()
        items = resp.json().get("items", [])
        return str(items[0]["message_id"]) if items else None


def apns_id_for(message_id: str, device_id: str) -> str:
    """The same notification always carries the same apns-id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"szt-push:{message_id}:{device_id}"))
