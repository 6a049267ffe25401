"""Protocol edges exactly as the standards say (issue 17), on the Litestar routes and on the fast path alike.

- client_secret_basic (RFC 6749 §2.3.1): the client form-urlencodes (Appendix B) its id and its secret before the
  Base64 of HTTP Basic, so the provider form-decodes them, at every endpoint a client authenticates at (token,
  introspection, revocation, PAR) and in the fast path's cached check. Clients here hold `-`, `_`, `.`, `~`, `%`, `+`,
  `:` and non-ASCII characters in id and secret; they authenticate through Authlib's OAuth2 client (an implementation
  we did not write; its maintainers ask callers to quote id and secret themselves, authlib/authlib#594) and by hand
  as openid-client encodes (`demo-portal` → `demo%2Dportal`) with a lower-case `basic` scheme (RFC 9110 §11.1).
- `acr_values_supported` lists every acr an ID token can carry.
- One algorithm name per key: the SM2 key's `alg` is the same at /identity/v1/keys and in the JWKS.

Which transport answered is seen in process: the identity app runs here behind the real OAuthFastPath with a spy on
the Litestar app, so a request that reaches the spy was answered by the route, one that does not by the fast path.
The first request of a header goes to the route (which checks the secret and remembers the header), later ones are
fast, as tests/test_oidc_fast.py shows with a stand-in route."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx
import jwt
import msgspec
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client

from core.lifespan import LifespanDriver
from core.resources import Resources
from identity import clients, people
from identity.api import create_app
from identity.oidc import grants, repo, tokens
from identity.oidc.authorization import ISSUED_ACRS, CodeGrant, code_key
from identity.oidc.fast import OAuthFastPath
from identity.oidc.jose import SM2_ALG
from identity.oidc.routes import ClientAuthForm, TokenForm
from identity.sessions import ACR_ORDER
from tests.identity_helpers import bearer, enrol, pick_citizen
from tests.oidc_helpers import REDIRECT, Flow, Portal, authorize_url, code_from, request_id
from tests.test_admin_monitoring import id_number

BASE = "http://identity.test"
ENTITLED = ["name_masked", "age_band", "over_18"]


def form_encode(text: str) -> str:
    """RFC 6749 Appendix B as openid-client (oauth4webapi) applies it: every UTF-8 byte but ASCII letters and digits
    percent-encoded."""
    return "".join(c if c.isascii() and c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def basic(client_id: str, secret: str, *, scheme: str = "basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{form_encode(client_id)}:{form_encode(secret)}".encode()).decode()


async def odd_portal(res: Resources, client_id: str, secret: str) -> Portal:
    made = await clients.create(
        res,
        client_id=client_id,
        name="边界字符门户",
        kind="portal",
        redirect_uris=[REDIRECT],
        entitlements=ENTITLED,
        secret=secret,
    )
    assert made.client.client_id == client_id
    return Portal(client_id, secret)


@pytest.fixture
async def odd(res: Resources) -> list[Portal]:
    h = secrets.token_hex(3)
    return [
        await odd_portal(res, f"边界-{h}_a.b~c", f"密钥-_.~:{secrets.token_urlsafe(12)}"),
        await odd_portal(res, f"p%41+q:{h}~é", f"s%2B+é:{secrets.token_urlsafe(12)}~_.-"),
    ]


class Spy:
    """In front of the Litestar app: counts the requests that reached the routes."""

    def __init__(self, app: Any) -> None:
        self.app, self.state, self.count = app, app.state, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.count += 1
        await self.app(scope, receive, send)


@dataclass
class Front:
    app: OAuthFastPath
    spy: Spy

    async def answered(self, call: Callable[[], Awaitable[Any]]) -> tuple[Any, str]:
        """The call's result and who answered it: "route" or "fast"."""
        before = self.spy.count
        result = await call()
        return result, "route" if self.spy.count > before else "fast"


@pytest.fixture
async def front(res: Resources) -> AsyncIterator[Front]:
    app = create_app(res.settings, resources=res)
    driver = LifespanDriver(app)
    await driver.startup()
    spy = Spy(app)
    yield Front(OAuthFastPath(spy, "identity"), spy)
    await driver.shutdown()


