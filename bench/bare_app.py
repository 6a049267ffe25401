"""The peer for the HTTP scenarios: a minimal Litestar app with one `GET /healthz`, nothing else.

`python -m bench.bare_app PORT` serves it with granian exactly as `szt serve` serves the real server
(`core.boot.granian`: same interface, worker count, backlog and log flags).
"""

from __future__ import annotations

import sys

import msgspec
from litestar import Litestar, get


class Health(msgspec.Struct):
    status: str


@get("/healthz", sync_to_thread=False)
def healthz() -> Health:
    return Health(status="ok")


def create_app() -> Litestar:
    return Litestar(route_handlers=[healthz], debug=False)


def main() -> None:
    from core.boot import granian

    granian("bench.bare_app:create_app", "127.0.0.1", int(sys.argv[1]), workers=1)


if __name__ == "__main__":
    main()
