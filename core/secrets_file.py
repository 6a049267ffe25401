"""Secrets generated once and kept in a 0600 file under var/ (field keys, demo client secret, admin password)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The file's content; when absent, `make()` is written atomically (temp file, fsync, link), so processes
    starting together all end up with the same value and none ever reads a half-written file."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            return path.read_text(encoding="utf-8").strip()
    finally:
        os.unlink(tmp)
    return value
