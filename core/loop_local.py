"""One object per process and running event loop, made on first use: clients whose connections belong to the loop
that opened them (a test run or a CLI command may run several loops in one process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_held: dict[Hashable, tuple[asyncio.AbstractEventLoop, Any]] = {}


def loop_local(key: Hashable, make: Callable[[], T]) -> T:
    """The object kept under `key` for the running loop; `make()` makes it when there is none for this loop."""
    loop = asyncio.get_running_loop()
    held = _held.get(key)
    if held is None or held[0] is not loop:
        held = _held[key] = (loop, make())
    obj: T = held[1]
    return obj
