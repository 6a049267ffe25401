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
from urllib.parse import urlsplit

import httpx
import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hpack import HeaderTuple

from core.secrets_file import read_or_create
from core.settings import Settings
from push.h2client import H2Connection, H2Response, Headers, NotSent, header, unique_header

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
APNS_TIMEOUT = 10.0  # seconds for a batch of APNs requests; a stream still open then is reset (outcome unknown)


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
    """APNs provider API over HTTP/2: one connection per worker with many concurrent streams (h2c with prior
    knowledge to the simulator; TLS + ALPN h2 to Apple), driven by `push.h2client` rather than httpx, whose
    per-request overhead was most of a worker's CPU on an APNs-heavy broadcast."""

    def __init__(self, settings: Settings) -> None:
        self.base = f"{settings.simulators_url}/apns"
        self.key = _private_pem(settings, "push-apns-es256.pem", lambda: _pem(ec.generate_private_key(ec.SECP256R1())))
        self.path_prefix = urlsplit(self.base).path.rstrip("/")
        self.scheme = urlsplit(self.base).scheme.encode()
        # The simulator's control endpoint (key registration) only, over HTTP/1.1.
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
        self.token = _SignedToken()
        self.registered = False
        self.registering = asyncio.Lock()  # hundreds of concurrent first sends register the key once, not each
        self.connecting = asyncio.Lock()
        self.conn: H2Connection | None = None
        self.http_version = ""  # of the last answer: "HTTP/2"

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

    async def _connection(self) -> H2Connection:
        async with self.connecting:
            if self.conn is None or not self.conn.usable:
                if self.conn is not None:
                    self.conn.close()
                self.conn = await H2Connection.open(self.base)
            return self.conn

    async def send(self, token: str, n: Notification, apns_id: str) -> Outcome:
        return (await self.send_many([(token, n, apns_id)]))[0]

    def _request(self, token: str, n: Notification, apns_id: str, auth: HeaderTuple, conn: H2Connection) -> Headers:
        return [
            header(":method", "POST"),
            HeaderTuple(b":scheme", self.scheme),
            header(":authority", conn.authority),
            unique_header(":path", f"{self.path_prefix}/3/device/{token}"),
            auth,
            header("apns-topic", APNS_TOPIC),
            header("apns-push-type", "alert"),
            header("apns-priority", "10" if n.priority == "high" else "5"),
            header("apns-expiration", str(n.expires_at)),
            unique_header("apns-id", apns_id),
            header("apns-collapse-id", n.collapse_id),
        ]

    async def send_many(self, items: list[tuple[str, Notification, str]]) -> list[Outcome]:
        """One notification per (device token, notification, apns-id), all on one connection as concurrent
        streams; one Outcome per item, in order."""
        if not self.registered:
            async with self.registering:
                if not self.registered:
                    await self.register_key()
        payloads: dict[str, bytes] = {}
        for _, n, _ in items:
            if n.message_id not in payloads:
                payloads[n.message_id] = _JSON.encode(
                    {
                        "aps": {"alert": {"title": n.title, "body": n.body}, "sound": "default"},
                        "msg_id": n.message_id,
                        "template": n.template,
                    }
                )
        out: list[Outcome | None] = [None] * len(items)
        todo = list(range(len(items)))
        for attempt in (1, 2):
            try:
                conn = await self._connection()
            except NotSent as exc:
                for i in todo:
                    out[i] = Outcome("retry", f"transport: {exc}")
                break
            auth = header("authorization", f"bearer {self.token.get(self._mint)}")
            futures = conn.request_many(
                [(self._request(t, n, a, auth, conn), payloads[n.message_id]) for t, n, a in (items[i] for i in todo)]
            )
            await asyncio.wait(futures, timeout=APNS_TIMEOUT)
            refused: list[int] = []
            for i, fut in zip(todo, futures, strict=True):
                if not fut.done():
                    conn.cancel(fut)
                if not fut.done():
                    out[i] = Outcome("retry", "transport: no answer", uncertain=True)
                    continue
                error = fut.exception()
                if error is not None:
                    out[i] = Outcome("retry", f"transport: {error}", uncertain=not isinstance(error, NotSent))
                    continue
                resp = fut.result()
                self.http_version = "HTTP/2"
                o = _apns_outcome(resp, items[i][2])
                if o is None and attempt == 1:  # a restarted simulator forgot our key, or the token expired
                    refused.append(i)
                else:
                    out[i] = o or Outcome("failed", "InvalidProviderToken")
            if not refused:
                break
            self.token.reset()
            await self.register_key()
            todo = refused
        return [o if o is not None else Outcome("failed", "no answer") for o in out]

    async def aclose(self) -> None:
        if self.conn is not None:
            self.conn.close()
        await self.http.aclose()


