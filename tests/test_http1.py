"""core.http1: keep-alive reuse, chunked answers, and a connection the server closed while idle."""

from __future__ import annotations

import asyncio

from core.http1 import KeepAliveClient, keepalive_client


async def _serve(answers: list[bytes], close_after_each: bool) -> tuple[asyncio.Server, list[bytes], list[int]]:
    """A tiny HTTP/1.1 server giving `answers` in turn; records request heads and counts connections."""
    heads: list[bytes] = []
    connections = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                heads.append(head)
                writer.write(answers.pop(0))
                await writer.drain()
                if close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, heads, connections


async def test_reuses_one_connection_and_reads_chunked_answers() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    ]
    server, heads, connections = await _serve(answers, close_after_each=False)
    port = server.sockets[0].getsockname()[1]
    client = KeepAliveClient(f"http://127.0.0.1:{port}")
    try:
        first = await client.request("POST", "/v1/x", b"body", lambda: {"X-A": "1"})
        second = await client.request("GET", "/v1/y", b"", dict)
        third = await client.request("GET", "/v1/z", b"", dict)
    finally:
        await client.aclose()
        server.close()
    assert (first.status_code, first.content) == (200, b"hello")
    assert (second.status_code, second.content) == (201, b"abcde")
    assert (third.status_code, third.content) == (404, b"")
    assert connections[0] == 1
    assert (
        heads[0].startswith(b"POST /v1/x HTTP/1.1\r\n") and b"X-A: 1" in heads[0] and b"Content-Length: 4" in heads[0]
    )


async def test_a_connection_closed_while_idle_is_retried_with_fresh_headers() -> None:
    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"]
    server, heads, connections = await _serve(answers, close_after_each=True)
    port = server.sockets[0].getsockname()[1]
    client = KeepAliveClient(f"http://127.0.0.1:{port}")
    calls = iter(range(10))
    try:
        assert (await client.request("GET", "/", b"", lambda: {"X-Nonce": str(next(calls))})).content == b"a"
        await asyncio.sleep(0.05)  # the server has closed the idle connection by now
        assert (await client.request("GET", "/", b"", lambda: {"X-Nonce": str(next(calls))})).content == b"b"
    finally:
        await client.aclose()
        server.close()
    assert connections[0] == 2
    # The request that hit the dead connection was signed anew (a one-time nonce is never sent twice).
    assert b"X-Nonce: 0" in heads[0] and b"X-Nonce: 0" not in heads[1]


def test_one_keepalive_client_per_base_url_and_event_loop() -> None:
    async def get(base: str) -> KeepAliveClient:
        return keepalive_client(base, timeout=5.0)

    async def same_loop() -> tuple[KeepAliveClient, KeepAliveClient, KeepAliveClient]:
        return await get("http://127.0.0.1:1/a"), await get("http://127.0.0.1:1/a"), await get("http://127.0.0.1:1/b")

    first, again, other = asyncio.run(same_loop())
    assert first is again and first is not other
    assert asyncio.run(get("http://127.0.0.1:1/a")) is not first  # connections belong to the loop that opened them
