"""One embedded PostgreSQL and Redis per test run, migrated and seeded; the servers over real HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from core.embedded import EmbeddedServices
from core.resources import Resources
from core.settings import Settings, load_settings
from tests.harness import Stack


@pytest.fixture(scope="session")
def var_dir() -> Iterator[Path]:
    # A short path: PostgreSQL and Redis put Unix sockets in here.
    path = Path(tempfile.mkdtemp(prefix="szt-"))
    yield path
    if not os.environ.get("SZT_KEEP_TEST_VAR"):  # keep server logs for a post-mortem when asked
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded(var_dir: Path) -> Iterator[EmbeddedServices]:
    services = EmbeddedServices(var_dir)
    os.environ["SZT_VAR_DIR"] = str(var_dir)
    services.start(os.environ.get("TEST_DATABASE_URL", ""), os.environ.get("TEST_REDIS_URL", ""))
    yield services
    services.stop()


@pytest.fixture(scope="session")
def settings(embedded: EmbeddedServices) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def unstarted_stack(embedded: EmbeddedServices, var_dir: Path) -> Stack:
    """Ports chosen (and put in the environment) before seeding, so seeded URLs point at the test server."""
    return Stack(var_dir)


@pytest.fixture(scope="session")
def prepared(unstarted_stack: Stack) -> Settings:
    from core.boot import prepare

    settings = load_settings()
    asyncio.run(prepare(settings))
    return settings


@pytest.fixture(scope="session")
def stack(prepared: Settings, unstarted_stack: Stack) -> Iterator[Stack]:
    unstarted_stack.start()
    yield unstarted_stack
    unstarted_stack.stop()


@pytest.fixture(scope="session")
def base_url(stack: Stack) -> str:
    return stack.base_url


@pytest.fixture(scope="session")
def sim_url(stack: Stack) -> str:
    return stack.sim_url


@pytest.fixture(scope="session")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
async def res(prepared: Settings) -> AsyncIterator[Resources]:
    resources = await Resources.open(load_settings())
    yield resources
    await resources.close()


@pytest.fixture(scope="session")
def res_settings_issuer(prepared: Settings, stack: Stack) -> str:
    return f"{stack.base_url}/identity"
