"""Signature timestamps (RFC 3161) for PAdES seals and for the `timeStamp` of GB/T 38540 SES_Signatures.

Where: `TSA_URL` (environment); unset means the simulators' TSA (`<simulators>/tsa/v1/timestamp`), `off` means
none. pyhanko asks the TSA for a token over the CMS signature value and embeds it as the unsigned
signature-time-stamp attribute (PAdES B-T). The request goes over the same lean keep-alive HTTP/1.1 client as the
signing server's (core/http1.py), one per process and event loop.

The simulator TSA keeps its own key; its certificate comes from our CA. Before the first timestamp of a process
we check that the certificate it holds was issued by our current `rsa-issuing` (a fresh database means new CAs)
and, if not, certify its public key (`ca.issue_tsa_certificate`, EKU timeStamping) and install it with the chain.
A real TSA at `TSA_URL` is used as it is; its root must be among the trusted roots (`ca.add_trusted_root`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx
from asn1crypto import core, tsp, x509
from pyhanko.sign.timestamps.api import TimeStamper

from core.http1 import KeepAliveClient
from core.resources import Resources
from core.settings import Settings
from eseal import ca, ses, x509build

QUERY_TYPE = "application/timestamp-query"
SIM_PATH = "/tsa/v1/timestamp"

_stampers: dict[int, tuple[asyncio.AbstractEventLoop, TimeStamper]] = {}
_provisioned: set[str] = set()  # simulator base URLs whose certificate was checked by this process
_lock: dict[int, asyncio.Lock] = {}


def tsa_url(settings: Settings) -> str | None:
    url = settings.tsa_url
    if url is None:
        return settings.simulators_url.rstrip("/") + SIM_PATH
    return None if url.strip().lower() in ("", "off", "none") else url.strip()


class RemoteTimeStamper(TimeStamper):
    """pyhanko's TimeStamper over a persistent connection (its HTTP timestamper opens one per request)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        super().__init__(include_nonce=True)
        parts = urlsplit(url)
        self._path = parts.path or "/"
        self._http = KeepAliveClient(f"{parts.scheme}://{parts.netloc}", timeout=timeout)

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        body = bytes(req.dump())
        resp = await self._http.request("POST", self._path, body, lambda: {"Content-Type": QUERY_TYPE})
        if resp.status_code != 200:
            raise OSError(f"TSA answered HTTP {resp.status_code}")
        answer = core.Sequence.load(resp.content)
        if len(answer) < 2:  # status only: refused (asn1crypto's TimeStampResp needs the optional token)
            status = tsp.PKIStatusInfo.load(answer[0].dump()).native if len(answer) else "empty answer"
            raise OSError(f"TSA refused: {status}")
        return tsp.TimeStampResp.load(resp.content)


async def timestamper(res: Resources) -> TimeStamper | None:
    """The process's timestamper for this event loop, or None when `TSA_URL=off`."""
    url = tsa_url(res.settings)
    if url is None:
        return None
    if url.endswith(SIM_PATH) and url not in _provisioned:
        lock = _lock.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
        async with lock:
            if url not in _provisioned:
                await _provision_simulator(res, url.removesuffix("/v1/timestamp"))
                _provisioned.add(url)
    loop = asyncio.get_running_loop()
    found = _stampers.get(id(res))
    if found is None or found[0] is not loop:
        found = (loop, RemoteTimeStamper(url))
        _stampers[id(res)] = found
    return found[1]


def ses_token(stamper: TimeStamper) -> Callable[[bytes], Awaitable[bytes]]:
    """For an SES_Signature's `timeStamp`: a DER TimeStampToken whose imprint is SHA-256 of the signature value."""

    async def token(signature: bytes) -> bytes:
        info = await stamper.async_timestamp(ses.timestamp_imprint(signature), ses.TIMESTAMP_HASH)
        return bytes(info.dump())

    return token


async def _provision_simulator(res: Resources, base: str) -> None:
    """Make sure the simulator TSA holds a certificate from our current rsa-issuing CA, valid for a while."""
    chain = await ca.chain_of(res, ca.ISSUING["RSA"])
    if not chain:
        await ca.ensure_cas(res)
        chain = await ca.chain_of(res, ca.ISSUING["RSA"])
    issuer_spki = x509build.spki_of(chain[0])
    async with httpx.AsyncClient(timeout=10) as http:
        got = await http.get(f"{base}/_sim/certificate")
        if got.status_code == 200:
            der = base64.b64decode(got.json()["certificate"])
            not_after = x509.Certificate.load(der)["tbs_certificate"]["validity"]["not_after"].native
            fresh = not_after > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
            if fresh and x509build.cert_signed_by(der, issuer_spki):
                return
        key = await http.get(f"{base}/_sim/public-key")
        key.raise_for_status()
        der = await ca.issue_tsa_certificate(res, base64.b64decode(key.json()["public_key"]))
        payload = {
            "certificate": base64.b64encode(der).decode(),
            "chain": [base64.b64encode(c).decode() for c in chain],
        }
        put = await http.put(f"{base}/_sim/certificate", json=payload)
        put.raise_for_status()
