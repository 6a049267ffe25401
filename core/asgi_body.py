"""Reading a request body in a raw ASGI layer and handing it on untouched: a layer that looks at the body before
deciding (identity's OAuth fast path, core.idempotency) reads it with `read_body` and, when the app behind it
answers after all, gives it a `replay` receive() that returns what was read and then hands over to the server's."""

from __future__ import annotations

from typing import Any

from core.observe import Receive


async def read_body(receive: Receive, limit: int | None = None) -> tuple[bytes, bool]:
    """The body read so far and whether the server has more. With a `limit`, reading stops as soon as more than
    `limit` bytes were read (the app behind then applies its own limits to the whole body); without one, the whole
    body is read. A disconnect ends the body where it is."""
    message = await receive()
    if message["type"] != "http.request":
        return b"", False
    body: bytes = message.get("body", b"")
    more = bool(message.get("more_body", False))
    if not more:
        return body, False  # the usual case, one message: no list, no join
    chunks = [body]
    size = len(body)
    while more and (limit is None or size <= limit):
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
    return b"".join(chunks), more


def replay(body: bytes, receive: Receive, more: bool = False) -> Receive:
    """A receive() that first gives back the `body` already read (with `more`: whether the server still has more
    of it), then hands over to the server's own receive()."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed
