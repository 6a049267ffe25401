"""Trusted proxies (core.forwarded): a second server on loopback started with SZT_TRUSTED_PROXIES=127.0.0.1 plays
"behind a load balancer"; the test stack's own server (no trusted proxy) plays "reached directly"."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from core.forwarded import client_address, is_https, secure_cookies
from core.resources import Resources
from core.settings import Settings
from tests.admin_helpers import admin_password
from tests.harness import ROOT, Stack, free_port, inside_one_window, wait_http


@pytest.fixture(scope="module")
def proxied(stack: Stack, var_dir: Path) -> Iterator[str]:
    port = free_port()
    log = var_dir / "server-proxied.log"
    env = {**stack.env, "SZT_PORT": str(port), "SZT_TRUSTED_PROXIES": "127.0.0.1/32, ::1", "SZT_LOG_LEVEL": "DEBUG"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "szt.cli", "serve", "bff", "admin", "--no-migrate", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def some_ip() -> str:
    return f"203.0.113.{random.randrange(1, 255)}"


def window() -> int:
    return int(time.time()) // 60


async def test_per_address_limits_count_the_forwarded_client(proxied: str, res: Resources) -> None:
    # Today: behind a balancer every citizen shares the balancer's bucket (challenges: 60 a minute).
    a, b = "198.51.100.7", "198.51.100.8"
    await res.redis.delete(f"rl:challenges-ip:{a}:{window()}", f"rl:challenges-ip:{b}:{window()}")
    inside_one_window(60)
    with httpx.Client(base_url=proxied, timeout=15) as c:
        codes = [c.post("/bff/v1/challenges", headers={"X-Forwarded-For": a}).status_code for _ in range(61)]
        assert codes[:60] == [201] * 60 and codes[60] == 429, codes
        assert c.post("/bff/v1/challenges", headers={"X-Forwarded-For": b}).status_code == 201
        # Forwarded (RFC 7239), the client first and our own trusted proxy after it.
        fwd = some_ip()
        assert c.post("/bff/v1/challenges", headers={"Forwarded": f"for={fwd}, for=127.0.0.1"}).status_code == 201
        assert await res.redis.get(f"rl:challenges-ip:{fwd}:{window()}") is not None
        # A client-supplied entry left of the real one is not believed: the rightmost untrusted address counts.
        real = some_ip()
        r = c.post("/bff/v1/challenges", headers={"X-Forwarded-For": f"{a}, {real}"})
        assert r.status_code == 201
        assert await res.redis.get(f"rl:challenges-ip:{real}:{window()}") is not None


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(http: httpx.Client, res: Resources) -> None:
    spoofed = some_ip()
    inside_one_window(60, need=5)
    r = http.post("/bff/v1/challenges", headers={"X-Forwarded-For": spoofed, "Forwarded": f"for={spoofed}"})
    assert r.status_code in (201, 429)
    assert await res.redis.get(f"rl:challenges-ip:{spoofed}:{window()}") is None
    assert await res.redis.get(f"rl:challenges-ip:127.0.0.1:{window()}") is not None


def test_request_log_names_the_forwarded_client(proxied: str, var_dir: Path) -> None:
    ip = some_ip()
    with httpx.Client(base_url=proxied, timeout=15) as c:
        assert c.get("/bff/healthz", headers={"X-Forwarded-For": ip}).status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [
            msgspec.json.decode(x) for x in (var_dir / "server-proxied.log").read_text().splitlines() if x[:1] == "{"
        ]
        if any(d.get("path") == "/bff/healthz" and d.get("client") == ip for d in lines):
            return
        time.sleep(0.1)
    raise AssertionError("no access-log line with the forwarded client")


def _login(base: str, password: str, headers: dict[str, str]) -> httpx.Response:
    """The console's sign-in form, posted with its CSRF token and the `szt_login` cookie it goes with (sent by hand:
    httpx keeps a Secure cookie to itself over http)."""
    with httpx.Client(base_url=base, timeout=15) as c:
        page = c.get("/admin/login", headers=headers)
        m = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert m is not None, page.text[:300]
        cookie = next(v for v in page.headers.get_list("set-cookie") if v.startswith("szt_login=")).split(";")[0]
        data = {"username": "admin", "password": password, "csrf": m.group(1)}
        return c.post("/admin/login", data=data, headers={**headers, "Cookie": cookie})


def test_console_behind_a_tls_proxy_gets_secure_cookies_and_passes_the_origin_check(
    proxied: str, var_dir: Path
) -> None:
    # Today: the Origin check refuses the console's own form behind a TLS-terminating proxy; no Secure flag.
    host = proxied.removeprefix("http://")
    r = _login(proxied, admin_password(var_dir), {"X-Forwarded-Proto": "https", "Origin": f"https://{host}"})
    assert r.status_code == 303, r.text[:300]
    cookie = r.headers["set-cookie"]
    assert "szt_admin=" in cookie and "secure" in cookie.lower()
    assert r.headers["cache-control"] == "no-store"


def test_a_direct_client_cannot_claim_https(base_url: str, var_dir: Path) -> None:
    host = base_url.removeprefix("http://")
    r = _login(base_url, admin_password(var_dir), {"X-Forwarded-Proto": "https", "Origin": f"https://{host}"})
    assert r.status_code == 403
    plain = _login(base_url, admin_password(var_dir), {"X-Forwarded-Proto": "https"})
    assert plain.status_code == 303
    assert "secure" not in plain.headers["set-cookie"].lower()  # public URL http, no trusted proxy


def _scope(peer: str, *headers: tuple[str, str], scheme: str = "http") -> dict[str, object]:
    return {
        "type": "http",
        "scheme": scheme,
        "client": (peer, 5555),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


def test_helpers_for_the_console() -> None:
    trusted = Settings(trusted_proxies="10.0.0.0/8,2001:db8::/32")
    s = _scope("10.1.2.3", ("Forwarded", 'for="[2001:db9:cafe::17]:4711";proto=https, for=10.9.9.9'))
    assert client_address(s, trusted) == "2001:db9:cafe::17" and is_https(s, trusted)
    s = _scope("10.1.2.3", ("X-Forwarded-For", "192.0.2.60, 10.4.4.4"), ("X-Forwarded-Proto", "https"))
    assert client_address(s, trusted) == "192.0.2.60" and is_https(s, trusted)
    assert client_address(s, Settings()) == "10.1.2.3" and not is_https(s, Settings())
    stranger = _scope("192.0.2.1", ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Proto", "https"))
    assert client_address(stranger, trusted) == "192.0.2.1" and not is_https(stranger, trusted)
    assert is_https(_scope("192.0.2.1", scheme="https"), Settings())
    assert secure_cookies(_scope("192.0.2.1"), Settings(public_url="https://szt.example.cn"))
    assert not secure_cookies(_scope("192.0.2.1"), Settings(public_url="http://127.0.0.1:8000"))
