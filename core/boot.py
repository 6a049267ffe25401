"""Starting a process: embedded databases when no URL is set, migrations and seed, the ASGI server of choice.
Shared by the `szt` command, the e-seal command, tests and benchmarks."""

from __future__ import annotations

from core.embedded import EmbeddedServices
from core.settings import Settings, load_settings


def with_embedded(settings: Settings) -> tuple[Settings, EmbeddedServices]:
    embedded = EmbeddedServices(settings.var_path)
    db, redis = embedded.start(settings.database_url, settings.redis_url)
    return load_settings(database_url=db, redis_url=redis), embedded


async def prepare(settings: Settings, *, seed: bool = True) -> None:
    from core.db import create_pool
    from core.migrate import migrate
    from core.resources import Resources
    from core.seed import seed_all

    pool = await create_pool(settings.database_url, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn)
    await pool.close()
    if seed:
        res = await Resources.open(settings)
        try:
            await seed_all(res)
        finally:
            await res.close()


def granian(target: str, host: str, port: int, workers: int = 1, loop: str = "uvloop") -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_enabled=True,
        log_access=False,
        backlog=2048,
        loop=Loops(loop),
    ).serve()


def uvicorn(target: str, host: str, port: int) -> None:
    import uvicorn as server

    server.run(target, host=host, port=port, factory=True, access_log=False, log_level="warning")


def serve_target(target: str, settings: Settings, port: int) -> None:
    if settings.server == "uvicorn":
        uvicorn(target, settings.host, port)
    else:
        granian(target, settings.host, port, settings.workers, settings.server_loop)
