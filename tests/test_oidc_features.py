"""Provider features beyond the basic flow: network zones, SM2 ID tokens, private_key_jwt, PAR, back-channel
logout, SMS login for portals, and the /demo portal with QR login followed by server-sent events."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from core.resources import Resources
from core.signed import b64u_decode
from identity.oidc.jose import SM2Algorithm
from tests.harness import Stack
from tests.identity_helpers import Citizen, bearer, capture, credential_sign_in, enrol, pick_citizen, sms_code
from tests.oidc_helpers import REDIRECT, Flow, approve, code_from, get_code, make_portal, redeem, request_id
from tests.oidc_helpers import authorize_url as auth_url


@pytest.fixture(scope="module")
def citizen(http: httpx.Client, sim_url: str) -> tuple[Citizen, dict[str, object]]:
    c = pick_citizen(sim_url)
    return c, enrol(http, sim_url, c)


def credential_session(http: httpx.Client, c: Citizen, serial: str) -> dict[str, str]:
    r = credential_sign_in(http, c, serial)
    assert r.status_code == 201, r.text
    assert r.json()["acr"] == "wz"
    return bearer(r.json())


async def test_police_network_clients_require_face(
    http: httpx.Client, sim_url: str, res: Resources, citizen: tuple[Citizen, dict[str, object]]
) -> None:
    c, enrolled = citizen
    cred = enrolled["credential"]
    assert isinstance(cred, dict)
    app_auth = credential_session(http, c, cred["serial"])  # acr "wz": no face yet
    police = await make_portal(res, zone="police")
    flow = Flow()
    rid = request_id(http, auth_url(police.client_id, flow))
    shown = http.get(f"/bff/v1/auth-requests/{rid}", headers=app_auth).json()
    assert shown["acr_required"] == "wz+face" and shown["face_required"] is True
    refused = approve(http, rid, app_auth)
    assert refused.status_code == 422 and refused.json()["type"] == "urn:szt:problem:face-required"
    ok = approve(http, rid, app_auth, face_capture=capture(sim_url, c.id_number))
    assert ok.status_code == 200, ok.text
    tokens = redeem(http, police, code_from(ok.json()["redirect_to"]), flow).json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["acr"] == "wz+face"


async def test_sm2_signed_id_tokens(
    http: httpx.Client, res: Resources, base_url: str, citizen: tuple[Citizen, dict[str, object]]
) -> None:
    session = citizen[1]["session"]
    assert isinstance(session, dict)
    portal = await make_portal(res, id_token_alg="SM2")
    flow = Flow()
    tokens = redeem(http, portal, get_code(http, portal, bearer(session), flow), flow).json()
    header = jwt.get_unverified_header(tokens["id_token"])
    assert header["alg"] == "SM2"
    key = next(k for k in httpx.get(f"{base_url}/identity/jwks").json()["keys"] if k["kid"] == header["kid"])
    assert key["crv"] == "SM2"
    head, payload, sig = tokens["id_token"].split(".")
    assert SM2Algorithm().verify(f"{head}.{payload}".encode(), SM2Algorithm.from_jwk(key), b64u_decode(sig))
    # and with pure-Python gmssl, given only the JWK
    from gmssl import sm2

    xy = (b64u_decode(key["x"]) + b64u_decode(key["y"])).hex()
    crypt = sm2.CryptSM2(private_key="", public_key=xy, mode=1)
    crypt.public_key = xy
    assert crypt.verify_with_sm3(b64u_decode(sig).hex(), f"{head}.{payload}".encode())
    assert json.loads(b64u_decode(payload))["aud"] == portal.client_id


async def test_private_key_jwt_and_par(
    http: httpx.Client, res: Resources, base_url: str, citizen: tuple[Citizen, dict[str, object]]
) -> None:
    session = citizen[1]["session"]
    assert isinstance(session, dict)
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}
    portal = await make_portal(res, auth_method="private_key_jwt", jwks={"keys": [jwk]})
    token_url = f"{base_url}/identity/token"

    def assertion(aud: str) -> dict[str, str]:
        now = int(time.time())
        signed = jwt.encode(
            {
                "iss": portal.client_id,
                "sub": portal.client_id,
                "aud": aud,
                "iat": now,
                "exp": now + 60,
                "jti": uuid.uuid4().hex,
            },
            key,
            algorithm="ES256",
            headers={"kid": "k1"},
        )
        return {
            "client_id": portal.client_id,
            "client_assertion": signed,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        }

    flow = Flow()
    pushed = http.post(
        "/identity/par",
        data={
            **assertion(f"{base_url}/identity/par"),
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "openid age",
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": flow.challenge,
            "code_challenge_method": "S256",
        },
    )
    assert pushed.status_code == 201, pushed.text
    rid = request_id(
        http,
        "/identity/authorize?"
        + httpx.QueryParams({"client_id": portal.client_id, "request_uri": pushed.json()["request_uri"]}).__str__(),
    )
    code = code_from(approve(http, rid, bearer(session)).json()["redirect_to"])
    body = {
        **assertion(token_url),
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": flow.verifier,
    }
    ok = http.post("/identity/token", data=body)
    assert ok.status_code == 200, ok.text
    replayed = http.post("/identity/token", data={**body, "code": "x" * 43})  # same assertion (same jti)
    assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"
    used = http.get(
        "/identity/authorize?"
        + httpx.QueryParams({"client_id": portal.client_id, "request_uri": pushed.json()["request_uri"]}).__str__(),
        headers={"Accept": "application/json"},
    )
    assert used.status_code == 400  # a request_uri is used once


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        _Receiver.received.append(parse_qs(body)["logout_token"][0])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_backchannel_logout(
    http: httpx.Client, res: Resources, stack: Stack, citizen: tuple[Citizen, dict[str, object]]
) -> None:
    base_url, port = stack.base_url, stack.peer_port  # the one loopback port the outbound guard admits
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = citizen[1]["session"]
        assert isinstance(session, dict)
        portal = await make_portal(res, backchannel_logout_uri=f"http://127.0.0.1:{port}/bcl")
        flow = Flow()
        tokens = redeem(http, portal, get_code(http, portal, bearer(session), flow), flow).json()
        r = http.get("/identity/logout", params={"id_token_hint": tokens["id_token"]})
        assert r.status_code == 200
        assert len(_Receiver.received) == 1
        keys = jwt.PyJWKClient(f"{base_url}/identity/jwks")
        logout = jwt.decode(
            _Receiver.received[0],
            keys.get_signing_key_from_jwt(_Receiver.received[0]).key,
            algorithms=["ES256"],
            audience=portal.client_id,
        )
        assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
        assert logout["sid"] == jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
    finally:
        server.shutdown()


def test_demo_portal_qr_login_with_server_sent_events(
    http: httpx.Client, base_url: str, citizen: tuple[Citizen, dict[str, object]]
) -> None:
    session = citizen[1]["session"]
    assert isinstance(session, dict)
    with httpx.Client(base_url=base_url, timeout=15) as browser:
        page = browser.get("/demo/login", follow_redirects=True)
        assert page.status_code == 200 and "<svg" in page.text and "苏证通" in page.text
        rid = re.search(r"Request ([0-9a-f]{32})", page.text)
        assert rid
        # Someone who only saw the QR code cannot follow the request.
        assert httpx.get(f"{base_url}/identity/authorize/{rid[1]}/events").status_code == 404
        approved = approve(http, rid[1], bearer(session))
        assert approved.status_code == 200
        events = browser.get(f"/identity/authorize/{rid[1]}/events").text
        outcome = json.loads(next(line[5:] for line in events.splitlines() if line.startswith("data:")))
        assert outcome["status"] == "approved"
        final = browser.get(outcome["redirect_to"].replace(base_url, ""))
        assert final.status_code == 200, (final.text, outcome)
        assert "age_band" in final.text and citizen[0].name not in final.text  # masked name only


async def test_sms_login_for_portals(
    http: httpx.Client, sim_url: str, base_url: str, res: Resources, citizen: tuple[Citizen, dict[str, object]]
) -> None:
    c = citizen[0]
    portal = await make_portal(res)
    flow = Flow()
    with httpx.Client(base_url=base_url, timeout=15) as browser:
        page = browser.get(auth_url(portal.client_id, flow))
        rid = re.search(r"Request ([0-9a-f]{32})", page.text)
        assert rid
        sent = browser.post(f"/identity/authorize/{rid[1]}/sms-code", json={"phone": c.phone})
        assert sent.status_code == 202, sent.text
        outbox = httpx.get(f"{sim_url}/sms/_sim/outbox", params={"phone": c.phone}).json()["items"]
        code = outbox[0]["params"]["code"]
        stranger = httpx.post(
            f"{base_url}/identity/authorize/{rid[1]}/sms-login", json={"phone": c.phone, "sms_code": code}
        )
        assert stranger.status_code == 404  # not the browser that opened the page
        done = browser.post(f"/identity/authorize/{rid[1]}/sms-login", json={"phone": c.phone, "sms_code": code})
        assert done.status_code == 200, done.text
    tokens = redeem(http, portal, code_from(done.json()["redirect_to"]), flow).json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["acr"] == "sms"
    police = await make_portal(res, zone="police")
    with httpx.Client(base_url=base_url, timeout=15) as browser:
        page = browser.get(auth_url(police.client_id, Flow()))
        rid = re.search(r"Request ([0-9a-f]{32})", page.text)
        assert rid
        refused = browser.post(f"/identity/authorize/{rid[1]}/sms-code", json={"phone": c.phone})
        assert refused.status_code == 403
    _ = (sms_code, urlparse)
