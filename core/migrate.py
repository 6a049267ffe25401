"""Applies each package's ordered `migrations/NNN_name.sql` into a schema of the package's name.

Safe to run from several replicas at once: a transaction-level advisory lock serialises runners, and each file
is applied in its own transaction together with its row in `core.schema_migrations`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from core.db import Connection

log = logging.getLogger("szt.migrate")

# Order matters: later packages may reference earlier schemas.
PACKAGES: tuple[str, ...] = ("core", "orgs", "identity", "catalog", "affairs", "push", "eseal")
_LOCK_KEY = 0x5A7_2024
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    package: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(packages: tuple[str, ...] = PACKAGES) -> list[Migration]:
    found: list[Migration] = []
    for package in packages:
        module = importlib.import_module(package)
        folder = Path(module.__file__ or "").parent / "migrations"
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            m = _NAME.match(path.name)
            if m:
                found.append(Migration(package, int(m.group(1)), path.name, path.read_text("utf-8")))
    return found


async def migrate(conn: Connection, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Apply what is missing; returns the names applied. Fails if an applied file was edited."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS core;
            CREATE TABLE IF NOT EXISTS core.schema_migrations (
                package text NOT NULL,
                version int NOT NULL,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (package, version)
            )
            """
        )
        rows = await conn.fetch("SELECT package, version, checksum FROM core.schema_migrations")
        done = {(r["package"], r["version"]): r["checksum"] for r in rows}
        for mig in discover(packages):
            key = (mig.package, mig.version)
            if key in done:
                if done[key] != mig.checksum:
                    raise RuntimeError(f"applied migration {mig.package}/{mig.name} was edited; add a new one")
                continue
            await apply(conn, mig)
            applied_now.append(f"{mig.package}/{mig.name}")
            log.info("migration applied", extra={"migration": f"{mig.package}/{mig.name}"})
    return applied_now


async def apply(conn: Connection, mig: Migration) -> None:
    """One migration in its own transaction (a savepoint inside the runner's) with its row in
    `core.schema_migrations`."""
    async with conn.transaction():
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{mig.package}"')
        await conn.execute(f'SET LOCAL search_path TO "{mig.package}", public')
        await conn.execute(mig.sql)
        await conn.execute(
            "INSERT INTO core.schema_migrations (package, version, name, checksum) VALUES ($1,$2,$3,$4)",
            mig.package,
            mig.version,
            mig.name,
            mig.checksum,
        )
