"""Client address and scheme behind a load balancer: `X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded`
(RFC 7239) are honoured only when the connection comes from a configured trusted proxy (`SZT_TRUSTED_PROXIES`,
addresses or CIDRs, comma-separated). From any other peer those headers are ignored: a client cannot choose its
own address for rate limits and logs, nor claim https.

`apply(scope, settings)` (run once per request by core.edge) rewrites `scope["client"]` and `scope["scheme"]`, so
every reader — rate limits, request logs, `request.client`, `request.url.scheme` in the console's Origin check —
sees the client as the proxy saw it; the connection's own peer stays in `scope["szt.peer"]`.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from core.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PEER_KEY = "szt.peer"


@functools.lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """Parse `spec` ("10.0.0.0/8, 192.168.1.7, ::1"); a bad entry is a configuration error, raised at start-up."""
    nets: list[Network] = []
    for item in spec.replace(";", ",").split(","):
        item = item.strip()
        if item:
            nets.append(ipaddress.ip_network(item, strict=False))
    return tuple(nets)


def _is_trusted(address: str, nets: tuple[Network, ...]) -> bool:
    if not nets or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in nets)


def _header(scope: Any, name: bytes) -> str:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == name]
    return ",".join(values)


def _clean(node: str) -> str:
    """An address from a header: `"[2001:db8::1]:4711"`, `192.0.2.1:80` or `192.0.2.1` -> the bare address."""
    node = node.strip().strip('"')
    if node.startswith("["):
        return node[1 : node.find("]")] if "]" in node else ""
    if node.count(":") == 1:
        node = node.split(":", 1)[0]
    return node


def _forwarded_pairs(value: str) -> list[dict[str, str]]:
    """RFC 7239 elements, nearest proxy last."""
    out: list[dict[str, str]] = []
    for element in value.split(","):
        pairs: dict[str, str] = {}
        for part in element.split(";"):
            name, sep, val = part.partition("=")
            if sep:
                pairs[name.strip().lower()] = val.strip().strip('"')
        out.append(pairs)
    return out


def _peer(scope: Any) -> str:
    if PEER_KEY in scope:
        return str(scope[PEER_KEY][0]) if scope[PEER_KEY] else ""
    client = scope.get("client")
    return str(client[0]) if client else ""


def _chain(scope: Any) -> tuple[list[str], list[str]]:
    """(addresses, protocols) the proxies reported, nearest last; empty when no header is present."""
    forwarded = _header(scope, b"forwarded")
    if forwarded:
        elements = _forwarded_pairs(forwarded)
        return [_clean(e.get("for", "")) for e in elements], [e.get("proto", "").lower() for e in elements]
    xff = _header(scope, b"x-forwarded-for")
    proto = _header(scope, b"x-forwarded-proto")
    return [_clean(a) for a in xff.split(",")] if xff else [], [p.strip().lower() for p in proto.split(",") if p]


def _client_index(scope: Any, nets: tuple[Network, ...]) -> tuple[int, list[str], list[str]]:
    """Index in the forwarded chain of the client (-1: the peer itself), with the chain's addresses and protocols."""
    addresses, protos = _chain(scope)
    for i in range(len(addresses) - 1, -1, -1):
        address = addresses[i]
        if not address or address.lower() == "unknown" or address.startswith("_"):
            return -1, addresses, protos  # an obfuscated or unknown node: nothing to its left can be vouched for
        if not _is_trusted(address, nets):
            return i, addresses, protos
    return (0 if addresses else -1), addresses, protos


def client_address(scope: Any, settings: Settings) -> str:
    """The client's address: the connection's peer, or — when the peer is a trusted proxy — the first address
    from the right of the forwarded chain that is not itself a trusted proxy."""
    peer = _peer(scope)
    nets = trusted_networks(settings.trusted_proxies)
    if not _is_trusted(peer, nets):
        return peer
    i, addresses, _ = _client_index(scope, nets)
    return addresses[i] if i >= 0 else peer


def is_https(scope: Any, settings: Settings) -> bool:
    """Whether the client's request came over https: the connection's own scheme, or what the trusted proxies
    report — `Forwarded: proto=` of the client's element (else the nearest one stating a protocol), or the
    nearest `X-Forwarded-Proto` value."""
    if scope.get("scheme") in ("https", "wss") and PEER_KEY not in scope:
        return True
    if scope.get("szt.scheme") in ("https", "wss"):
        return True
    nets = trusted_networks(settings.trusted_proxies)
    if not _is_trusted(_peer(scope), nets):
        return False
    i, addresses, protos = _client_index(scope, nets)
    if len(protos) == len(addresses) and i >= 0 and protos[i]:
        return protos[i] == "https"
    stated = [p for p in protos if p]
    return bool(stated) and stated[-1] == "https"


def secure_cookies(scope: Any, settings: Settings) -> bool:
    """Cookies get `Secure` whenever the public URL is https or the request reached us over https."""
    return settings.base_url.startswith("https://") or is_https(scope, settings)


def apply(scope: Any, settings: Settings) -> None:
    """Rewrite the scope's client and scheme from a trusted proxy's headers (a no-op for any other peer)."""
    if PEER_KEY in scope or not settings.trusted_proxies:
        return
    peer = scope.get("client")
    nets = trusted_networks(settings.trusted_proxies)
    if not peer or not _is_trusted(str(peer[0]), nets):
        return
    scope["szt.scheme"] = scope.get("scheme", "http")
    https = is_https(scope, settings)
    scope[PEER_KEY] = peer
    address = client_address(scope, settings)
    if address and address != peer[0]:
        scope["client"] = (address, 0)
    if https:
        scope["scheme"] = "wss" if scope["type"] == "websocket" else "https"
