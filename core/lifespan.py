"""Drives the ASGI lifespan protocol of inner apps, so one server can start and stop several Litestar apps."""

from __future__ import annotations

import asyncio
from typing import Any

from core.observe import ASGIApp, Message


class LifespanDriver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[Any] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        await self.app(scope, self._to_app.get, self._from_app.put)

    async def _step(self, event: str) -> None:
        await self._to_app.put({"type": f"lifespan.{event}"})
        reply = await self._from_app.get()
        if reply["type"] == f"lifespan.{event}.failed":
            raise RuntimeError(f"lifespan {event} failed: {reply.get('message', '')}")

    async def startup(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._step("startup")

    async def shutdown(self) -> None:
        if self._task is None:
            return
        await self._step("shutdown")
        await self._task
