"""The one transport of the platform clients: core.http1's keep-alive client, bounded in time.

A broadcast sends one HTTPS call per mini-program user, and httpx cost ~1.3 ms of CPU per call there (its pool
checks every pooled connection on each request).
"""

from __future__ import annotations

from core.http1 import HTTPResponse, keepalive_client

CALL_TIMEOUT = 5.0


async def call(base: str, method: str, target: str, content: bytes, headers: dict[str, str]) -> HTTPResponse:
    return await keepalive_client(base, timeout=CALL_TIMEOUT).request(method, target, content, lambda: headers)