def _apns_outcome(resp: H2Response, apns_id: str) -> Outcome | None:
    """What an APNs answer means; None for 403 (provider token refused: register or mint again, then re-send)."""
    if resp.status == 200:
        return Outcome("delivered", provider_id=resp.headers.get(b"apns-id", apns_id.encode()).decode())
    try:
        body = json.loads(resp.body) if resp.body else {}
        reason = str(body.get("reason", "")) if isinstance(body, dict) else f"HTTP {resp.status}"
    except ValueError:
        reason = f"HTTP {resp.status}"
    if resp.status == 403:
        return None
    if resp.status == 410 or reason in ("BadDeviceToken", "DeviceTokenNotForTopic"):
        return Outcome("invalid", reason)
    if resp.status in RETRY_STATUSES:
        value = resp.headers.get(b"retry-after", b"")
        try:
            retry_after = max(0.0, float(value)) if value else None
        except ValueError:
            retry_after = None
        return Outcome("retry", reason, retry_after)
    return Outcome("failed", reason)


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


SMS_BATCH = 100  # numbers per batch call (Aliyun SendBatchSms takes at most 100)


class SmsClient:
    """The SMS gateway (template messages); the push templates map to gateway template codes."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.url = f"{settings.simulators_url}/sms/v1/messages"
        self.batch_url = f"{settings.simulators_url}/sms/v1/batch"
        self.http = http
        self.in_flight = asyncio.Semaphore(80)

    @staticmethod
    def _params(n: Notification) -> dict[str, str]:
        return {k: v[:64] for k, v in list(n.params.items())[:10]}

    async def send_batch(self, n: Notification, items: list[tuple[str, str]]) -> list[Outcome]:
        """One template call for up to SMS_BATCH (phone, out_id) pairs; one Outcome per pair, in order. A refused
        request (400: some number is malformed) is sent again one number at a time, so only that one fails."""
        assert 0 < len(items) <= SMS_BATCH
        params = self._params(n)
        body = {
            "template": f"SZT_PUSH_{n.template.upper()}",
            "items": [{"phone": phone, "params": params, "out_id": out_id} for phone, out_id in items],
        }
        try:
            async with self.in_flight:
                resp = await self.http.post(
                    self.batch_url, content=_JSON.encode(body), headers={"content-type": "application/json"}
                )
        except httpx.HTTPError as exc:
            return [transport_failure(exc)] * len(items)
        if resp.status_code == 400:
            return [await self.send(phone, n, out_id) for phone, out_id in items]
        if resp.status_code != 200:
            kind: Literal["retry", "failed"] = "retry" if resp.status_code in RETRY_STATUSES else "failed"
            return [Outcome(kind, f"HTTP {resp.status_code}", _retry_after(resp))] * len(items)
        try:
            answers = msgspec.json.decode(resp.content, type=_SmsBatchAnswer).items
        except msgspec.ValidationError:
            answers = []
        if len(answers) != len(items):  # an answer we cannot map back: the sends may have happened
            return [Outcome("retry", "unreadable batch answer", uncertain=True)] * len(items)
        out: list[Outcome] = []
        for a in answers:
            if a.code == "OK":
                out.append(Outcome("delivered", provider_id=a.message_id or ""))
            elif a.status in RETRY_STATUSES:
                out.append(Outcome("retry", a.code, float(a.retry_after) if a.retry_after else None))
            else:
                out.append(Outcome("failed", a.code))
        return out

    async def send(self, phone: str, n: Notification, out_id: str) -> Outcome:
        params = self._params(n)
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


class _SmsBatchResult(msgspec.Struct):
    code: str
    status: int = 200
    message_id: str | None = None
    retry_after: int | None = None


class _SmsBatchAnswer(msgspec.Struct):
    items: list[_SmsBatchResult]


_JSON = msgspec.json.Encoder()


def apns_id_for(message_id: str, device_id: str) -> str:
    """The same notification always carries the same apns-id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"szt-push:{message_id}:{device_id}"))
