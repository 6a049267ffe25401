"""The control endpoints every push-vendor simulator shares: queue failures (`POST /_sim/fail`) and count what each
device shows (`POST /_sim/counts`).

No `from __future__ import annotations` here: the handlers' body types are the caller's, so the annotations must be
evaluated when the handlers are made, not looked up later by name."""

import threading
from collections.abc import Mapping, Sized
from typing import Annotated, Any, Protocol

import msgspec
from litestar import post
from litestar.params import JSONBody
from msgspec import Meta

from simulators.faults import FailureQueue


class Ok(msgspec.Struct):
    ok: bool = True


class CountRequest(msgspec.Struct):
    tokens: Annotated[list[str], Meta(max_length=20_000)]


class Counts(msgspec.Struct):
    counts: dict[str, int]  # token -> notifications the device shows
    total: int
    collapsed: int


class DeviceState(Protocol):
    @property
    def lock(self) -> threading.Lock: ...
    @property
    def failures(self) -> FailureQueue[Any]: ...
    @property
    def received(self) -> Mapping[str, Sized]: ...
    @property
    def total(self) -> int: ...
    @property
    def collapsed(self) -> int: ...


def device_controls(state: DeviceState, fail_type: type[msgspec.Struct]) -> list[Any]:
    """`fail` (the next `count` sends fail with `status`, 0: succeed, after `delay_ms`; count 0 clears all) and
    `counts` (tests count thousands of devices at once)."""

    @post("/_sim/fail", status_code=200, include_in_schema=False, sync_to_thread=False)
    def fail(data: JSONBody[fail_type]) -> Ok:  # type: ignore[valid-type]
        """Control: the next `count` sends fail with `status` (0: succeed) after `delay_ms`; count 0 clears all."""
        state.failures.control(data)
        return Ok()

    @post("/_sim/counts", status_code=200, include_in_schema=False, sync_to_thread=False)
    def counts(data: JSONBody[CountRequest]) -> Counts:
        """Control: how many notifications each token's device shows."""
        with state.lock:
            got = {t: len(state.received.get(t, ())) for t in data.tokens}
            return Counts(counts=got, total=state.total, collapsed=state.collapsed)

    return [fail, counts]
