"""Idempotency-Key semantics (core.idempotency) on the running server: only executed, successful answers of a caller
with credentials are stored, encrypted; refusals are never replayed; 409 in progress carries Retry-After; keys are
capped per caller. And the embedded Redis and PostgreSQL files are for their owner only."""

from __future__ import annotations

import secrets
import stat
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import post
from litestar.params import JSONBody

from core.app import build_app
from core.idempotency import idempotent
from core.resources import Resources
from tests.admin_helpers import make_admin, platform_admin
from tests.identity_helpers import capture, device_public, pick_citizen, sms_code


def role_body(code: str | None = None) -> dict[str, object]:
    return {
        "code": code or f"idem{secrets.token_hex(3)}",
        "name": "幂等测试",
        "org_code": "320500",
        "data_scope": "own",
        "permissions": ["orgs.admin.list"],
    }


async def idem_values(res: Resources, key: str) -> list[bytes]:
    out = []
    async for name in res.redis.scan_iter(match=f"idem:*:{key}"):
        value = await res.redis.get(name)
        if value is not None:
            out.append(value if isinstance(value, bytes) else value.encode())
    return out


@pytest.fixture(scope="module")
def boss(http: httpx.Client, var_dir: Path) -> dict[str, str]:
    return platform_admin(http, var_dir)


async def test_anonymous_401_is_not_stored_nor_replayed(http: httpx.Client, res: Resources) -> None:
    key = uuid.uuid4().hex
    for _ in range(2):
        r = http.post("/admin/v1/roles", json=role_body(), headers={"Idempotency-Key": key})
        assert r.status_code == 401, r.text
        assert "idempotent-replayed" not in r.headers  # today: the first 401 replayed for 24 h
    assert await idem_values(res, key) == []


async def test_forbidden_is_not_stored_nor_replayed(http: httpx.Client, boss: dict[str, str], res: Resources) -> None:
    viewer_role = http.post("/admin/v1/roles", headers=boss, json=role_body())
    assert viewer_role.status_code == 201, viewer_role.text
    viewer_id, _, viewer = make_admin(http, boss, "320500", [viewer_role.json()["code"]], prefix="iv")
    key = uuid.uuid4().hex
    body = role_body()
    r = http.post("/admin/v1/roles", json=body, headers={**viewer, "Idempotency-Key": key})
    assert r.status_code == 403, r.text
    assert await idem_values(res, key) == []
    again = http.post("/admin/v1/roles", json=body, headers={**viewer, "Idempotency-Key": key})
    assert again.status_code == 403 and "idempotent-replayed" not in again.headers  # today: replayed
    assert await idem_values(res, key) == []
    assert viewer_id


async def test_validation_failure_does_not_burn_the_key(
    http: httpx.Client, boss: dict[str, str], res: Resources
) -> None:
    key = uuid.uuid4().hex
    bad = http.post(
        "/admin/v1/roles", json={**role_body(), "data_scope": "galaxy"}, headers={**boss, "Idempotency-Key": key}
    )
    assert bad.status_code == 400
    assert await idem_values(res, key) == []
    fixed = http.post("/admin/v1/roles", json=role_body(), headers={**boss, "Idempotency-Key": key})
    assert fixed.status_code == 201, fixed.text  # today: 422, the key is taken by the stored 400


