"""Driving push delivery from a test process."""

from __future__ import annotations

from collections.abc import Sequence

from core.resources import Resources
from push import delivery


async def drain(res: Resources, channels: Sequence[str] | None = None, consumer: str = "test-consumer") -> None:
    """Run the consumers of `channels` (every channel by default) in this process until their streams are empty.
    The streams are shared with every other test of the run (other files' broadcasts of thousands included), so the
    bound is on rounds of reading, set far above what they queue — never a fixed time."""
    await delivery.ensure_groups(res)
    names = tuple(channels) if channels is not None else (delivery.FANOUT, *delivery.PROVIDER_CHANNELS)
    for _ in range(2000):
        n = 0
        for channel in names:
            n += await delivery.read_batch(res, channel, consumer, block_ms=None)
        if n == 0:
            return
    raise AssertionError("streams did not drain")
