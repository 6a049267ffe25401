"""The outbound-request guard (core.outbound): what it refuses, that it connects only to the address it checked,
follows redirects itself re-checking each hop, bounds time and size; and, end to end, that an app's health poll and a
back-channel logout never reach an address that is not allow-listed (a listening socket proves nothing connected)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from catalog import jobs, service
from catalog.models import Review
from core import outbound
from core.resources import Resources
from core.settings import Settings, load_settings
from tests.harness import Stack
from tests.identity_helpers import bearer, enrol, pick_citizen
from tests.oidc_helpers import Flow, get_code, make_portal, redeem
from tests.test_catalog import GAOXIN, SUZHOU, application


def guard(**over: Any) -> Settings:
    """Settings as in production (nothing private admitted) unless `over` says otherwise."""
    return load_settings({}, **over)


# ---------------------------------------------------------------- local peers


class Recorder:
    """A listening socket that never answers and counts who connected."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.connections = 0
        self.held: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self.held.append(conn)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        for c in self.held:
            c.close()
        self.sock.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


class _Peer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host", ""))
        path, _, query = self.path.partition("?")
        if path == "/redirect":
            self._answer(302, b"", {"Location": unquote(query)})
        elif path == "/loop":
            self._answer(302, b"", {"Location": "/loop"})
        elif path == "/big":
            self._answer(200, b"x" * 5000)
        elif path == "/slow":  # a byte every 0.1 s: no single read waits long, the whole answer does
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"1f4\r\n" + b"y" * 500 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._answer(200, b"ok")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[int]:
    _Peer.hosts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Peer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()
    server.server_close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Plays DNS for made-up names; other names resolve as usual."""
    table: dict[str, list[str]] = {}
    real = outbound._resolve

    async def resolve(host: str, port: int) -> list[outbound.IP]:
        if host in table:
            return [outbound._plain(outbound.ipaddress.ip_address(a)) for a in table[host]]
        return await real(host, port)

    monkeypatch.setattr(outbound, "_resolve", resolve)
    return table


# ---------------------------------------------------------------- classes of address


REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.8.9.10:9555/x", "loopback"),
    ("http://localhost:5432/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]:9200/", "loopback"),
    ("http://2130706433/", "loopback"),  # decimal
    ("http://0177.0.0.1/", "malformed-url"),  # octal dotted: httpx refuses to parse it, so do we
    ("http://017700000001/", "loopback"),  # octal
    ("http://0x7f000001/", "loopback"),  # hexadecimal
    ("http://0x7f.0.0.1/", "loopback"),  # hexadecimal
    ("http://127.1/", "loopback"),  # short form
    ("http://10.1.2.3/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://[fd12:3456::1]/", "private"),  # ULA
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("http://[2002:a00:1::1]/", "private"),  # 6to4 of 10.0.0.1
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://100.64.0.1/", "non-global"),  # carrier-grade NAT
    ("http://198.18.0.1/", "private"),  # benchmarking
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
async def test_refused_classes_of_address(url: str, reason: str) -> None:
    with pytest.raises(outbound.OutboundRefused) as caught:
        await outbound.check(guard(outbound_http=True), url)
    assert caught.value.reason == reason, caught.value


async def test_reserved_class_is_named() -> None:
    assert outbound.forbidden_class(outbound.ipaddress.ip_address("2001:db8::1")) is not None  # documentation
    assert outbound.forbidden_class(outbound.ipaddress.ip_address("8.8.8.8")) is None
    assert outbound.forbidden_class(outbound.ipaddress.ip_address("2606:4700::1111")) is None


async def test_schemes() -> None:
    production = guard()
    with pytest.raises(outbound.OutboundRefused) as caught:
        await outbound.check(production, "http://93.184.216.34/")
    assert caught.value.reason == "scheme"  # plain http only where a setting allows it
    for url in ("ftp://93.184.216.34/", "file:///etc/passwd", "gopher://93.184.216.34/", "not a url"):
        with pytest.raises(outbound.OutboundRefused):
            await outbound.check(guard(outbound_http=True), url)
    target = await outbound.check(production, "https://93.184.216.34/x")
    assert target.address == "93.184.216.34"


async def test_a_name_is_checked_by_every_address_and_pinned_to_the_first(dns: dict[str, list[str]]) -> None:
    dns["public.example"] = ["93.184.216.34", "2606:2800:220:1::1"]
    dns["split.example"] = ["93.184.216.34", "10.0.0.7"]
    target = await outbound.check(guard(), "https://public.example:8443/a?b=c")
    assert target.address == "93.184.216.34"
    assert target.host_header == "public.example:8443" and target.server_name == "public.example"
    assert str(target.pinned_url) == "https://93.184.216.34:8443/a?b=c"
    with pytest.raises(outbound.OutboundRefused) as caught:
        await outbound.check(guard(), "https://split.example/")
    assert caught.value.reason == "private"


async def test_our_own_services_are_refused(dns: dict[str, list[str]]) -> None:
    dns["szt.example.gov.cn"] = ["93.184.216.10"]
    dns["evil.example"] = ["93.184.216.10"]
    own = guard(public_url="https://szt.example.gov.cn")
    for url in ("https://szt.example.gov.cn/identity/token", "https://evil.example/", "https://93.184.216.10:9999/"):
        with pytest.raises(outbound.OutboundRefused) as caught:
            await outbound.check(own, url)
        assert caught.value.reason == "own-service"
    # Where `szt serve` listens, on an address that is otherwise public.
    listen = guard(host="93.184.216.20", port=8000, public_url="https://szt.example.gov.cn")
    with pytest.raises(outbound.OutboundRefused):
        await outbound.check(listen, "https://93.184.216.20:8000/")
    assert (await outbound.check(listen, "https://93.184.216.20/")).address == "93.184.216.20"


async def test_the_allow_list_admits_exactly_what_it_names(dns: dict[str, list[str]]) -> None:
    dns["intranet.example"] = ["10.20.1.5"]
    allow = guard(
        outbound_http=True,
        outbound_allow="127.0.0.1:9555, 10.30.0.0/16, intranet.example:8443, [::1]:7000, not a host/x, 1.2.3.4:x",
    )
    assert (await outbound.check(allow, "http://127.0.0.1:9555/")).address == "127.0.0.1"
    assert (await outbound.check(allow, "http://10.30.9.9/")).address == "10.30.9.9"
    assert (await outbound.check(allow, "https://intranet.example:8443/")).address == "10.20.1.5"
    assert (await outbound.check(allow, "http://[::1]:7000/")).address == "::1"
    for url in ("http://127.0.0.1:9556/", "http://10.31.0.1/", "https://intranet.example/", "http://[::1]:7001/"):
        with pytest.raises(outbound.OutboundRefused):
            await outbound.check(allow, url)


# ---------------------------------------------------------------- over HTTP: pinning, redirects, size, time


async def test_connects_to_the_checked_address_with_the_name_as_host(peer: int, dns: dict[str, list[str]]) -> None:
    dns["www.public-looking.example"] = ["127.0.0.1"]
    settings = guard(outbound_http=True, outbound_allow=f"127.0.0.1:{peer}")
    got = await outbound.get(settings, f"http://www.public-looking.example:{peer}/ok")
    assert got.status_code == 200 and got.content == b"ok"
    assert _Peer.hosts == [f"www.public-looking.example:{peer}"]


async def test_a_redirect_to_a_private_address_is_refused(
    peer: int, recorder: Recorder, dns: dict[str, list[str]]
) -> None:
    dns["www.public-looking.example"] = ["127.0.0.1"]
    settings = guard(outbound_http=True, outbound_allow=f"127.0.0.1:{peer}")  # the redirector, not the recorder
    for target in (
        f"http://127.0.0.1:{recorder.port}/secret",
        f"http://localhost:{recorder.port}/",
        f"http://2130706433:{recorder.port}/",
        f"http://[::ffff:127.0.0.1]:{recorder.port}/",
    ):
        with pytest.raises(outbound.OutboundRefused):
            await outbound.get(settings, f"http://www.public-looking.example:{peer}/redirect?{target}")
    await asyncio.sleep(0.3)
    assert recorder.connections == 0
    # A redirect to where the allow-list admits is followed; a loop ends at the cap.
    ok = await outbound.get(settings, f"http://www.public-looking.example:{peer}/redirect?/ok")
    assert ok.status_code == 200 and ok.url.endswith("/ok")
    with pytest.raises(outbound.OutboundRefused) as caught:
        await outbound.get(settings, f"http://127.0.0.1:{peer}/loop")
    assert caught.value.reason == "too-many-redirects"
    # Not following: the redirect itself is the answer.
    answer = await outbound.get(settings, f"http://127.0.0.1:{peer}/loop", max_redirects=0)
    assert answer.status_code == 302


async def test_size_cap(peer: int) -> None:
    settings = guard(outbound_http=True, outbound_allow=f"127.0.0.1:{peer}")
    for path in ("/big", "/big-chunked"):
        with pytest.raises(outbound.OutboundTooLarge):
            await outbound.get(settings, f"http://127.0.0.1:{peer}{path}", max_bytes=1000)
        assert len((await outbound.get(settings, f"http://127.0.0.1:{peer}{path}", max_bytes=10_000)).content) == 5000
    # Status only (health checks): the size of the body does not matter.
    assert (await outbound.get(settings, f"http://127.0.0.1:{peer}/big", read_body=False, max_bytes=10)).content == b""


async def test_time_limit_covers_the_whole_answer(peer: int) -> None:
    settings = guard(outbound_http=True, outbound_allow=f"127.0.0.1:{peer}")
    started = time.monotonic()
    with pytest.raises(outbound.OutboundTimeout):
        await outbound.get(settings, f"http://127.0.0.1:{peer}/slow", time_limit=0.8)
    assert time.monotonic() - started < 2.0


async def test_time_limit(recorder: Recorder) -> None:
    settings = guard(outbound_http=True, outbound_allow=f"127.0.0.1:{recorder.port}")
    started = time.monotonic()
    with pytest.raises(outbound.OutboundTimeout):
        await outbound.get(settings, f"http://127.0.0.1:{recorder.port}/", time_limit=0.5)
    assert 0.4 < time.monotonic() - started < 2.0
    assert recorder.connections == 1


async def test_refusals_are_logged_without_path_or_secrets(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="szt.outbound"):
        with pytest.raises(outbound.OutboundRefused):
            await outbound.get(guard(outbound_http=True), "http://user:pw@10.0.0.1:81/cb?token=s3cret")
    record = next(r for r in caplog.records if r.getMessage() == "outbound request refused")
    assert record.reason == "private" and record.origin == "http://10.0.0.1:81"  # type: ignore[attr-defined]
    assert "s3cret" not in caplog.text and "pw" not in caplog.text


# ---------------------------------------------------------------- end to end


def _json(line: str) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(line)
    except ValueError:
        return {"raw": line}
    return doc


async def test_health_poll_never_fetches_a_private_entry(
    http: httpx.Client, res: Resources, stack: Stack, recorder: Recorder
) -> None:
    """An entry on a loopback port that is not allow-listed is never connected to; it is judged down, exactly as an
    allow-listed entry where nothing listens, and what is kept says no more than that."""
    refused = await service.apply(
        res, GAOXIN, application(res, name="高新区内网探测", entry_path=f"http://127.0.0.1:{recorder.port}/x")
    )
    down = await service.apply(  # allow-listed (the tests' peer port) but nothing listens there now
        res, GAOXIN, application(res, name="高新区无人应答", entry_path=f"http://127.0.0.1:{stack.peer_port}/x")
    )
    for v in (refused, down):
        await service.review(res, SUZHOU, v.id, Review(decision="approve"))
    codes = {refused.app_code, down.app_code}
    for _ in range(jobs.FAILURES_TO_DELIST - 1):
        assert await jobs.poll_once(res, codes) == 0
    assert await jobs.poll_once(res, codes) == 2
    await asyncio.sleep(0.3)
    assert recorder.connections == 0
    views = [await service.get_app(res, SUZHOU, c) for c in (refused.app_code, down.app_code)]
    for view in views:
        assert not view.listed and view.delisted_reason == "health"
        assert view.health_failures == jobs.FAILURES_TO_DELIST
    notes = [
        [n.message for n in await service.notifications(res, SUZHOU, c)] for c in (refused.app_code, down.app_code)
    ]
    assert [m.replace("内网探测", "无人应答") for m in notes[0]] == notes[1]
    assert all(str(recorder.port) not in m for m in notes[0])


async def test_backchannel_logout_to_a_private_address_is_refused(
    http: httpx.Client, res: Resources, stack: Stack, recorder: Recorder
) -> None:
    c = pick_citizen(stack.sim_url)
    session = enrol(http, stack.sim_url, c)["session"]
    assert isinstance(session, dict)
    portal = await make_portal(res, backchannel_logout_uri=f"http://127.0.0.1:{recorder.port}/bcl?k=s3cret")
    flow = Flow()
    tokens = redeem(http, portal, get_code(http, portal, bearer(session), flow), flow).json()
    r = http.get("/identity/logout", params={"id_token_hint": tokens["id_token"]})
    assert r.status_code == 200  # the citizen's logout goes through; the notification does not go out
    await asyncio.sleep(0.3)
    assert recorder.connections == 0
    lines = [_json(line) for line in (stack.var_dir / "server.log").read_text().splitlines() if "outbound" in line]
    refusal = [x for x in lines if x.get("origin") == f"http://127.0.0.1:{recorder.port}"]
    assert refusal and refusal[-1]["reason"] == "loopback"
    assert not any("s3cret" in json.dumps(x) or "/bcl" in json.dumps(x) for x in lines)


# ---------------------------------------------------------------- TLS to the pinned address


def _tls_files(tmp: Path, name: str) -> tuple[Path, Path, ssl.SSLContext]:
    """A CA, a server certificate for `name` signed by it (key and chain files), and a client context trusting it."""
    now = datetime.now(UTC)

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("outbound test CA", ca_key, "outbound test CA", ca_key, True)
    leaf = cert(name, key, "outbound test CA", ca_key, False)
    key_file, chain = tmp / "key.pem", tmp / "chain.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return key_file, chain, client


@pytest.fixture
def tls_peer(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext, list[str]]]:
    """An https peer on 127.0.0.1 whose certificate names `pinned.example`; records the server names (SNI) asked."""
    key_file, chain, client = _tls_files(tmp_path, "pinned.example")
    names: list[str] = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain, key_file)

    def sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name or "")

    server_ctx.sni_callback = sni
    _Peer.hosts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Peer)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, client, names
    server.shutdown()
    server.server_close()


async def test_tls_goes_to_the_checked_address_and_verifies_the_name(
    tls_peer: tuple[int, ssl.SSLContext, list[str]], dns: dict[str, list[str]]
) -> None:
    port, client, names = tls_peer
    dns["pinned.example"] = ["127.0.0.1"]
    dns["other.example"] = ["127.0.0.1"]
    settings = guard(outbound_allow=f"127.0.0.1:{port}")
    got = await outbound.get(settings, f"https://pinned.example:{port}/ok", verify=client)
    assert got.status_code == 200 and got.content == b"ok"
    assert names == ["pinned.example"] and _Peer.hosts == [f"pinned.example:{port}"]
    # The same address under a name its certificate does not carry: the TLS check fails, nothing is read.
    with pytest.raises(outbound.OutboundUnavailable):
        await outbound.get(settings, f"https://other.example:{port}/ok", verify=client)
    assert _Peer.hosts == [f"pinned.example:{port}"]
