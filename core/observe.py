"""Request ids, JSON structured logs and Prometheus metrics, applied once around the whole ASGI server."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from core.ids import new_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]  # loose: Litestar types its own scopes


async def send_body(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """A whole ASGI response (start and body) from a finished body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str:
    return _request_id.get()


# ---------------------------------------------------------------- logs


class JsonFormatter(logging.Formatter):
    _skip = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = _request_id.get()
        if rid:
            doc["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in self._skip and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(doc, enc_hook=str).decode()


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "asyncio", "apscheduler", "pgserver", "faker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---------------------------------------------------------------- metrics

REGISTRY = CollectorRegistry()
REQUESTS = Counter("szt_http_requests_total", "HTTP requests", ["app", "method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "szt_http_request_duration_seconds",
    "HTTP request latency",
    ["app", "method", "route"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_token(settings: Any) -> str:
    """The bearer token `/metrics` asks for: SZT_METRICS_TOKEN, or one generated once in var/metrics-token (0600)."""
    if settings.metrics_token:
        return str(settings.metrics_token)
    import secrets

    from core.secrets_file import read_or_create

    return read_or_create(settings.var_path / "metrics-token", lambda: secrets.token_urlsafe(32))


def metrics_headers(settings: Any) -> dict[str, str]:
    """Headers a scraper of our own `/metrics` sends (orgs.monitoring)."""
    return {} if settings.metrics_open else {"Authorization": f"Bearer {metrics_token(settings)}"}


def metrics_allowed(settings: Any, authorization: str | None) -> bool:
    if settings.metrics_open:
        return True
    import hmac

    expected = f"Bearer {metrics_token(settings)}".encode()
    return hmac.compare_digest((authorization or "").encode(), expected)


# ---------------------------------------------------------------- middleware

access_log = logging.getLogger("szt.access")
_children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}


class Observability:
    """Outermost ASGI layer: assigns or propagates X-Request-ID, times the request, counts it per route."""

    def __init__(self, app: ASGIApp, *, access_log_enabled: bool = True) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value if _VALID_ID.match(value) else b""
                break
        rid_s = rid.decode() if rid else new_id()
        rid = rid_s.encode()
        token = _request_id.set(rid_s)
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            path: str = scope["path"]
            end = path.find("/", 1)
            mount = path[1:end] if end > 0 else ""
            route = scope.get("path_template") or "unmatched"
            method = scope["method"]
            key = (mount, method, route, status)
            metrics = _children.get(key)
            if metrics is None:  # resolving labelled children costs a lock and a dict build: once per route
                metrics = (REQUESTS.labels(mount, method, route, str(status)), LATENCY.labels(mount, method, route))
                _children[key] = metrics
            metrics[0].inc()
            metrics[1].observe(elapsed)
            if self.access_log_enabled:
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": path,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        # the client as a trusted proxy reported it (core.forwarded rewrote the scope)
                        "client": scope["client"][0] if scope.get("client") else "",
                    },
                )
            _request_id.reset(token)
