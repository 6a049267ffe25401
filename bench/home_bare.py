"""The peer of the home scenario: a bare Litestar app whose `GET /bff/v1/home` returns a cached body of the same
bytes as the real home (read once from a file at start), served by granian with the flags `szt serve` uses.

`python -m bench.home_bare PORT BODY_FILE`
"""

from __future__ import annotations

import sys
from pathlib import Path

from litestar import Litestar, Response, get

from core.settings import export, load_settings


def create_app() -> Litestar:
    body = Path(load_settings().bench_home_body).read_bytes()
    etag = '"bench"'

    @get("/bff/v1/home", sync_to_thread=False)
    def home() -> Response[bytes]:
        return Response(body, media_type="application/json", headers={"ETag": etag, "Cache-Control": "private"})

    @get("/healthz", sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[home, healthz], debug=False)


def main() -> None:
    from core.boot import granian

    export(bench_home_body=sys.argv[2])  # for the app factory in granian's worker process
    granian("bench.home_bare:create_app", "127.0.0.1", int(sys.argv[1]), workers=1)


if __name__ == "__main__":
    main()