async def test_success_is_stored_encrypted_and_replayed(
    http: httpx.Client, boss: dict[str, str], res: Resources
) -> None:
    key = uuid.uuid4().hex
    body = role_body()
    first = http.post("/admin/v1/roles", json=body, headers={**boss, "Idempotency-Key": key})
    again = http.post("/admin/v1/roles", json=body, headers={**boss, "Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    [stored] = await idem_values(res, key)
    assert stored.startswith(b"v1.")  # an SM4-GCM field token (core.fieldcrypt)
    assert str(body["code"]).encode() not in stored and b"201" not in stored
    # Another caller with the same key is another key.
    other = http.post("/admin/v1/roles", json=body, headers={"Idempotency-Key": key})
    assert other.status_code == 401 and "idempotent-replayed" not in other.headers


async def test_enrolment_tokens_never_reach_redis_in_clear(http: httpx.Client, sim_url: str, res: Resources) -> None:
    # Today: an enrolment sent with an Idempotency-Key keeps its live access and refresh tokens in clear in Redis.
    c = pick_citizen(sim_url)
    key = uuid.uuid4().hex
    body = {
        "name": c.name,
        "id_number": c.id_number,
        "phone": c.phone,
        "sms_code": sms_code(http, sim_url, c.phone, "enrol"),
        "face_capture": capture(sim_url, c.id_number),
        "device": {"public_key": device_public(c.device), "platform": "android", "name": "Mate 60"},
    }
    r = http.post("/bff/v1/enrolments", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    session = r.json()["session"]
    access, refresh = session["access_token"].encode(), session["refresh_token"].encode()
    async for name in res.redis.scan_iter(match="idem:*"):
        value = await res.redis.get(name) or b""
        assert access not in value and refresh not in value
    assert await idem_values(res, key) == []  # no credentials: nothing is stored


def test_concurrent_retries_run_once_and_409_carries_retry_after(http: httpx.Client, boss: dict[str, str]) -> None:
    # Creating an administrator hashes a password (scrypt, ~50 ms): the retries arrive while the first runs.
    key = uuid.uuid4().hex
    body = {
        "username": f"ic{secrets.token_hex(4)}",
        "password": secrets.token_urlsafe(12),
        "display_name": "并发测试",
        "org_code": "320500",
        "roles": ["org_admin"],
        "phone": "13900001111",
    }

    n = 12
    clients = [httpx.Client(base_url=str(http.base_url), timeout=30) for _ in range(n)]
    for c in clients:
        assert c.get("/admin/healthz").status_code == 200  # connections open before the burst
    start = threading.Barrier(n)

    def one(c: httpx.Client) -> httpx.Response:
        start.wait()
        return c.post("/admin/v1/admins", json=body, headers={**boss, "Idempotency-Key": key})

    try:
        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(one, clients))
    finally:
        for c in clients:
            c.close()
    codes = sorted(r.status_code for r in answers)
    assert set(codes) <= {201, 409}, codes
    created = {r.json()["id"] for r in answers if r.status_code == 201}
    assert len(created) == 1, codes
    busy = [r for r in answers if r.status_code == 409]
    assert busy, codes
    for r in busy:
        assert r.json()["type"] == "urn:szt:problem:idempotency-in-progress"
        assert int(r.headers["retry-after"]) >= 1


counter = iter(range(1, 1_000_000))


class Order(msgspec.Struct):
    item: str


@post("/v1/orders", middleware=[idempotent()], status_code=201)
async def place(data: JSONBody[Order]) -> dict[str, object]:
    return {"number": next(counter), "item": data.item}


@pytest.fixture
async def capped(res: Resources) -> AsyncIterator[httpx.AsyncClient]:
    settings = msgspec.structs.replace(res.settings, idempotency_keys_per_caller=3)
    app = build_app("t", settings=settings, title="t", description="t", route_handlers=[place], resources=res)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:  # type: ignore[arg-type]
        yield c


async def test_keys_are_capped_per_caller(capped: httpx.AsyncClient) -> None:
    me = {"Authorization": f"Bearer cap-{uuid.uuid4().hex}"}
    codes = [
        (await capped.post("/t/v1/orders", json={"item": "tea"}, headers={**me, "Idempotency-Key": uuid.uuid4().hex}))
        for _ in range(4)
    ]
    assert [r.status_code for r in codes] == [201, 201, 201, 429]
    assert codes[-1].json()["type"] == "urn:szt:problem:idempotency-keys-exhausted"
    assert "retry-after" in codes[-1].headers
    # Another caller is not affected; a request without a key neither.
    other = {"Authorization": f"Bearer cap-{uuid.uuid4().hex}"}
    r = await capped.post("/t/v1/orders", json={"item": "tea"}, headers={**other, "Idempotency-Key": "k1"})
    assert r.status_code == 201
    assert (await capped.post("/t/v1/orders", json={"item": "tea"}, headers=me)).status_code == 201


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_embedded_redis_and_postgres_files_are_owner_only(stack: object, var_dir: Path) -> None:
    # Today: the Redis append-only file is 0644, world-readable.
    redis_dir, pg_dir = var_dir / "redis", var_dir / "pg"
    assert _mode(redis_dir) == 0o700 and _mode(pg_dir) == 0o700
    files = [p for p in (*redis_dir.rglob("*"), *pg_dir.rglob("*")) if p.is_file() and not p.is_symlink()]
    assert any(p.name.startswith("appendonly") for p in files)
    loose = [(str(p), oct(_mode(p))) for p in files if _mode(p) & 0o077]
    assert loose == []
