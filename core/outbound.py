"""The one guard for every request to a URL an outsider gives us (app entries polled for health, back-channel logout
URIs, download links handed to us by a party): nothing else may fetch such a URL.

- Scheme: `https`, and `http` only when `SZT_OUTBOUND_HTTP` allows it (development and tests).
- The host is resolved once (asynchronously) and every address it resolves to is checked: loopback, link-local,
  private (RFC 1918, ULA), multicast, unspecified, reserved and other non-global addresses, IPv4 inside IPv6
  (`::ffff:127.0.0.1`, 6to4, Teredo, NAT64) and our own services (where `szt serve` and its simulators listen, the
  public URL's host) are refused unless `SZT_OUTBOUND_ALLOW` lists them. Odd spellings of an address
  (`http://2130706433/`, `0177.0.0.1`) are resolved by the same resolver the connection would use, so they are checked
  as the address they mean.
- The connection goes to the address that was checked: the URL is rewritten to that address and the name travels as
  the `Host` header and the TLS server name (SNI, certificate check), so there is no second DNS lookup to rebind.
  Proxies from the environment are ignored for the same reason.
- Redirects are followed here, each hop checked again (at most `max_redirects`); time (the whole exchange, DNS and
  every hop included) and response size are bounded.
- Every refusal is logged with its reason and the destination's origin only (never a path, query or credentials) and
  raises `OutboundRefused`. Every failure is an `OutboundError`, so a caller that only needs up/down catches one type
  and learns nothing about why a target did not answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import certifi
import httpx

from core.settings import Settings

log = logging.getLogger("szt.outbound")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 1_048_576
DEFAULT_MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_OWN_NAMES_TTL = 300.0


class OutboundError(Exception):
    """A request to an outsider's URL did not give an answer we may use (refused, failed, too slow, too large)."""

    def __init__(self, reason: str, origin: str = "") -> None:
        super().__init__(f"{reason}: {origin}" if origin else reason)
        self.reason, self.origin = reason, origin


class OutboundRefused(OutboundError):
    """Policy refused the destination (scheme, address, our own service, too many redirects); nothing was sent."""


class OutboundUnavailable(OutboundError):
    """The destination could not be resolved or reached, or broke off the exchange."""


class OutboundTimeout(OutboundError):
    """The whole exchange took longer than allowed."""


class OutboundTooLarge(OutboundError):
    """The answer is larger than allowed."""


@dataclass(frozen=True)
class Target:
    """A checked destination: where to connect (`address`), and what to call it (`host_header`, `server_name`)."""

    url: httpx.URL
    address: str
    host_header: str
    server_name: str

    @property
    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)


