"""What the identity and OIDC scenarios set up over HTTP before measuring: one enrolled citizen (SMS code + face
capture from the simulators, an SM2 device key), relying parties, authorization codes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from bench.context import Context
from bench.servers import ROOT, Server
from core.crypto import SM2PrivateKey

REDIRECT_URI = "http://127.0.0.1:9/cb"  # nothing listens there: the codes are taken from the redirect's query
MINT_CONCURRENCY = 32


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def fixed(cls) -> Pkce:
        """One verifier for every code of a run: the server checks it per code, so reuse costs nothing extra."""
        verifier = b64u(hashlib.sha256(b"szt-bench pkce").digest() * 2)  # 86 characters, in RFC 7636's range
        return cls(verifier, b64u(hashlib.sha256(verifier.encode()).digest()))


@dataclass(frozen=True)
class Citizen:
    id_number: str
    access_token: str  # device-bound app session, acr wz+face

    @property
    def bearer(self) -> str:
        return f"Authorization: Bearer {self.access_token}"


def _check(r: httpx.Response, status: int, what: str) -> Any:
    if r.status_code != status:
        raise RuntimeError(f"{what}: HTTP {r.status_code}: {r.text[:500]}")
    return r.json() if r.content else None


def enrol_citizen(server: Server, *, first_offset: int = 500) -> Citizen:
    """One adult from the CTID simulator's population, enrolled with a fresh SM2 device key.

    Only one: the SMS endpoint allows one code per phone and purpose a minute, and a few per IP an hour.
    """
    sim = server.sim_url
    adult_before = date.today().replace(year=date.today().year - 19).isoformat()
    with httpx.Client(base_url=server.base_url, timeout=30) as http, httpx.Client(base_url=sim, timeout=30) as simc:
        person: dict[str, Any] | None = None
        for offset in range(first_offset, first_offset + 50):
            page = _check(simc.get("/ctid/_sim/people", params={"offset": offset, "limit": 1}), 200, "CTID people")
            if page["items"] and page["items"][0]["birth_date"] <= adult_before:
                person = page["items"][0]
                break
        if person is None:
            raise RuntimeError("no adult found in the CTID simulator's population")
        _check(http.post("/bff/v1/sms-codes", json={"phone": person["phone"], "purpose": "enrol"}), 202, "SMS code")
        outbox = _check(simc.get("/sms/_sim/outbox", params={"phone": person["phone"]}), 200, "SMS outbox")
        sms_code = outbox["items"][0]["params"]["code"]
        capture = _check(
            simc.post(
                "/ctid/_sim/captures", json={"id_number": person["id_number"], "live": True, "same_person": True}
            ),
            201,
            "face capture",
        )["capture"]
        device = SM2PrivateKey.generate()
        enrolled = _check(
            http.post(
                "/bff/v1/enrolments",
                json={
                    "name": person["name"],
                    "id_number": person["id_number"],
                    "phone": person["phone"],
                    "sms_code": sms_code,
                    "face_capture": capture,
                    "device": {
                        "public_key": b64u(device.public_key().to_uncompressed()),
                        "platform": "android",
                        "name": "bench",
                    },
                },
            ),
            201,
            "enrolment",
        )
    return Citizen(person["id_number"], enrolled["session"]["access_token"])


def create_clients(server: Server, specs: list[dict[str, Any]]) -> dict[str, str]:
    """Relying parties in the server's database (bench.make_clients with the server's environment): id -> secret."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.make_clients", json.dumps(specs)],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"creating clients failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    made: dict[str, str] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return made


def mint_identity_codes(server: Server, citizen: Citizen, n: int) -> list[str]:
    """n identity codes for `citizen` from bench.mint_identity_codes (the server's own issue_code, in a process of
    its own attached to the server's databases): the verify runs' pool when the issue runs did not make enough."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.mint_identity_codes", citizen.access_token, str(n)],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"minting identity codes failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stdout.decode().split()


def basic(client_id: str, secret: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def _mint_ours(server: Server, citizen: Citizen, client_id: str, n: int, pkce: Pkce) -> list[str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid offline_access",
        "state": "bench",
        "nonce": "bench-nonce",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    app_auth = {"Authorization": f"Bearer {citizen.access_token}"}
    limits = httpx.Limits(max_connections=MINT_CONCURRENCY, max_keepalive_connections=MINT_CONCURRENCY)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
        sem = asyncio.Semaphore(MINT_CONCURRENCY)

        async def one() -> str:
            async with sem:
                r = await http.get("/identity/authorize", params=params, headers={"Accept": "application/json"})
                rid = _check(r, 200, "authorize")["request_id"]
                r = await http.post(f"/bff/v1/auth-requests/{rid}/approve", headers=app_auth, json={})
                redirect_to = _check(r, 200, "approve")["redirect_to"]
                return parse_qs(urlparse(redirect_to).query)["code"][0]

        return list(await asyncio.gather(*(one() for _ in range(n))))


def mint_codes_ours(server: Server, citizen: Citizen, client_id: str, n: int, pkce: Pkce) -> list[str]:
    """n authorization codes the way a portal gets them: `GET /identity/authorize` (JSON), the app approves."""
    return asyncio.run(_mint_ours(server, citizen, client_id, n, pkce))


def mint_codes_peer(server: Server, n: int, pkce: Pkce) -> list[str]:
    """n authorization codes from the peer's bench-only route (bench/node/peer.js), made by its own models."""
    codes: list[str] = []
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        while len(codes) < n:
            batch = min(2000, n - len(codes))
            r = http.post("/_bench/codes", json={"n": batch, "code_challenge": pkce.challenge, "nonce": "bench-nonce"})
            codes += _check(r, 200, "peer codes")["codes"]
    return codes


# The relying parties every mounted bench server gets (`szt clients create` would make the same).
CLIENTS: list[dict[str, Any]] = [
    {"client_id": "verifier-bench", "name": "bench", "kind": "verifier", "entitlements": ["age_band", "over_18"]},
    {"client_id": "bench-cc", "name": "bench", "kind": "business"},
    {
        "client_id": "bench-portal",
        "name": "bench",
        "kind": "portal",
        "redirect_uris": [REDIRECT_URI],
        "entitlements": ["age_band"],
    },
]


@dataclass(frozen=True)
class Setup:
    citizen: Citizen
    secrets: dict[str, str]  # client_id -> client_secret

    def basic(self, client_id: str) -> str:
        return basic(client_id, self.secrets[client_id])


def setup_for(ctx: Context, server_name: str) -> tuple[Server, Setup]:
    """The named mounted server with one enrolled citizen and CLIENTS, made once per run and server."""
    server = ctx.server(server_name)
    key = f"setup.{server_name}"
    if key not in ctx.data:
        ctx.progress(f"{server.name}: enrolling a citizen, registering clients")
        ctx.data[key] = Setup(enrol_citizen(server), create_clients(server, CLIENTS))
    made: Setup = ctx.data[key]
    return server, made
