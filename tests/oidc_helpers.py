"""Helpers for OIDC tests: clients, PKCE, and a code obtained through the authorization request."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from core.resources import Resources
from identity import clients

REDIRECT = "https://portal.example.gov.cn/callback"


@dataclass
class Portal:
    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return self.client_id, self.secret


async def make_portal(res: Resources, **kw: object) -> Portal:
    args: dict[str, object] = {
        "kind": "portal",
        "redirect_uris": [REDIRECT],
        "entitlements": ["name_masked", "age_band", "over_18"],
    }
    args.update(kw)
    made = await clients.create(res, client_id=f"p-{uuid.uuid4().hex[:10]}", name="测试门户", **args)  # type: ignore[arg-type]
    return Portal(made.client.client_id, made.client_secret or "")


@dataclass
class Flow:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    @property
    def challenge(self) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_url(
    client_id: str, flow: Flow, *, redirect_uri: str = REDIRECT, scope: str = "openid profile age", **extra: str
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": flow.challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return "/identity/authorize?" + urlencode(params)


def request_id(http: httpx.Client, url: str) -> str:
    r = http.get(url, headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    rid: str = r.json()["request_id"]
    return rid


def approve(http: httpx.Client, rid: str, app_auth: dict[str, str], **body: object) -> httpx.Response:
    return http.post(f"/bff/v1/auth-requests/{rid}/approve", headers=app_auth, json=body)


def code_from(redirect_to: str) -> str:
    return parse_qs(urlparse(redirect_to).query)["code"][0]


def get_code(http: httpx.Client, portal: Portal, app_auth: dict[str, str], flow: Flow, **extra: str) -> str:
    r = approve(http, request_id(http, authorize_url(portal.client_id, flow, **extra)), app_auth)
    assert r.status_code == 200, r.text
    return code_from(r.json()["redirect_to"])


def redeem(http: httpx.Client, portal: Portal, code: str, flow: Flow, **over: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": flow.verifier,
        **over,
    }
    return http.post("/identity/token", data=data, auth=portal.auth)


def introspect(http: httpx.Client, portal: Portal, token: str) -> dict[str, object]:
    r = http.post("/identity/introspect", data={"token": token}, auth=portal.auth)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body
