"""`/healthz` (the process is alive) and `/readyz` (its database, Redis and external parties answer)."""

from __future__ import annotations

import asyncio

import httpx
import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from core.resources import Resources


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/healthz", summary="Liveness", tags=["health"], sync_to_thread=False, include_in_schema=True)
def healthz() -> Health:
    return Health(status="ok")


async def _check(name: str, coro: object) -> tuple[str, str]:
    try:
        await asyncio.wait_for(coro, timeout=2.0)  # type: ignore[arg-type]
        return name, "ok"
    except Exception as exc:  # any failure of a dependency means "not ready", named in the answer
        return name, f"fail: {type(exc).__name__}"


async def _http_ok(http: httpx.AsyncClient, url: str) -> None:
    resp = await http.get(url, timeout=2.0)
    resp.raise_for_status()


@get(
    "/readyz",
    summary="Readiness: database, Redis and required external parties",
    tags=["health"],
    responses={503: ResponseSpec(data_container=Readiness, description="A dependency is not ready")},
)
async def readyz(state: State) -> Response[Readiness]:
    res: Resources | None = state.resources
    externals: dict[str, str] = state.externals
    checks = []
    if res is not None:
        checks += [_check("postgres", res.db.fetchval("SELECT 1")), _check("redis", res.redis.ping())]
        checks += [_check(name, _http_ok(res.http, url)) for name, url in externals.items()]
    results = dict(await asyncio.gather(*checks))
    ready = all(v == "ok" for v in results.values())
    return Response(
        Readiness(status="ready" if ready else "unready", checks=results), status_code=200 if ready else 503
    )
