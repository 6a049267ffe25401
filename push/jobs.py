"""Push work of `szt worker`: one consumer per stream, the delayed-entry mover and the fan-out sweeper."""

from __future__ import annotations

import asyncio

from core.resources import Resources
from core.worker import CONSUMERS, scheduled
from push import delivery


def concurrency(res: Resources) -> int:
    """Concurrent consumers per provider channel in each worker: while one waits on PostgreSQL or the provider, the
    others send (each is a consumer of its own in the group, so XAUTOCLAIM and the send log work as before)."""
    return max(1, res.settings.push_consumers)


def _consumer(channel: str) -> delivery.Job:
    async def run(res: Resources) -> None:
        n = concurrency(res)
        if channel == delivery.FANOUT or n == 1:
            await delivery.run_consumer(res, channel)
            return
        await asyncio.gather(*(delivery.run_consumer(res, channel, suffix=f":{i}") for i in range(n)))

    return run


for _channel in (delivery.FANOUT, *delivery.PROVIDER_CHANNELS):
    CONSUMERS.append((f"push-{_channel}", _consumer(_channel)))
CONSUMERS.append(("push-queue-depth", delivery.watch_queues))


@scheduled("push-delayed", seconds=1)
async def move_delayed(res: Resources) -> None:
    """Retries and scheduled sends whose time has come go back into their streams."""
    await delivery.move_due(res)


@scheduled("push-sweep", seconds=60)
async def sweep(res: Resources) -> None:
    """Due messages whose fan-out entry was lost are queued again (fan-out is idempotent)."""
    await delivery.sweep_unfanned(res)


@scheduled("push-stale-sending", every=lambda s: s.push_recover_every)
async def stale_sending(res: Resources) -> None:
    """Pairs left 'sending' by a worker that died mid-call go back to their stream (re-sent idempotently)."""
    await delivery.recover_stale_sending(res)
