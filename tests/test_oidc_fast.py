"""The OAuth hot paths (identity/oidc/fast.py): the plain case is answered without the Litestar route and with the
route's rules (stored token, rate-limit counters, response shape); anything else reaches the route with its body
intact. Over HTTP, the fast answers are the same as the route's."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Coroutine, MutableMapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest

from core import audit
from core.resources import Resources
from identity import clients, people
from identity.oidc import tokens
from identity.oidc.authorization import CodeGrant, code_key
from identity.oidc.fast import OAuthFastPath
from identity.oidc.jose import verify_own_jwt
from tests.harness import inside_one_window
from tests.test_admin_monitoring import id_number


class Inner:
    """Stands for the Litestar app: records what reached it (and the body it could read)."""

    def __init__(self, res: Resources) -> None:
        self.state = SimpleNamespace(resources=res)
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            m = await receive()
            body, more = body + m.get("body", b""), m.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"route"})


@pytest.fixture
async def res_client(res: Resources) -> tuple[str, str]:
    client_id, secret = f"fast-{secrets.token_hex(3)}", secrets.token_urlsafe(24)
    await clients.create(res, client_id=client_id, name="核验终端", kind="verifier", secret=secret)
    return client_id, secret


async def call(app: OAuthFastPath, path: str, body: bytes, auth: str, ip: str = "127.0.0.9") -> tuple[int, bytes]:
    chunks = [body[:5], body[5:]]  # in two pieces, as a server may deliver it
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        piece = chunks.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "client": (ip, 5000),
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"authorization", auth.encode()),
        ],
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def portal_and_person(res: Resources, prefix: str) -> tuple[clients.Client, str]:
    """A new portal client and a new enrolled person to issue its tokens for."""
    portal_id = f"{prefix}-{secrets.token_hex(3)}"
    await clients.create(res, client_id=portal_id, name="门户", kind="portal", secret=secrets.token_urlsafe(16))
    client = await clients.get(res, portal_id)
    assert client is not None
    birth = f"19{secrets.randbelow(40) + 50}-0{secrets.randbelow(9) + 1}-1{secrets.randbelow(9)}"
    async with res.db.acquire() as conn:
        person, _ = await people.insert(
            res,
            conn,
            id_type="resident",
            id_number=id_number("320505", birth),
            name="签发",
            phone=f"13{secrets.randbelow(10**9):09d}",
            gender="male",
            birth_date=birth,
        )
    return client, person


async def issue(
    res: Resources, portal: clients.Client, person: str, family: str = "", scopes: tuple[str, ...] = ()
) -> tokens.TokenResponse:
    """Tokens as a code redemption issues them (identity.oidc.tokens._issue), without an ID token."""
    return await tokens._issue(
        res,
        portal,
        person_id=str(person),
        scopes=list(scopes or ("openid", "offline_access")),
        acr="wz",
        sid="s",
        auth_time=int(time.time()),
        nonce="",
        family=family or str(uuid.uuid4()),
        ip="127.0.0.1",
        with_id=False,
    )


async def test_plain_cases_answered_fast_with_the_routes_rules(res: Resources, res_client: tuple[str, str]) -> None:
    client_id, secret = res_client
    auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    inner = Inner(res)
    app = OAuthFastPath(inner, "identity")
    inside_one_window(60)  # the counters below are per minute

    # Not yet authenticated in this process: the route answers, with the body as sent.
    form = b"grant_type=client_credentials&scope=codes%3Averify+nonsense"
    assert await call(app, "/identity/token", form, auth) == (299, b"route")
    assert inner.bodies == [form]

    await clients.authenticate_basic(res, auth)  # what the route does on the first request
    status, body = await call(app, "/identity/token", form, auth)
    assert status == 200 and len(inner.bodies) == 1
    answer = json.loads(body)
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == tokens.ACCESS_TTL
    assert answer["scope"] == "codes:verify"  # only what client credentials grant
    stored = await tokens.lookup(res, answer["access_token"])
    assert stored is not None and stored.client_id == client_id and stored.scopes == ["codes:verify"]

    status, body = await call(app, "/identity/introspect", f"token={answer['access_token']}".encode(), auth)
    seen = json.loads(body)
    assert status == 200 and seen["active"] is True and seen["client_id"] == client_id
    assert seen["scope"] == "codes:verify" and seen["exp"] == stored.exp
    assert await call(app, "/identity/introspect", b"token=oat_unknown", auth) == (200, b'{"active":false}')

    # Other grants, unexpected or repeated fields, a wrong secret: the route decides, with the body intact.
    for other in (
        b"grant_type=refresh_token&refresh_token=x",
        b"grant_type=client_credentials&client_id=x",
        b"grant_type=client_credentials&grant_type=client_credentials",
    ):
        assert await call(app, "/identity/token", other, auth) == (299, b"route")
        assert inner.bodies[-1] == other
    wrong = "Basic " + base64.b64encode(f"{client_id}:wrong".encode()).decode()
    assert await call(app, "/identity/token", form, wrong) == (299, b"route")

    # The per-client limit counts fast requests too; over it, the route answers (with its 429).
    window = int(time.time()) // 60
    key = f"rl:oidc-client:{client_id}:{window}"
    before = int(await res.redis.get(key) or 0)
    assert before == 3  # the two fast token calls and the introspection counted; the refused ones were not fast
    await res.redis.set(key, res.settings.oidc_rate_per_client, ex=61)
    routed = len(inner.bodies)
    assert await call(app, "/identity/token", form, auth) == (299, b"route")
    assert len(inner.bodies) == routed + 1


def test_fast_answers_equal_the_routes_over_http(http: httpx.Client, res_client: tuple[str, str]) -> None:
    client_id, secret = res_client
    first = http.post("/identity/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    second = http.post("/identity/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    for r in (first, second):
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
        assert r.headers["content-type"].startswith("application/json")
    assert set(first.json()) == set(second.json()) == {"access_token", "token_type", "expires_in", "scope"}
    seen = http.post("/identity/introspect", data={"token": second.json()["access_token"]}, auth=(client_id, secret))
    assert seen.json()["active"] is True and seen.json()["client_id"] == client_id
    bad = http.post("/identity/token", data={"grant_type": "client_credentials"}, auth=(client_id, "wrong"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


async def test_concurrent_issuance_is_committed_in_batches_and_all_audited(res: Resources) -> None:
    """Tokens issued together share commits (the group-commit writer) yet each has its refresh row and its own
    audit entry, and the chain stays intact."""
    portal, person = await portal_and_person(res, "gc")
    portal_id = portal.client_id
    before = await res.db.fetchval("SELECT seq FROM core.audit_head")
    answers = await asyncio.gather(*(issue(res, portal, person) for _ in range(40)))
    hashes = [bytes.fromhex(hashlib.sha256(a.refresh_token.encode()).hexdigest()) for a in answers if a.refresh_token]
    assert len(hashes) == 40
    stored = await res.db.fetchval("SELECT count(*) FROM identity.oidc_refresh WHERE token_hash = ANY($1)", hashes)
    assert stored == 40
    issued = await res.db.fetchval(
        "SELECT count(*) FROM core.audit_log WHERE seq > $1 AND action = 'identity.token.issue' AND actor = $2",
        before,
        f"client:{portal_id}",
    )
    assert issued == 40
    assert await audit.verify(res.db) == []


async def test_code_redemption_answered_fast_only_when_everything_matches(res: Resources) -> None:
    """A code whose client, redirect URI and PKCE verifier match is redeemed by the fast layer (tokens stored,
    refresh row and audit entry committed, ID token verifiable); an unknown, used or mismatched code reaches the
    route untouched, and the rate-limit counts it took are given back (the route's guard counts it then)."""
    portal_id, secret = f"fc-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    await clients.create(
        res, client_id=portal_id, name="门户", kind="portal", secret=secret, redirect_uris=["https://p.example/cb"]
    )
    auth = "Basic " + base64.b64encode(f"{portal_id}:{secret}".encode()).decode()
    await clients.authenticate_basic(res, auth)
    async with res.db.acquire() as conn:
        person, _ = await people.insert(
            res,
            conn,
            id_type="resident",
            id_number=id_number("320506", "1991-03-04"),
            name="快速",
            phone=f"136{secrets.randbelow(10**8):08d}",
            gender="female",
            birth_date="1991-03-04",
        )
    verifier = secrets.token_urlsafe(48)

    async def new_code() -> tuple[str, CodeGrant]:
        code = secrets.token_urlsafe(32)
        grant = CodeGrant(
            client_id=portal_id,
            redirect_uri="https://p.example/cb",
            person_id=str(person),
            scopes=["openid", "offline_access"],
            nonce="n-1",
            code_challenge=tokens.pkce_s256(verifier),
            acr="wz",
            auth_time=int(time.time()),
            sid="sid-1",
            family=str(uuid.uuid4()),
        )
        await res.redis.set(code_key(code), msgspec.msgpack.encode(grant), ex=60)
        return code, grant

    def form(code: str, **over: str) -> bytes:
        fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://p.example/cb"}
        fields["code_verifier"] = verifier
        return urlencode({**fields, **over}).encode()

    inner = Inner(res)
    app = OAuthFastPath(inner, "identity")
    inside_one_window(60)
    counter = f"rl:oidc-client:{portal_id}:{int(time.time()) // 60}"
    code, grant = await new_code()
    before_seq = await res.db.fetchval("SELECT seq FROM core.audit_head")
    status, body = await call(app, "/identity/token", form(code), auth)
    assert status == 200 and inner.bodies == []
    answer = json.loads(body)
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope", "id_token", "refresh_token"}
    stored = await tokens.lookup(res, answer["access_token"])
    assert stored is not None and stored.person_id == str(person) and stored.family == grant.family
    access_key = f"oat:{hashlib.sha256(answer['access_token'].encode()).hexdigest()}"
    assert await res.redis.sismember(f"ofam:{grant.family}", access_key)
    claims = await verify_own_jwt(res, answer["id_token"], audience=portal_id)
    assert claims["sub"] == stored.sub and claims["nonce"] == "n-1" and claims["sid"] == "sid-1"
    refresh_hash = bytes.fromhex(hashlib.sha256(answer["refresh_token"].encode()).hexdigest())
    assert await res.db.fetchval("SELECT family FROM identity.oidc_refresh WHERE token_hash = $1", refresh_hash) == (
        uuid.UUID(grant.family)
    )
    assert (
        await res.db.fetchval(
            "SELECT count(*) FROM core.audit_log WHERE seq > $1 AND action = 'identity.token.issue' AND actor = $2",
            before_seq,
            f"client:{portal_id}",
        )
        == 1
    )
    assert await res.redis.get(code_key(code)) == f"used:{grant.family}".encode()
    assert int(await res.redis.get(counter) or 0) == 1

    # Replayed: the route answers (and revokes the family); the fast layer took no count.
    assert await call(app, "/identity/token", form(code), auth) == (299, b"route")
    assert inner.bodies[-1] == form(code)
    # Wrong verifier, wrong redirect URI, unknown code: the route decides, the fresh code is not consumed.
    fresh, _ = await new_code()
    kept = await res.redis.get(code_key(fresh))
    for bad in (
        form(fresh, code_verifier=secrets.token_urlsafe(48)),
        form(fresh, redirect_uri="https://p.example/other"),
        form(secrets.token_urlsafe(32)),
    ):
        assert await call(app, "/identity/token", bad, auth) == (299, b"route")
        assert inner.bodies[-1] == bad
    assert await res.redis.get(code_key(fresh)) == kept
    assert int(await res.redis.get(counter) or 0) == 1


