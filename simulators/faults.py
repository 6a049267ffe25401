"""Injected failures shared by the provider simulators: the next `count` calls fail as the test asked."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

import msgspec

F = TypeVar("F", bound=msgspec.Struct)


class FailureQueue(Generic[F]):
    """Requests queued by `POST /<sim>/_sim/fail`; each served call takes one unit of the head request."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.items: deque[F] = deque()

    def take(self) -> F | None:
        with self.lock:
            if not self.items:
                return None
            head = self.items[0]
            count: int = head.count  # type: ignore[attr-defined]
            if count <= 1:
                self.items.popleft()
            else:
                self.items[0] = msgspec.structs.replace(head, count=count - 1)
            return head

    def control(self, request: F) -> None:
        """A request with count 0 clears every queued failure; any other is queued."""
        with self.lock:
            if request.count == 0:  # type: ignore[attr-defined]
                self.items.clear()
            else:
                self.items.append(request)
