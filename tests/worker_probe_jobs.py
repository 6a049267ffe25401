"""A probe job for tests/test_push_worker.py, loaded by `szt worker` through SZT_WORKER_EXTRA_JOBS."""

from __future__ import annotations

import os
import time

from core.resources import Resources
from core.worker import current_due, scheduled, worker_id

KEY = os.environ.get("SZT_PROBE_KEY", "test:probe")


@scheduled("test.probe", seconds=1)
async def probe(res: Resources) -> None:
    await res.redis.rpush(KEY, f"{time.time():.3f} {worker_id()} {current_due.get().timestamp():.0f}")
