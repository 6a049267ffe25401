"""A lean Redis client for the hottest request paths: one connection per process and event loop, the commands of all
concurrent requests written together once per loop iteration (auto-pipelining, as ioredis does), replies matched
to callers in order. redis-py spends ~20 µs of Python per command (connection pool, retry wrapper, RESP3 parser,
one socket write each); here a command costs its encoding, a share of one write, and parsing its reply.

Only what those paths need: commands and Lua scripts, RESP2 replies (simple strings, errors, integers, bulk
strings, arrays, nil), redis:// (password, database) and unix:// URLs. Anything failing on the connection — it
drops, or a reply does not arrive within the timeout — fails every command waiting on it and closes it; the next
command opens a new one. Everything else keeps using redis-py (`core.redis_client`).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from core.loop_local import loop_local

TIMEOUT = 5.0


class RespError(Exception):
    """An error reply (`-ERR …`, `-NOSCRIPT …`): the command reached Redis and was refused."""


class RespConnectionError(ConnectionError):
    """The connection failed or timed out: a command waiting on it may or may not have run."""


class _Incomplete(Exception):
    pass


def encode_command(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        elif isinstance(a, int | float):
            b = repr(a).encode()
        else:
            raise TypeError(f"cannot send {type(a).__name__} to Redis")
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def parse_reply(buf: bytes | bytearray, pos: int) -> tuple[Any, int]:
    """One RESP2 reply starting at `pos`: (value, position after it); _Incomplete when the buffer ends first. An
    error reply is returned as a RespError value (raised by the caller), not raised here."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos], bytes(buf[pos + 1 : end])
    pos = end + 2
    if kind == 0x24:  # $ bulk string
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + n]), pos + n + 2
    if kind == 0x3A:  # : integer
        return int(line), pos
    if kind == 0x2A:  # * array
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = parse_reply(buf, pos)
            items.append(item)
        return items, pos
    if kind == 0x2B:  # + simple string
        return line, pos
    if kind == 0x2D:  # - error
        return RespError(line.decode(errors="replace")), pos
    raise RespConnectionError(f"unexpected reply type {chr(kind)!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.out: list[bytes] = []
        self.buf = bytearray()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport

    def send(self, command: bytes) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = self.loop.create_future()
        if self.closed:
            fut.set_exception(RespConnectionError("connection closed"))
            return fut
        if not self.out:
            self.loop.call_soon(self._flush)  # everything sent until then leaves in one write
        self.out.append(command)
        self.waiters.append(fut)
        return fut

    def _flush(self) -> None:
        if self.out and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        pos = 0
        try:
            while self.waiters:
                value, pos = parse_reply(self.buf, pos)
                fut = self.waiters.popleft()
                if fut.done():  # its caller gave up; the connection is being closed anyway
                    continue
                if isinstance(value, RespError):
                    fut.set_exception(value)
                else:
                    fut.set_result(value)
        except _Incomplete:
            pass
        except (RespConnectionError, ValueError) as exc:
            self.fail(RespConnectionError(f"bad reply: {exc}"))
            return
        del self.buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RespConnectionError(f"connection lost: {exc!r}" if exc else "connection closed"))

    def fail(self, exc: Exception) -> None:
        self.closed = True
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class LeanRedis:
    """Commands over one auto-pipelined connection, opened on first use and again after a failure."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(url)
        self.url = url
        self.timeout = timeout
        self.unix_path = parts.path if parts.scheme == "unix" else ""
        self.host, self.port = parts.hostname or "localhost", parts.port or 6379
        self.password = unquote(parts.password) if parts.password else ""
        db = parse_qs(parts.query).get("db", [""])[0] or (parts.path.strip("/") if parts.scheme != "unix" else "")
        self.db = int(db or 0)
        if parts.scheme not in ("redis", "unix"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (redis:// or unix://)")
        self.proto: _Protocol | None = None
        self.connecting = asyncio.Lock()

    async def _connection(self) -> _Protocol:
        proto = self.proto
        if proto is not None and not proto.closed:
            return proto
        async with self.connecting:
            if self.proto is None or self.proto.closed:
                self.proto = await self._open()
            return self.proto

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            if self.unix_path:
                _, proto = await asyncio.wait_for(loop.create_unix_connection(_Protocol, self.unix_path), self.timeout)
            else:
                _, proto = await asyncio.wait_for(loop.create_connection(_Protocol, self.host, self.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise RespConnectionError(f"connect: {type(exc).__name__}: {exc}") from exc
        setup = []
        if self.password:
            setup.append(proto.send(encode_command(("AUTH", self.password))))
        if self.db:
            setup.append(proto.send(encode_command(("SELECT", self.db))))
        if setup:
            await asyncio.wait_for(asyncio.gather(*setup), self.timeout)
        return proto

    async def execute(self, *args: Any) -> Any:
        proto = await self._connection()
        fut = proto.send(encode_command(args))
        timer = proto.loop.call_later(self.timeout, _expire, proto, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    async def close(self) -> None:
        if self.proto is not None:
            self.proto.fail(RespConnectionError("client closed"))
            self.proto = None


def _expire(proto: _Protocol, fut: asyncio.Future[Any]) -> None:
    """A reply overdue: replies come in order, so every later one is stuck too; drop the connection."""
    if not fut.done():
        proto.fail(RespConnectionError("no reply within the timeout"))


def lean_client(url: str) -> LeanRedis:
    """The lean client of this process and event loop for `url` (a connection belongs to one loop)."""
    return loop_local(("resp", url), lambda: LeanRedis(url))
