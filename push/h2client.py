"""A lean HTTP/2 client for APNs: one connection, many concurrent streams, driven by `h2` over asyncio.

APNs takes one request per device token, so a broadcast's APNs share is many small requests. httpx/httpcore spend
about a millisecond of CPU on each (pool bookkeeping, anyio streams, a task per request); here a whole batch of
requests is encoded and written in one go, and answers resolve futures as their frames arrive. The connection
honours the server's stream limit and flow-control windows, and says for every failed request whether it certainly
never reached the server (`NotSent`: no connection, or a stream the server refused or never processed per GOAWAY)
or may have (`H2Error`), which the caller's idempotency rules need.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hpack import Encoder, HeaderTuple, NeverIndexedHeaderTuple

Headers = list[HeaderTuple]
LAST_STREAM_ID = 2**31 - 1


class H2Error(Exception):
    """The request may or may not have reached the server (connection lost or stream reset after sending)."""


class NotSent(H2Error):
    """The request certainly never reached the server: safe to send again as new."""


@dataclass(frozen=True)
class H2Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def header(name: str, value: str) -> HeaderTuple:
    """A header the connection may index (HPACK dynamic table): values repeated across requests."""
    return HeaderTuple(name.encode(), value.encode())


def unique_header(name: str, value: str) -> HeaderTuple:
    """A header whose value changes per request (path with the device token, apns-id): never indexed, so it does
    not push the repeated ones (the provider token) out of the dynamic table."""
    return NeverIndexedHeaderTuple(name.encode(), value.encode())


class _PlainEncoder(Encoder):
    """HPACK without Huffman coding: hpack's pure-Python Huffman encoder is most of a request's header cost, and
    literals cost a few bytes more on the wire, not more calls."""

    def encode(self, headers: Any, huffman: bool = False) -> bytes:
        return super().encode(headers, huffman=False)


@dataclass
class _Request:
    headers: Headers
    body: bytes
    future: asyncio.Future[H2Response]
    stream_id: int = 0
    status: int = 0
    response_headers: dict[bytes, bytes] = field(default_factory=dict)
    data: list[bytes] = field(default_factory=list)


class H2Connection(asyncio.Protocol):
    """One client connection. `request_many` queues requests; they start as the server's concurrent-stream limit
    and the connection's send window allow, and are written together."""

    def __init__(self, authority: str) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.encoder = _PlainEncoder()
        self.authority = authority
        self.transport: asyncio.Transport | None = None
        self.pending: collections.deque[_Request] = collections.deque()
        self.streams: dict[int, _Request] = {}
        self.closed = False
        self.close_reason = ""
        # Requests wait for the server's first SETTINGS: until then its stream limit is unknown, and streams over it
        # would be refused (safe to re-send, but a wasted round of retries).
        self.settled = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str, *, connect_timeout: float = 3.0) -> H2Connection:
        """Connect to the origin of `url`: h2c with prior knowledge over http://, TLS with ALPN h2 over https://."""
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or "localhost"
        port = parts.port or (443 if tls else 80)
        context: ssl.SSLContext | None = None
        if tls:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["h2"])
        loop = asyncio.get_running_loop()
        authority = host if port in (80, 443) else f"{host}:{port}"
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: cls(authority), host, port, ssl=context), connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise NotSent(f"connect: {type(exc).__name__}: {exc}") from exc
        try:
            await asyncio.wait_for(asyncio.shield(proto.settled), connect_timeout)
        except TimeoutError as exc:
            proto.close()
            raise NotSent("no SETTINGS from the server") from exc
        if proto.closed:
            raise NotSent(proto.close_reason)
        return proto

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(f"protocol error: {exc}")
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            self._on_event(event)
        self._start_pending()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(f"connection lost: {exc!r}" if exc else "connection closed")

    # requests

    def request_many(self, requests: list[tuple[Headers, bytes]]) -> list[asyncio.Future[H2Response]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[H2Response]] = []
        for headers, body in requests:
            fut: asyncio.Future[H2Response] = loop.create_future()
            futures.append(fut)
            if self.closed:
                fut.set_exception(NotSent(self.close_reason))
            else:
                self.pending.append(_Request(headers, body, fut))
        self._start_pending()
        self._flush()
        return futures

    def cancel(self, future: asyncio.Future[H2Response]) -> None:
        """Give up on a request (timed out): a queued one is dropped, a started one's stream is reset."""
        for req in self.pending:
            if req.future is future:
                self.pending.remove(req)
                if not future.done():
                    future.set_exception(NotSent("timed out in the queue"))
                return
        for sid, req in list(self.streams.items()):
            if req.future is future:
                del self.streams[sid]
                try:
                    self.h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                except h2.exceptions.H2Error:
                    pass
                if not future.done():
                    future.set_exception(H2Error("timed out"))
                self._flush()
                return

    @property
    def usable(self) -> bool:
        return not self.closed and self.h2.highest_outbound_stream_id < LAST_STREAM_ID - 10_000

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.h2.close_connection()
            self._flush()
            self.transport.close()
        self.closed = True

    def _start_pending(self) -> None:
        if not self.settled.done():
            return
        limit = self.h2.remote_settings.max_concurrent_streams
        while self.pending and not self.closed and len(self.streams) < limit:
            req = self.pending[0]
            size = len(req.body)
            if size > min(self.h2.max_outbound_frame_size, self.h2.remote_settings.initial_window_size):
                self.pending.popleft()  # one DATA frame per request is all APNs needs (payloads are at most 4 KB)
                req.future.set_exception(NotSent("body larger than one frame or the stream window"))
                continue
            if size and self.h2.outbound_flow_control_window < size:
                return  # wait for the server's WINDOW_UPDATE
            self.pending.popleft()
            sid = self.h2.get_next_available_stream_id()
            req.stream_id = sid
            self.h2.send_headers(sid, req.headers, end_stream=not req.body)
            if req.body:
                self.h2.send_data(sid, req.body, end_stream=True)
            self.streams[sid] = req

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged) and not self.settled.done():
            self.settled.set_result(None)
        elif isinstance(event, h2.events.ResponseReceived):
            req = self.streams.get(event.stream_id)
            if req is not None:
                req.response_headers = dict(event.headers or [])
                req.status = int(req.response_headers.get(b":status", b"0"))
        elif isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            req = self.streams.get(event.stream_id)
            if req is not None and event.data:
                req.data.append(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            req = self.streams.pop(event.stream_id, None)
            if req is not None and not req.future.done():
                req.future.set_result(H2Response(req.status, req.response_headers, b"".join(req.data)))
        elif isinstance(event, h2.events.StreamReset):
            req = self.streams.pop(event.stream_id, None)
            if req is not None and not req.future.done():
                refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                cls = NotSent if refused else H2Error
                req.future.set_exception(cls(f"stream reset: {event.error_code!r}"))
        elif isinstance(event, h2.events.ConnectionTerminated):
            # Streams above the last one the server processed never reached it (RFC 9113 §6.8).
            last = event.last_stream_id if event.last_stream_id is not None else 0
            self.closed = True
            self.close_reason = f"GOAWAY {event.error_code!r}"
            for sid, req in list(self.streams.items()):
                if sid > last:
                    del self.streams[sid]
                    if not req.future.done():
                        req.future.set_exception(NotSent(self.close_reason))
            self._fail_pending(self.close_reason)

    def _fail_pending(self, reason: str) -> None:
        while self.pending:
            req = self.pending.popleft()
            if not req.future.done():
                req.future.set_exception(NotSent(reason))

    def _fail_all(self, reason: str) -> None:
        self.closed = True
        if not self.settled.done():
            self.settled.set_result(None)
        self.close_reason = self.close_reason or reason
        self._fail_pending(reason)
        for req in self.streams.values():
            if not req.future.done():
                req.future.set_exception(H2Error(reason))
        self.streams.clear()