async def person(res: Resources) -> str:
    birth = f"19{secrets.randbelow(40) + 50}-0{secrets.randbelow(9) + 1}-1{secrets.randbelow(9)}"
    async with res.db.acquire() as conn:
        person_id, _ = await people.insert(
            res,
            conn,
            id_type="resident",
            id_number=id_number("320507", birth),
            name="边界",
            phone=f"137{secrets.randbelow(10**8):08d}",
            gender="female",
            birth_date=birth,
        )
    return str(person_id)


async def new_code(res: Resources, portal: Portal, person_id: str, flow: Flow) -> str:
    """A code as an approved authorization request leaves it (identity.oidc.authorization._grant)."""
    code = secrets.token_urlsafe(32)
    grant = CodeGrant(
        client_id=portal.client_id,
        redirect_uri=REDIRECT,
        person_id=person_id,
        scopes=["openid", "offline_access"],
        nonce=flow.nonce,
        code_challenge=flow.challenge,
        acr="wz",
        auth_time=int(time.time()),
        sid=f"sid-{uuid.uuid4().hex[:8]}",
        family=str(uuid.uuid4()),
    )
    await res.redis.set(code_key(code), msgspec.msgpack.encode(grant), ex=60)
    return code


def test_basic_credentials_are_form_decoded_after_base64() -> None:
    cid, secret = "边界-_.~%41+:x", "s%2B+é:~"
    for scheme in ("Basic", "basic", "BASIC", "bAsIc"):
        assert clients.basic_credentials(basic(cid, secret, scheme=scheme)) == (cid, secret)
    # One form-decoding, after the Base64: "+" is a space, "%41" an "A"; the raw id of a client that does not
    # encode decodes to itself when it holds only unreserved characters.
    raw = base64.b64encode(b"a+b%41:c%2Bd").decode()
    assert clients.basic_credentials(f"Basic {raw}") == ("a bA", "c+d")
    plain = base64.b64encode(b"demo-portal:s3_-.~").decode()
    assert clients.basic_credentials(f"Basic  {plain}") == ("demo-portal", "s3_-.~")
    assert clients.basic_credentials(f"Basic {basic('x', 'y').split()[1]}") == ("x", "y")
    for bad in ("Bearer abc", "Basic", "Basic !!", "Basicx " + plain, "Basic " + base64.b64encode(b"nocolon").decode()):
        assert clients.basic_credentials(bad) is None
    assert clients.basic_credentials("Basic " + base64.b64encode(b"a%FF:b").decode()) is None  # not UTF-8


async def test_every_endpoint_on_the_route_and_the_fast_path(res: Resources, front: Front, odd: list[Portal]) -> None:
    """Token (client credentials, code, refresh), introspection, revocation and PAR with ids and secrets holding
    reserved and non-ASCII characters, through Authlib and by hand with `basic`; token and introspection on the
    route (a header's first request) and on the fast path (later ones)."""
    transport = httpx.ASGITransport(app=front.app)
    person_id = await person(res)
    for portal in odd:
        await _every_endpoint(res, front, transport, portal, person_id)