async def test_a_replay_during_the_write_revokes_what_the_batch_writes(res: Resources) -> None:
    """A replayed code is refused and its family revoked while the first redemption's tokens may still be on their
    way to the stores: the writer checks the family's revocation mark after its commit, stores no access token of a
    revoked family and revokes the refresh row it just committed. Without that check both would stay valid."""
    portal, person = await portal_and_person(res, "rv")
    family = str(uuid.uuid4())
    await tokens.revoke_family(res, family, "code replay")  # the replay got in first
    answer = await issue(res, portal, person, family)
    assert await tokens.lookup(res, answer.access_token) is None
    assert answer.refresh_token is not None
    refresh_hash = bytes.fromhex(hashlib.sha256(answer.refresh_token.encode()).hexdigest())
    revoked_at = await res.db.fetchval(
        "SELECT revoked_at FROM identity.oidc_refresh WHERE token_hash = $1", refresh_hash
    )
    assert revoked_at is not None
    # Another family in the same process is untouched.
    other = await issue(res, portal, person, scopes=("openid",))
    assert await tokens.lookup(res, other.access_token) is not None


async def test_two_writers_and_other_audit_entries_keep_one_intact_chain(res: Resources) -> None:
    """Two processes' issue writers (each its own pool and remembered head) and ordinary audit entries appending at
    once: a writer whose head is stale appends nothing, reads the head and retries, so every entry is stored once
    and the chain verifies."""
    other = await Resources.open(res.settings)
    try:
        portal, person = await portal_and_person(res, "tw")
        before = await res.db.fetchval("SELECT seq FROM core.audit_head")

        work: list[Coroutine[Any, Any, object]] = [issue(res if i % 2 else other, portal, person) for i in range(60)]
        work += [audit.record(res.db, actor="test", action="test.interleaved", target=str(i)) for i in range(10)]
        answers = [a for a in await asyncio.gather(*work) if isinstance(a, tokens.TokenResponse)]
        assert tokens._writer(res) is not tokens._writer(other)
        hashes = [
            bytes.fromhex(hashlib.sha256(a.refresh_token.encode()).hexdigest()) for a in answers if a.refresh_token
        ]
        assert len(hashes) == 60
        stored = await res.db.fetch("SELECT scopes FROM identity.oidc_refresh WHERE token_hash = ANY($1)", hashes)
        assert len(stored) == 60 and all(list(r["scopes"]) == ["openid", "offline_access"] for r in stored)
        for a in answers:
            assert await tokens.lookup(res, a.access_token) is not None
        added = await res.db.fetchval("SELECT count(*) FROM core.audit_log WHERE seq > $1", before)
        assert added == 70
        assert await res.db.fetchval("SELECT seq FROM core.audit_head") == before + 70
        assert await audit.verify(res.db) == []
    finally:
        await other.close()
