"""core.resp, the lean auto-pipelined Redis client of the OAuth fast layer, against the real Redis of the test run:
concurrent commands share writes and get their own replies, error replies do not break the connection, scripts
load on NOSCRIPT, and a silent or dropped server fails the waiting commands and is replaced on the next one."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import uvloop

from core.redis_client import LuaScript
from core.resources import Resources
from core.resp import LeanRedis, RespConnectionError, RespError, _Incomplete, encode_command, parse_reply


def test_encoding_and_parsing() -> None:
    assert encode_command(("SET", "k", b"\x00v", 5)) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00v\r\n$1\r\n5\r\n"
    reply = b"*4\r\n:1\r\n$-1\r\n$3\r\nabc\r\n*1\r\n+OK\r\n-ERR x\r\n"
    value, pos = parse_reply(reply, 0)
    assert value == [1, None, b"abc", [b"OK"]]
    error, end = parse_reply(reply, pos)
    assert isinstance(error, RespError) and str(error) == "ERR x" and end == len(reply)
    for cut in range(1, len(reply) - 9):  # any prefix of a reply is incomplete, never a wrong value
        with pytest.raises(_Incomplete):
            parse_reply(reply[:cut], 0)


async def test_commands_pipelined_in_order_against_redis(res: Resources) -> None:
    client = LeanRedis(res.settings.redis_url)
    key = f"resp-test:{secrets.token_hex(4)}"
    try:
        counts = await asyncio.gather(*(client.execute("INCR", key) for _ in range(300)))
        assert counts == list(range(1, 301))  # each caller got its own reply, in the order sent
        assert await client.execute("GET", key) == b"300"
        assert await client.execute("GET", key + ":missing") is None
        with pytest.raises(RespError, match="WRONGTYPE"):
            await client.execute("LPUSH", key, "x")
        assert await client.execute("DEL", key) == 1  # the connection survived the error reply
        script = LuaScript(f"-- {secrets.token_hex(8)}\nreturn {{KEYS[1], tonumber(ARGV[1]) + 1, false}}")
        assert await script(client, ["k1"], [41]) == [b"k1", 42, None]  # first call: NOSCRIPT, then EVAL
        assert await script(client, ["k2"], [1]) == [b"k2", 2, None]  # by its SHA1 now
        assert await res.redis.get(key) is None  # both clients see the same Redis
    finally:
        await client.close()


def test_works_on_uvloop_as_the_servers_run(res: Resources) -> None:
    async def run() -> list[Any]:
        client = LeanRedis(res.settings.redis_url)
        try:
            return list(await asyncio.gather(*(client.execute("PING") for _ in range(50))))
        finally:
            await client.close()

    assert uvloop.run(run()) == [b"PONG"] * 50


async def test_a_silent_or_dropped_server_fails_waiters_and_the_next_command_reconnects() -> None:
    connections: list[asyncio.StreamWriter] = []
    answer = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while data := await reader.read(4096):
            if answer.is_set():
                writer.write(b"+PONG\r\n" * data.count(b"PING"))

    srv = await asyncio.start_server(server, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = LeanRedis(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        waiting = [asyncio.ensure_future(client.execute("PING")) for _ in range(3)]
        for w in waiting:  # no reply: all three fail, not just the first
            with pytest.raises(RespConnectionError):
                await w
        answer.set()
        assert await client.execute("PING") == b"PONG"  # on a new connection
        assert len(connections) == 2
        connections[-1].close()
        await asyncio.sleep(0.05)
        assert await client.execute("PING") == b"PONG"
        assert len(connections) == 3
    finally:
        await client.close()
        srv.close()
