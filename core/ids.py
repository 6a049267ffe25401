"""Unique ids without a system call per id: a random process prefix plus a counter.

Under granian a uuid4 per request cost 20–30 µs (os.urandom releases the GIL and wakes the server's threads;
`make bench`), so hot paths use these. They are unique, not secret: never use them as tokens."""

from __future__ import annotations

import itertools
import secrets

_PREFIX = secrets.token_hex(8)
_counter = itertools.count(1)


def new_id() -> str:
    """32 hex characters, unique across processes and replicas."""
    return f"{_PREFIX}{next(_counter):016x}"
