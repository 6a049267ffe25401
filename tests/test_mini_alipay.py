"""The Alipay mini program: alipay.system.oauth.token with RSA2 signatures checked both ways, binding, errors as
problems, and the service-entry metadata with its icons."""

from __future__ import annotations

import base64
import io
import json
import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from PIL import Image

from catalog import service as catalog_service
from core.crypto import generate_rsa_key, rsa_verify
from core.resources import Resources
from miniapp_api.models import RESPONSE_BUDGET
from orgs.models import AdminPrincipal
from platforms.alipay import ALIPAY_APP_ID, AlipayGateway, response_node, sign_content
from simulators.alipay import sign_content as simulator_sign_content
from tests.harness import Stack
from tests.mini_helpers import ali_code, alipay_user


def login(http: httpx.Client, sim_url: str, user: str) -> httpx.Response:
    return http.post("/mini/v1/alipay/sessions", json={"auth_code": ali_code(sim_url, user)["auth_code"]})


def _register(sim_url: str, public_pem: str) -> str:
    r = httpx.post(f"{sim_url}/alipay/_sim/apps", json={"app_id": ALIPAY_APP_ID, "public_key_pem": public_pem})
    assert r.status_code == 200, r.text
    pem: str = r.json()["alipay_public_key_pem"]
    return pem


async def test_an_alipay_user_binds_once_and_signs_in_thereafter(
    http: httpx.Client, sim_url: str, res: Resources
) -> None:
    u = alipay_user(http, sim_url)
    assert u.subject.startswith("2088") and len(u.subject) == 16
    row = await res.db.fetchrow(
        "SELECT person_id, union_id, session_key_enc FROM identity.external_accounts WHERE subject = $1", u.subject
    )
    assert row is not None and row["person_id"] is not None and row["union_id"]  # open_id kept beside the user id
    assert row["session_key_enc"] is None
    r = login(http, sim_url, u.key)
    assert r.status_code == 200 and r.json()["status"] == "signed_in", r.text
    entry = http.post("/mini/v1/alipay/form-ids", json={"form_id": "MjA4Oabcdef0123456789"}, headers=u.headers)
    assert entry.status_code == 200 and entry.json() == {"available": 1}


def test_signing_strings_follow_alipay_rules() -> None:
    params = {"b": "2", "a": "1", "sign": "x", "empty": "", "biz_content": '{"k":"中文"}'}
    assert sign_content(params) == 'a=1&b=2&biz_content={"k":"中文"}'
    assert simulator_sign_content(params) == sign_content(params)  # two independent implementations agree
    text = '{"alipay_system_oauth_token_response": {"user_id":"2088", "n":{"a":[1,2]}},"sign":"abc"}'
    assert response_node(text, "alipay_system_oauth_token_response") == '{"user_id":"2088", "n":{"a":[1,2]}}'


