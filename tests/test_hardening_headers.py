"""Security headers (core.edge) and the protected `/metrics`, on the running server over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from core.observe import metrics_headers
from core.resources import Resources
from core.settings import load_settings
from tests.identity_helpers import bearer, enrol, pick_citizen
from tests.oidc_helpers import Flow, authorize_url, make_portal


@pytest.fixture(scope="module")
def citizen(http: httpx.Client, sim_url: str) -> dict[str, str]:
    session = enrol(http, sim_url, pick_citizen(sim_url))["session"]
    assert isinstance(session, dict)
    return bearer(session)


def test_every_answer_has_nosniff_and_referrer_policy(http: httpx.Client) -> None:
    for path in ("/healthz", "/bff/healthz", "/identity/.well-known/openid-configuration", "/bff/no-such-thing"):
        r = http.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] in ("no-referrer", "strict-origin"), path


@pytest.mark.parametrize("path", ["/eseal/verify", "/", "/admin/login"])
def test_html_pages_cannot_be_framed(http: httpx.Client, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_login_qr_page_cannot_be_framed(http: httpx.Client, res: Resources) -> None:
    # Today: /identity/authorize's QR page (a browser's sign-in) has no frame-ancestors and could be framed.
    portal = await make_portal(res)
    r = http.get(authorize_url(portal.client_id, Flow()))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:300]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"  # it carries a browser cookie bound to this request


def test_answers_with_tokens_or_personal_data_are_not_stored(
    http: httpx.Client, sim_url: str, citizen: dict[str, str]
) -> None:
    me = http.get("/bff/v1/me", headers=citizen)
    assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
    # A sign-in answer carries tokens.
    refreshed = http.post("/bff/v1/sessions/refresh", json={"refresh_token": "x" * 40})
    assert refreshed.headers["cache-control"] == "no-store"
    code = http.post("/bff/v1/identity-codes", headers=citizen, json={})
    assert code.headers["cache-control"] == "no-store"
    assert code.status_code == 201, code.text
    png = http.get(code.json()["png_url"], headers=citizen)  # the identity-code image
    assert png.status_code == 200 and png.headers["cache-control"] == "no-store"
    sessions = http.post("/bff/v1/sessions", json={"method": "sms", "phone": "13800000000", "sms_code": "000000"})
    assert sessions.headers["cache-control"] == "no-store"


def test_public_answers_keep_their_own_caching(http: httpx.Client) -> None:
    r = http.get("/identity/.well-known/openid-configuration")
    assert r.headers.get("cache-control") != "no-store"


def test_metrics_need_the_bearer_token(http: httpx.Client) -> None:
    # Today: public.
    anonymous = http.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    wrong = http.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = http.get("/metrics", headers=metrics_headers(load_settings()))
    assert ok.status_code == 200 and "szt_http_requests_total" in ok.text
