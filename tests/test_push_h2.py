"""The lean HTTP/2 client of APNs (push.h2client): many concurrent streams on one connection to the simulator, and
for each failed request whether it may have reached the server (the send log's re-send rules depend on it)."""

from __future__ import annotations

import asyncio
import socket
import uuid

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from core.resources import Resources
from push import delivery
from push.h2client import H2Connection, H2Error, NotSent, header
from push.providers import Notification, apns_id_for
from tests.test_push import apns_token


def _note() -> Notification:
    return Notification(
        message_id=str(uuid.uuid4()),
        title="通知",
        body="并发流测试",
        priority="high",
        expires_at=0,
        ttl=0,
        collapse_key=None,
        template="broadcast",
        params={},
    )


async def test_a_batch_beyond_the_stream_limit_is_delivered_once_each(res: Resources, sim_url: str) -> None:
    apns = delivery.providers(res).apns
    note = _note()
    tokens = [apns_token() for _ in range(700)]  # more than a server's usual limit of concurrent streams
    items = [(t, note, apns_id_for(note.message_id, str(i))) for i, t in enumerate(tokens)]
    items.append(("not-a-token", note, apns_id_for(note.message_id, "bad")))
    outcomes = await apns.send_many(items)
    assert [o.kind for o in outcomes[:-1]] == ["delivered"] * len(tokens)
    assert [o.provider_id for o in outcomes[:-1]] == [a for _, _, a in items[:-1]]  # APNs echoes our apns-id
    assert outcomes[-1].kind == "invalid" and outcomes[-1].reason == "BadDeviceToken"
    counts = httpx.post(f"{sim_url}/apns/_sim/counts", json={"tokens": tokens}).json()["counts"]
    assert set(counts.values()) == {1}
    assert apns.http_version == "HTTP/2"


async def test_no_connection_means_certainly_not_sent(res: Resources) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(NotSent):
        await H2Connection.open(f"http://127.0.0.1:{port}/apns")


async def test_a_connection_lost_after_sending_means_perhaps_sent() -> None:
    """The server reads the request, then drops the connection without answering: the outcome is unknown."""
    got = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        server.initiate_connection()
        writer.write(server.data_to_send())
        while not got.is_set():
            data = await reader.read(65536)
            if not data:
                break
            if any(isinstance(e, h2.events.RequestReceived) for e in server.receive_data(data)):
                got.set()
            writer.write(server.data_to_send())
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await H2Connection.open(f"http://127.0.0.1:{port}")
        headers = [
            header(":method", "POST"),
            header(":scheme", "http"),
            header(":authority", conn.authority),
            header(":path", "/3/device/x"),
        ]
        (fut,) = conn.request_many([(headers, b"{}")])
        with pytest.raises(H2Error) as caught:
            await asyncio.wait_for(fut, 5)
        assert not isinstance(caught.value, NotSent) and got.is_set()
        assert conn.closed
        (late,) = conn.request_many([(headers, b"{}")])  # a closed connection sends nothing more
        with pytest.raises(NotSent):
            await late
    finally:
        server.close()
        await server.wait_closed()