async def _every_endpoint(
    res: Resources, front: Front, transport: httpx.ASGITransport, portal: Portal, person_id: str
) -> None:
    await repo.grant_consent(res.db, person_id, portal.client_id, ["openid", "offline_access"])
    rp = AsyncOAuth2Client(
        quote(portal.client_id, safe=""),
        quote(portal.secret, safe=""),
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
        transport=transport,
        base_url=BASE,
    )
    by_hand = httpx.AsyncClient(
        transport=transport, base_url=BASE, headers={"Authorization": basic(portal.client_id, portal.secret)}
    )
    async with rp, by_hand:

        async def authlib_cc() -> Any:
            return await rp.fetch_token(f"{BASE}/identity/token", grant_type="client_credentials", scope="eseal")

        async def hand_cc() -> Any:
            r = await by_hand.post("/identity/token", data={"grant_type": "client_credentials", "scope": "eseal"})
            assert r.status_code == 200, r.text
            return r.json()

        async def authlib_code(code: str, flow: Flow) -> Any:
            return await rp.fetch_token(
                f"{BASE}/identity/token",
                grant_type="authorization_code",
                code=code,
                redirect_uri=REDIRECT,
                code_verifier=flow.verifier,
            )

        async def hand_code(code: str, flow: Flow) -> Any:
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
            r = await by_hand.post("/identity/token", data={**form, "code_verifier": flow.verifier})
            assert r.status_code == 200, r.text
            return r.json()

        async def authlib_introspect(token: str) -> Any:
            r = await rp.introspect_token(f"{BASE}/identity/introspect", token=token)
            assert r.status_code == 200, r.text
            return r.json()

        async def hand_introspect(token: str) -> Any:
            r = await by_hand.post("/identity/introspect", data={"token": token})
            assert r.status_code == 200, r.text
            return r.json()

        ways = [
            ("authlib", authlib_cc, authlib_code, authlib_introspect),
            ("basic by hand", hand_cc, hand_code, hand_introspect),
        ]
        for way, cc, redeem, introspect in ways:
            clients._basic_ok.clear()  # as in a new process: no header authenticated yet
            first, by = await front.answered(cc)
            assert by == "route" and first["scope"] == "eseal", way
            second, by = await front.answered(cc)
            assert by == "fast" and second["scope"] == "eseal", way
            seen, by = await front.answered(partial(introspect, second["access_token"]))
            assert by == "fast" and seen["active"] is True and seen["client_id"] == portal.client_id, way

            clients._basic_ok.clear()
            seen, by = await front.answered(partial(introspect, first["access_token"]))
            assert by == "route" and seen["active"] is True and seen["client_id"] == portal.client_id, way

            clients._basic_ok.clear()
            for expected in ("route", "fast"):
                flow = Flow()
                code = await new_code(res, portal, person_id, flow)
                answer, by = await front.answered(partial(redeem, code, flow))
                assert by == expected, way
                claims = jwt.decode(answer["id_token"], options={"verify_signature": False})
                assert claims["aud"] == portal.client_id and claims["nonce"] == flow.nonce, way
                assert answer["refresh_token"], way

        # Refresh, revocation and PAR have no fast path: the route, with the same decoding.
        refreshed = await rp.refresh_token(f"{BASE}/identity/token", refresh_token=answer["refresh_token"])
        assert refreshed["refresh_token"] != answer["refresh_token"]
        revoked = await rp.revoke_token(f"{BASE}/identity/revoke", token=refreshed["access_token"])
        assert revoked.status_code == 200, revoked.text
        assert (await authlib_introspect(refreshed["access_token"])) == {"active": False}
        flow = Flow()
        par_form = {
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "code_challenge": flow.challenge,
            "code_challenge_method": "S256",
        }
        for pushed in (
            await rp.post("/identity/par", data=par_form, auth=rp.client_auth("client_secret_basic")),
            await by_hand.post("/identity/par", data=par_form),
        ):
            assert pushed.status_code == 201, pushed.text
            assert pushed.json()["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
        hand_revoke = await by_hand.post("/identity/revoke", data={"token": second["access_token"]})
        assert hand_revoke.status_code == 200

        # The wrong secret is refused on both transports (the fast path never saw it authenticate).
        wrong = {"Authorization": basic(portal.client_id, portal.secret + "x")}
        for _ in range(2):
            r = await by_hand.post("/identity/token", data={"grant_type": "client_credentials"}, headers=wrong)
            assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        # Sent unencoded, an id and secret of unreserved and non-ASCII characters decode to themselves; with `+` or
        # `%2B` they do not (a space, a "+"): the decoding is applied, once.
        raw = {"Authorization": "Basic " + base64.b64encode(f"{portal.client_id}:{portal.secret}".encode()).decode()}
        r = await by_hand.post("/identity/token", data={"grant_type": "client_credentials"}, headers=raw)
        survives = unquote_plus(portal.client_id) == portal.client_id and unquote_plus(portal.secret) == portal.secret
        assert r.status_code == (200 if survives else 401)


async def test_authlib_code_flow_over_http(http: httpx.Client, sim_url: str, res: Resources) -> None:
    """The served provider, as an integrator meets it: a client whose id and secret hold reserved and non-ASCII
    characters runs the code flow with Authlib (client_secret_basic), then introspects, revokes and pushes a request;
    client credentials twice (the second on the served fast path)."""
    h = secrets.token_hex(3)
    portal = await odd_portal(res, f"门户:{h}-_.~%+", f"秘:{secrets.token_urlsafe(10)}%+~")
    session = enrol(http, sim_url, pick_citizen(sim_url))["session"]
    assert isinstance(session, dict)
    meta = http.get("/identity/.well-known/openid-configuration").json()
    flow = Flow()
    approved = http.post(
        f"/bff/v1/auth-requests/{request_id(http, authorize_url(portal.client_id, flow))}/approve",
        headers=bearer(session),
        json={},
    )
    assert approved.status_code == 200, approved.text
    with OAuth2Client(
        quote(portal.client_id, safe=""),
        quote(portal.secret, safe=""),
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
    ) as rp:
        token = rp.fetch_token(
            meta["token_endpoint"],
            grant_type="authorization_code",
            code=code_from(approved.json()["redirect_to"]),
            redirect_uri=REDIRECT,
            code_verifier=flow.verifier,
        )
        claims = jwt.decode(token["id_token"], options={"verify_signature": False})
        assert claims["aud"] == portal.client_id and claims["acr"] in meta["acr_values_supported"]
        for _ in range(2):
            cc = rp.fetch_token(meta["token_endpoint"], grant_type="client_credentials", scope="codes:verify")
            assert cc["scope"] == "codes:verify"
        seen = rp.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
        assert seen["active"] is True and seen["client_id"] == portal.client_id
        assert rp.revoke_token(meta["revocation_endpoint"], token=token["access_token"]).status_code == 200
        assert rp.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json() == {
            "active": False
        }
        pushed = rp.post(
            meta["pushed_authorization_request_endpoint"],
            data={"response_type": "code", "redirect_uri": REDIRECT, "scope": "openid"},
            auth=rp.client_auth("client_secret_basic"),
        )
        assert pushed.status_code == 201, pushed.text
    lower = http.post(
        "/identity/introspect",
        data={"token": cc["access_token"]},
        headers={"Authorization": basic(portal.client_id, portal.secret, scheme="basic")},
    )
    assert lower.status_code == 200 and lower.json()["active"] is True


def test_discovery_lists_every_acr_issued(http: httpx.Client) -> None:
    acrs = http.get("/identity/.well-known/openid-configuration").json()["acr_values_supported"]
    assert "sms" in acrs  # the portal's SMS login (identity.oidc.authorization.approve_by_sms)
    assert set(acrs) == set(ISSUED_ACRS)
    # Every session acr that may approve a request (a 网证 sign-in or above), and the face step-ups.
    assert {a for a, rank in ACR_ORDER.items() if rank >= ACR_ORDER["wz"]} <= set(acrs)
    assert {"wz+face", "wz+pin+face"} <= set(acrs)


def test_one_algorithm_name_per_key(http: httpx.Client) -> None:
    published = http.get("/identity/v1/keys").json()["keys"]
    jwks = {k["kid"]: k for k in http.get("/identity/jwks").json()["keys"]}
    assert published
    for key in published:
        assert key["alg"] == SM2_ALG == "SM2"  # the `alg` SM2 ID tokens carry (docs/integration.md)
        same = jwks[key["kid"]]
        assert (same["alg"], same["crv"], same["x"], same["y"]) == (key["alg"], key["crv"], key["x"], key["y"])


def test_the_token_form_holds_every_grants_fields() -> None:
    """The route's form and the grants' declared parameters are one list (identity.oidc.grants)."""
    auth = set(ClientAuthForm.__struct_fields__)
    assert auth == grants.CLIENT_AUTH_PARAMETERS
    assert set(TokenForm.__struct_fields__) == grants.TOKEN_FIELDS | auth
    assert tokens.INTROSPECTION_PARAMETERS == {"token", "token_type_hint"}
