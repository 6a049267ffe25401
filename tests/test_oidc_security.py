"""One test per security rule of the OpenID provider; each fails if its rule is removed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest

from core.resources import Resources
from tests.identity_helpers import bearer, enrol, pick_citizen
from tests.oidc_helpers import (
    REDIRECT,
    Flow,
    Portal,
    approve,
    authorize_url,
    code_from,
    get_code,
    introspect,
    make_portal,
    redeem,
    request_id,
)


@pytest.fixture(scope="module")
def app_auth(http: httpx.Client, sim_url: str) -> dict[str, str]:
    session = enrol(http, sim_url, pick_citizen(sim_url))["session"]
    assert isinstance(session, dict)
    return bearer(session)


@pytest.fixture
async def portal(res: Resources) -> Portal:
    return await make_portal(res)


@pytest.mark.parametrize("bad", [REDIRECT + "/x", REDIRECT + "?a=1", REDIRECT[:-1], REDIRECT.upper()])
def test_redirect_uri_must_match_exactly(http: httpx.Client, portal: Portal, bad: str) -> None:
    r = http.get(authorize_url(portal.client_id, Flow(), redirect_uri=bad), headers={"Accept": "application/json"})
    assert r.status_code == 400 and "location" not in r.headers  # never redirect to an unregistered URI
    assert r.json()["errors"][0]["field"] == "redirect_uri"


def test_state_is_echoed_with_the_issuer(
    http: httpx.Client, portal: Portal, app_auth: dict[str, str], base_url: str
) -> None:
    flow = Flow()
    r = approve(http, request_id(http, authorize_url(portal.client_id, flow)), app_auth)
    query = parse_qs(urlparse(r.json()["redirect_to"]).query)
    assert query["state"] == [flow.state] and query["iss"] == [f"{base_url}/identity"]
    denied = http.post(
        f"/bff/v1/auth-requests/{request_id(http, authorize_url(portal.client_id, flow))}/deny", headers=app_auth
    )
    query = parse_qs(urlparse(denied.json()["redirect_to"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == [flow.state]


def test_nonce_is_in_the_id_token(http: httpx.Client, portal: Portal, app_auth: dict[str, str], base_url: str) -> None:
    flow = Flow()
    tokens = redeem(http, portal, get_code(http, portal, app_auth, flow), flow).json()
    jwks = jwt.PyJWKClient(f"{base_url}/identity/jwks")
    key = jwks.get_signing_key_from_jwt(tokens["id_token"])
    claims = jwt.decode(
        tokens["id_token"], key.key, algorithms=["ES256"], audience=portal.client_id, issuer=f"{base_url}/identity"
    )
    assert claims["nonce"] == flow.nonce


async def test_code_lives_60_seconds(
    http: httpx.Client, portal: Portal, app_auth: dict[str, str], res: Resources
) -> None:
    code = get_code(http, portal, app_auth, Flow())
    ttl = await res.redis.ttl(f"oidc:code:{hashlib.sha256(code.encode()).hexdigest()}")
    assert 0 < ttl <= 60


def test_code_redeems_once_and_a_replay_revokes_what_it_issued(
    http: httpx.Client, portal: Portal, app_auth: dict[str, str]
) -> None:
    flow = Flow()
    code = get_code(http, portal, app_auth, flow)
    first = redeem(http, portal, code, flow)
    assert first.status_code == 200
    assert introspect(http, portal, first.json()["access_token"])["active"] is True
    second = redeem(http, portal, code, flow)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert introspect(http, portal, first.json()["access_token"]) == {"active": False}
    refresh = http.post(
        "/identity/token",
        auth=portal.auth,
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_pkce_verifier_is_checked(http: httpx.Client, portal: Portal, app_auth: dict[str, str]) -> None:
    flow = Flow()
    code = get_code(http, portal, app_auth, flow)
    wrong = redeem(http, portal, code, flow, code_verifier=Flow().verifier)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    flow2 = Flow()
    missing = redeem(http, portal, get_code(http, portal, app_auth, flow2), flow2, code_verifier="")
    assert missing.status_code == 400


async def test_public_clients_must_use_pkce(http: httpx.Client, res: Resources) -> None:
    public = await make_portal(res, auth_method="none")
    r = http.get(
        authorize_url(public.client_id, Flow(), code_challenge="", code_challenge_method=""),
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 302
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_request"]


async def test_tokens_are_bound_to_their_client(
    http: httpx.Client, portal: Portal, app_auth: dict[str, str], res: Resources
) -> None:
    other = await make_portal(res)
    flow = Flow()
    code = get_code(http, portal, app_auth, flow)
    stolen = redeem(http, other, code, flow)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    flow = Flow()
    mine = redeem(http, portal, get_code(http, portal, app_auth, flow), flow).json()
    r = http.post(
        "/identity/token", auth=other.auth, data={"grant_type": "refresh_token", "refresh_token": mine["refresh_token"]}
    )
    assert r.status_code == 400
    http.post("/identity/revoke", auth=other.auth, data={"token": mine["access_token"]})
    assert introspect(http, portal, mine["access_token"])["active"] is True


async def test_per_client_and_per_ip_rate_limits(http: httpx.Client, res: Resources, base_url: str) -> None:
    # Limits count in fixed one-minute windows; a burst of 2 x limit + 1 overflows one of the (at most two)
    # windows it spans, wherever the minute boundary falls.
    business = await make_portal(res, kind="business")
    per_client = int(os.environ["SZT_OIDC_RATE_PER_CLIENT"])
    codes = [
        http.post("/identity/token", auth=business.auth, data={"grant_type": "client_credentials"}).status_code
        for _ in range(2 * per_client + 1)
    ]
    assert 429 in codes and codes.count(200) >= per_client and set(codes) <= {200, 429}
    per_ip = int(os.environ["SZT_OIDC_RATE_PER_IP"])
    seen = set()
    for _ in range(2 * per_ip + 1):
        seen.add(http.post("/identity/introspect", data={"token": "x"}, auth=("nobody", "x")).status_code)
        if 429 in seen:
            break
    assert seen == {401, 429}
    # Leave the windows clean for the tests that follow.
    async for key in res.redis.scan_iter(match="rl:oidc-*"):
        await res.redis.delete(key)


async def test_token_issuance_and_consent_changes_are_audited(
    http: httpx.Client, portal: Portal, app_auth: dict[str, str], res: Resources
) -> None:
    flow = Flow()
    redeem(http, portal, get_code(http, portal, app_auth, flow), flow)
    assert http.delete(f"/bff/v1/consents/{portal.client_id}", headers=app_auth).status_code == 204
    actions = {
        r["action"]
        for r in await res.db.fetch(
            "SELECT action FROM core.audit_log WHERE target = $1 OR detail::text LIKE '%' || $1 || '%'",
            portal.client_id,
        )
    }
    assert {"identity.consent.grant", "identity.consent.withdraw"} <= actions
    assert (
        await res.db.fetchval(
            "SELECT count(*) FROM core.audit_log WHERE action = 'identity.token.issue' AND actor = $1",
            f"client:{portal.client_id}",
        )
        >= 1
    )


def test_consent_withdrawal_revokes_tokens(http: httpx.Client, portal: Portal, app_auth: dict[str, str]) -> None:
    flow = Flow()
    tokens = redeem(http, portal, get_code(http, portal, app_auth, flow), flow).json()
    listed = http.get("/bff/v1/consents", headers=app_auth).json()
    assert portal.client_id in {c["client_id"] for c in listed}
    http.delete(f"/bff/v1/consents/{portal.client_id}", headers=app_auth)
    assert introspect(http, portal, tokens["access_token"]) == {"active": False}


def test_no_token_or_code_in_logs(http: httpx.Client, portal: Portal, app_auth: dict[str, str], var_dir: Path) -> None:
    flow = Flow()
    code = get_code(http, portal, app_auth, flow)
    tokens = redeem(http, portal, code, flow).json()
    http.get("/identity/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    logs = "".join(p.read_text(errors="replace") for p in var_dir.glob("*.log"))
    for secret in (code, tokens["access_token"], tokens["refresh_token"], tokens["id_token"], portal.secret):
        assert secret not in logs
    _ = code_from
