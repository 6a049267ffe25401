"""`szt openapi export`: write every app's OpenAPI document into `openapi/`, or check they match the code."""

from __future__ import annotations

from pathlib import Path

import msgspec

from core.server import APPS, load_factory
from core.settings import Settings


def documents() -> dict[str, bytes]:
    from simulators.app import SIMULATORS
    from simulators.signer import create_app as create_signer_app

    # Fixed settings so the documents do not depend on the machine they were exported on.
    settings = Settings()
    docs: dict[str, bytes] = {}
    apps = {mount: load_factory(spec)(settings) for mount, spec in APPS.items()}
    apps |= {f"sim-{mount}": load_factory(spec)(settings) for mount, (spec, _) in SIMULATORS.items()}
    apps["sim-signer"] = create_signer_app(settings)
    for name, app in apps.items():
        doc = app.openapi_schema.to_schema()
        docs[f"{name}.json"] = msgspec.json.format(msgspec.json.encode(doc, order="sorted"), indent=2) + b"\n"
    return docs


def export(folder: Path, *, check: bool = False) -> list[str]:
    """Returns the files that differ (check) or were written."""
    changed: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in documents().items():
        path = folder / name
        if path.exists() and path.read_bytes() == body:
            continue
        changed.append(str(path))
        if not check:
            path.write_bytes(body)
    return changed
