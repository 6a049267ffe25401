"""A real OIDC client library we did not write (Authlib) against the running provider over HTTP: discovery, code
flow with PKCE through the authorization request, ID token validation, userinfo, refresh, introspection,
revocation and logout."""

from __future__ import annotations

import secrets
import uuid
import warnings
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from core.resources import Resources
from identity import clients
from tests.identity_helpers import bearer, enrol, pick_citizen

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken

REDIRECT = "https://portal.example.gov.cn/callback"
LOGOUT_BACK = "https://portal.example.gov.cn/bye"


@pytest.fixture(scope="module")
async def portal(res: Resources) -> tuple[str, str]:
    made = await clients.create(
        res,
        client_id=f"portal-{uuid.uuid4().hex[:8]}",
        name="江苏政务服务网",
        kind="portal",
        redirect_uris=[REDIRECT],
        entitlements=["name_masked", "age_band", "over_18"],
        post_logout_redirect_uris=[LOGOUT_BACK],
    )
    assert made.client_secret
    return made.client.client_id, made.client_secret


@pytest.fixture(scope="module")
def citizen_session(http: httpx.Client, sim_url: str) -> dict[str, str]:
    enrolled = enrol(http, sim_url, pick_citizen(sim_url))
    session = enrolled["session"]
    assert isinstance(session, dict)
    return bearer(session)


def authorize_via_app(http: httpx.Client, url: str, app_auth: dict[str, str]) -> str:
    """The portal's browser opens `url`; the citizen's app scans the request and approves it."""
    created = http.get(url, headers={"Accept": "application/json"})
    assert created.status_code == 200, created.text
    request_id = created.json()["request_id"]
    assert created.json()["qr_payload"].endswith(request_id.upper())
    shown = http.get(f"/bff/v1/auth-requests/{request_id}", headers=app_auth).json()
    assert {s["scope"] for s in shown["scopes"]} >= {"openid", "profile", "age"}
    approved = http.post(f"/bff/v1/auth-requests/{request_id}/approve", headers=app_auth, json={})
    assert approved.status_code == 200, approved.text
    redirect_to: str = approved.json()["redirect_to"]
    return redirect_to


def test_authlib_full_flow(
    http: httpx.Client, portal: tuple[str, str], citizen_session: dict[str, str], base_url: str
) -> None:
    meta = httpx.get(f"{base_url}/identity/.well-known/openid-configuration").json()
    assert meta["issuer"] == f"{base_url}/identity"
    client = OAuth2Client(
        portal[0],
        portal[1],
        scope="openid profile age offline_access",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    redirect_to = authorize_via_app(http, url, citizen_session)
    assert parse_qs(urlparse(redirect_to).query)["iss"] == [meta["issuer"]]  # RFC 9207

    token = client.fetch_token(meta["token_endpoint"], authorization_response=redirect_to, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token.get("refresh_token")

    jwks = JsonWebKey.import_key_set(httpx.get(meta["jwks_uri"]).json())
    claims = JsonWebToken(["ES256"]).decode(
        token["id_token"],
        jwks,
        claims_options={
            "iss": {"essential": True, "value": meta["issuer"]},
            "aud": {"essential": True, "value": portal[0]},
            "nonce": {"essential": True, "value": nonce},
        },
    )
    claims.validate()
    assert claims["acr"] == "wz+face" and claims["sub"]

    info = client.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"]
    assert info["name"].endswith("*") and info["over_18"] is True and "id_number" not in info

    refreshed = client.refresh_token(meta["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]

    intro = client.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"]).json()
    assert intro["active"] is True and intro["client_id"] == portal[0] and intro["sub"] == claims["sub"]

    revoked = client.revoke_token(meta["revocation_endpoint"], token=refreshed["access_token"])
    assert revoked.status_code == 200
    intro = client.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"]).json()
    assert intro == {"active": False}

    # RP-initiated logout with the ID token: the session's refresh tokens die, back to the portal.
    out = httpx.get(
        meta["end_session_endpoint"],
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": LOGOUT_BACK, "state": "s1"},
    )
    assert out.status_code == 302 and out.headers["location"] == f"{LOGOUT_BACK}?state=s1"
    again = httpx.post(
        meta["token_endpoint"],
        auth=portal,
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    _ = (secrets, state)