@dataclass(frozen=True)
class Fetched:
    """An answer from an outsider's URL, read (up to the size cap) and closed."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str

    @property
    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


# ---------------------------------------------------------------- the allow-list


@dataclass(frozen=True)
class _Allowed:
    network: Net | None
    name: str
    port: int | None

    def admits(self, host: str, ip: IP, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip.version == self.network.version and ip in self.network
        return host == self.name


def _parse_entry(entry: str) -> _Allowed:
    port: int | None = None
    text = entry
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        text = inner
        if rest.startswith(":"):
            port = int(rest[1:])
        elif rest:
            raise ValueError(entry)
    elif text.count(":") == 1:
        text, _, raw_port = text.partition(":")
        port = int(raw_port)
    try:
        return _Allowed(ipaddress.ip_network(text, strict=False), "", port)
    except ValueError:
        name = text.lower().rstrip(".")
        if not name or "/" in name:
            raise ValueError(entry) from None
        return _Allowed(None, name, port)


_allow_cache: dict[str, tuple[_Allowed, ...]] = {}


def allow_list(settings: Settings) -> tuple[_Allowed, ...]:
    """`SZT_OUTBOUND_ALLOW` parsed (entries that do not parse are logged once and admit nothing)."""
    raw = settings.outbound_allow
    cached = _allow_cache.get(raw)
    if cached is None:
        entries: list[_Allowed] = []
        for entry in (e.strip() for e in raw.split(",")):
            if not entry:
                continue
            try:
                entries.append(_parse_entry(entry))
            except ValueError:
                log.error("SZT_OUTBOUND_ALLOW entry ignored: not a host, address or CIDR", extra={"entry": entry})
        cached = _allow_cache[raw] = tuple(entries)
    return cached


# ---------------------------------------------------------------- address classes


def _plain(ip: IP) -> IP:
    """IPv4 carried inside IPv6 (mapped, NAT64 well-known prefix) as the IPv4 address it reaches."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def forbidden_class(ip: IP) -> str | None:
    """Why an address is not a public destination (None: it is one)."""
    ip = _plain(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            inner = forbidden_class(embedded)
            if inner:
                return inner
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-global"
    return None


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


_own_names: dict[str, tuple[float, frozenset[IP]]] = {}


async def _own_addresses(host: str) -> frozenset[IP]:
    """What our public host name resolves to (kept a few minutes; nothing when it does not resolve)."""
    literal = _literal(host)
    if literal is not None:
        return frozenset({_plain(literal)})
    held = _own_names.get(host)
    if held is not None and held[0] > time.monotonic():
        return held[1]
    try:
        found = frozenset(await _resolve(host, 443))
    except OSError:
        found = frozenset()
    _own_names[host] = (time.monotonic() + _OWN_NAMES_TTL, found)
    return found


async def _own_service(settings: Settings, host: str, ip: IP, port: int) -> bool:
    """Is this one of our own services: the public URL's (or issuer's) host, or where `szt serve`, the simulators,
    the signing server or a worker's metrics listen?"""
    for url in {settings.base_url, settings.issuer_url}:
        own = httpx.URL(url).raw_host.decode("ascii").lower().rstrip(".")
        if own and (host == own or ip in await _own_addresses(own)):
            return True
    listen = _literal(settings.host)
    if listen is not None and not listen.is_unspecified and _plain(listen) == ip:
        return port in {settings.port, settings.sim_port, settings.signer_port, settings.worker_metrics_port}
    return False


# ---------------------------------------------------------------- resolving and checking


async def _resolve(host: str, port: int) -> list[IP]:
    """Every address `host` resolves to, in the resolver's order (tests replace this to play DNS)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    out: list[IP] = []
    for info in infos:
        ip = _plain(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        if ip not in out:
            out.append(ip)
    return out


def _origin(url: httpx.URL) -> str:
    """What a log line may say about a destination: scheme, host and port, never path, query or credentials."""
    try:
        return f"{url.scheme}://{url.netloc.decode('ascii')}"
    except (UnicodeDecodeError, httpx.InvalidURL):
        return "?"


def _origin_of(url: str) -> str:
    try:
        return _origin(httpx.URL(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "?"


def _refuse(reason: str, url: httpx.URL | None, address: str = "") -> OutboundRefused:
    origin = _origin(url) if url is not None else "?"
    log.warning("outbound request refused", extra={"reason": reason, "origin": origin, "address": address})
    return OutboundRefused(reason, origin)


async def check(settings: Settings, url: str | httpx.URL) -> Target:
    """The destination of `url` if policy lets us connect to it; raises `OutboundRefused` (or `OutboundUnavailable`
    when the name does not resolve). Connect only to `Target.address`."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise _refuse("malformed-url", None) from None
    scheme = parsed.scheme.lower()
    if scheme not in ({"https", "http"} if settings.outbound_http else {"https"}):
        raise _refuse("scheme", parsed)
    try:
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    except UnicodeDecodeError:
        raise _refuse("malformed-url", parsed) from None
    if not host:
        raise _refuse("malformed-url", parsed)
    port = parsed.port or (443 if scheme == "https" else 80)
    literal = _literal(host)
    if literal is not None:
        addresses = [_plain(literal)]
    else:
        try:
            addresses = await _resolve(host, port)
        except (OSError, UnicodeError, ValueError):
            log.warning("outbound host does not resolve", extra={"origin": _origin(parsed)})
            raise OutboundUnavailable("unresolved", _origin(parsed)) from None
        if not addresses:
            raise OutboundUnavailable("unresolved", _origin(parsed))
    allowed = allow_list(settings)
    for ip in addresses:
        if any(a.admits(host, ip, port) for a in allowed):
            continue
        reason = forbidden_class(ip)
        if reason is None and await _own_service(settings, host, ip, port):
            reason = "own-service"
        if reason is not None:
            raise _refuse(reason, parsed, str(ip))
    return Target(
        url=parsed,
        address=str(addresses[0]),
        host_header=parsed.netloc.decode("ascii"),
        server_name=host,
    )


# ---------------------------------------------------------------- fetching


_ssl: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _ssl
    if _ssl is None:
        _ssl = ssl.create_default_context(cafile=certifi.where())
    return _ssl


async def fetch(
    settings: Settings,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    data: Mapping[str, str] | None = None,
    time_limit: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    read_body: bool = True,
    verify: ssl.SSLContext | None = None,
) -> Fetched:
    """One exchange with an outsider's URL under the guard; `time_limit` bounds all of it (resolving, connecting,
    every redirect hop, reading). `read_body=False` answers the status and headers only (health checks).
    Raises an `OutboundError` for every way it can fail."""
    try:
        async with asyncio.timeout(time_limit):
            return await _exchange(
                settings, method.upper(), url, dict(headers or {}), content, data, time_limit, max_bytes, max_redirects,
                read_body, verify,
            )  # fmt: skip
    except TimeoutError:
        log.warning("outbound request timed out", extra={"origin": _origin_of(url)})
        raise OutboundTimeout("timeout", _origin_of(url)) from None


async def _exchange(
    settings: Settings,
    method: str,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
    data: Mapping[str, str] | None,
    time_limit: float,
    max_bytes: int,
    max_redirects: int,
    read_body: bool,
    verify: ssl.SSLContext | None,
) -> Fetched:
    transport = httpx.AsyncHTTPTransport(
        verify=verify or _ssl_context(), retries=0, limits=httpx.Limits(max_keepalive_connections=0)
    )
    async with httpx.AsyncClient(
        transport=transport, follow_redirects=False, trust_env=False, timeout=httpx.Timeout(time_limit)
    ) as client:
        current: str | httpx.URL = url
        first_origin: tuple[str, str, int | None] | None = None
        for hop in range(max_redirects + 1):
            target = await check(settings, current)
            origin = (target.url.scheme, target.server_name, target.url.port)
            if first_origin is None:
                first_origin = origin
            elif origin != first_origin:
                headers = {}  # a caller's headers are for the URL it gave, not for where it redirects
            request = client.build_request(
                method,
                target.pinned_url,
                headers={**headers, "Host": target.host_header, "Accept-Encoding": "identity"},
                content=content,
                data=data,
                extensions={"sni_hostname": target.server_name} if target.url.scheme == "https" else {},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException:
                log.warning("outbound request timed out", extra={"origin": _origin(target.url)})
                raise OutboundTimeout("timeout", _origin(target.url)) from None
            except httpx.HTTPError as exc:
                log.warning(
                    "outbound request failed", extra={"origin": _origin(target.url), "error": type(exc).__name__}
                )
                raise OutboundUnavailable("unreachable", _origin(target.url)) from None
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location and max_redirects > 0:
                    if hop == max_redirects:
                        raise _refuse("too-many-redirects", target.url)
                    try:
                        current = target.url.join(location)
                    except (httpx.InvalidURL, ValueError):
                        raise _refuse("malformed-url", target.url) from None
                    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                        method, content, data = "GET", None, None
                    continue
                body = await _read(response, max_bytes, target.url) if read_body else b""
                return Fetched(response.status_code, response.headers, body, str(target.url))
            finally:
                await response.aclose()
    raise AssertionError("unreachable")  # the loop returns or raises


async def _read(response: httpx.Response, max_bytes: int, url: httpx.URL) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        log.warning("outbound answer too large", extra={"origin": _origin(url), "bytes": int(declared)})
        raise OutboundTooLarge("too-large", _origin(url))
    out = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            out += chunk
            if len(out) > max_bytes:
                log.warning("outbound answer too large", extra={"origin": _origin(url), "bytes": len(out)})
                raise OutboundTooLarge("too-large", _origin(url))
    except httpx.TimeoutException:
        log.warning("outbound request timed out", extra={"origin": _origin(url)})
        raise OutboundTimeout("timeout", _origin(url)) from None
    except httpx.HTTPError as exc:
        log.warning("outbound answer broken off", extra={"origin": _origin(url), "error": type(exc).__name__})
        raise OutboundUnavailable("unreachable", _origin(url)) from None
    return bytes(out)


async def get(settings: Settings, url: str, **kw: Any) -> Fetched:
    return await fetch(settings, "GET", url, **kw)


async def post(settings: Settings, url: str, **kw: Any) -> Fetched:
    return await fetch(settings, "POST", url, **kw)