async def test_our_request_signature_is_what_the_simulator_verifies(
    http: httpx.Client, sim_url: str, res: Resources, stack: Stack
) -> None:
    gateway = AlipayGateway(res)
    params = gateway.signed_params("alipay.system.oauth.token", {"grant_type": "authorization_code", "code": "c"})
    public = gateway.key.public_key()
    assert rsa_verify(public, base64.b64decode(params["sign"]), sign_content(params).encode())
    # The simulator holds another public key for our app id: our signatures no longer verify there.
    stranger = (
        generate_rsa_key(2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    ours = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _register(sim_url, stranger.decode())
    try:
        r = login(http, sim_url, "ali-signature")
        assert r.status_code == 502, r.text
        assert r.json()["type"] == "urn:szt:problem:alipay-signature-refused"
        assert "isv.invalid-signature" in r.json()["detail"]
    finally:
        _register(sim_url, ours.decode())
    assert login(http, sim_url, "ali-signature").status_code == 200


def test_a_tampered_response_is_refused(http: httpx.Client, sim_url: str) -> None:
    assert httpx.post(f"{sim_url}/alipay/_sim/fail", json={"count": 1, "mode": "tamper"}).status_code == 200
    r = login(http, sim_url, "ali-tamper")
    assert r.status_code == 502, r.text
    assert r.json()["type"] == "urn:szt:problem:alipay-response-unverified"
    # The same user with an untampered answer signs in (the first answer was refused, not half-used).
    ok = login(http, sim_url, "ali-tamper")
    assert ok.status_code == 200 and ok.json()["status"] == "binding_required"


def test_the_simulator_signs_its_answers(sim_url: str, res: Resources) -> None:
    gateway = AlipayGateway(res)
    public = gateway.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    alipay_key = serialization.load_pem_public_key(_register(sim_url, public.decode()).encode())
    code = ali_code(sim_url, "ali-raw")["auth_code"]
    params = gateway.signed_params("alipay.system.oauth.token", {"grant_type": "authorization_code", "code": code})
    text = httpx.post(f"{sim_url}/alipay/gateway.do", data=params).text
    node = response_node(text, "alipay_system_oauth_token_response")
    assert node is not None
    assert rsa_verify(alipay_key, base64.b64decode(json.loads(text)["sign"]), node.encode())  # type: ignore[arg-type]
    assert set(json.loads(node)) >= {"user_id", "open_id", "access_token", "expires_in", "refresh_token"}
    # A used code: error_response with Alipay's codes.
    again = json.loads(
        httpx.post(
            f"{sim_url}/alipay/gateway.do",
            data=gateway.signed_params("alipay.system.oauth.token", {"grant_type": "authorization_code", "code": code}),
        ).text
    )
    assert again["error_response"]["code"] == "40002"
    assert again["error_response"]["sub_code"] == "isv.code-invalid"


def test_alipay_errors_map_to_clear_problems(http: httpx.Client, sim_url: str) -> None:
    r = http.post("/mini/v1/alipay/sessions", json={"auth_code": "never-issued"})
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:szt:problem:alipay-code-invalid"
    assert r.json()["errors"][0]["field"] == "auth_code"
    assert httpx.post(f"{sim_url}/alipay/_sim/fail", json={"count": 1, "mode": "system_error"}).status_code == 200
    busy = login(http, sim_url, "ali-busy")
    assert busy.status_code == 503 and busy.json()["type"] == "urn:szt:problem:alipay-busy"
    assert busy.headers["retry-after"] == "5"


def entries(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10):
        page = http.get(
            "/mini/v1/alipay/service-entry", params={"limit": "20", **params, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        assert len(page.content) < RESPONSE_BUDGET
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pages never ended")


async def test_service_entry_lists_the_catalog_and_a_delisted_app_disappears(
    http: httpx.Client, res: Resources
) -> None:
    first = http.get("/mini/v1/alipay/service-entry", params={"limit": 5})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["app_id"] == ALIPAY_APP_ID and len(body["items"]) == 5 and body["next_cursor"] == "5"
    assert body["items"][0]["page"] == "pages/affairs/apply?app=app-01"
    listed = await catalog_service.listed_apps(res, region_code=None, channel="alipay")
    assert [i["page"].rsplit("=", 1)[1] for i in entries(http)] == [a.code for a in listed]
    for image in (body["logo"], body["items"][0]["icon"]):
        png = http.get(httpx.URL(image["url"]).path)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(png.content)) as img:
            assert img.size == (image["width"], image["height"])
    admin = AdminPrincipal(
        id=uuid.uuid4(),
        username="test-admin",
        org_id=uuid.uuid4(),
        org_path="320000",
        org_level="province",
        region_code="320000",
        data_scope="all",
        permissions=frozenset({"catalog.app.list"}),
        roles=("admin",),
    )
    await catalog_service.set_listing(res, admin, "app-12", False, "test: delisted")
    try:
        assert "pages/affairs/apply?app=app-12" not in {i["page"] for i in entries(http)}
    finally:
        await catalog_service.set_listing(res, admin, "app-12", True, "test: listed again")
    assert "pages/affairs/apply?app=app-12" in {i["page"] for i in entries(http, region="320500")}
    assert http.get("/mini/v1/icons/app-99.png").status_code == 404
    assert http.get("/mini/v1/alipay/service-entry", params={"cursor": "999"}).status_code == 400
