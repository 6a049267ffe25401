"""Problem documents, rate limits and Idempotency-Key handling, on a small app built with the real factory."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from litestar import get, post
from litestar.params import JSONBody

from core.app import build_app
from core.idempotency import idempotent
from core.ratelimit import rate_limit
from core.resources import Resources
from tests.harness import inside_one_window

counter = itertools.count(1)


class Order(msgspec.Struct):
    item: str
    quantity: int


class Placed(msgspec.Struct):
    number: int
    item: str


@post("/v1/orders", middleware=[idempotent()], status_code=201)
async def place(data: JSONBody[Order]) -> Placed:
    return Placed(number=next(counter), item=data.item)


@get("/v1/limited", guards=[rate_limit(3, 60, key=lambda c: c.headers.get("x-test-key", "-"))], sync_to_thread=False)
def limited() -> dict[str, str]:
    return {"ok": "yes"}


@get("/v1/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@pytest.fixture
async def client(res: Resources) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        "t", settings=res.settings, title="t", description="t", route_handlers=[place, limited, boom], resources=res
    )
    # In this event loop (the shared resources are bound to it); lifespan is not needed: resources are given.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/t/v1/orders", json={"item": "x", "quantity": "many"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == "urn:szt:problem:validation"
    assert body["title_zh"] == "请求参数无效"
    assert any("quantity" in e["field"] or "quantity" in e["message"] for e in body["errors"]), body


async def test_unhandled_error_is_a_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    r = await client.get("/t/v1/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["type"] == "urn:szt:problem:internal"
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert "request_id" in body


async def test_body_size_is_capped(client: httpx.AsyncClient, res: Resources) -> None:
    r = await client.post(
        "/t/v1/orders",
        content=b"{" + b" " * (res.settings.max_body_bytes + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["type"] == "urn:szt:problem:payload-too-large"


async def test_rate_limit_answers_429_with_retry_after(client: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    inside_one_window(60)
    codes = [(await client.get("/t/v1/limited", headers={"x-test-key": key})).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    r = await client.get("/t/v1/limited", headers={"x-test-key": key})
    assert r.json()["type"] == "urn:szt:problem:rate-limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    other = await client.get("/t/v1/limited", headers={"x-test-key": uuid.uuid4().hex})
    assert other.status_code == 200


# Answers are stored only for a caller with credentials (DESIGN.md, issue 21): these callers send a bearer token.
CALLER = {"Authorization": "Bearer caller-1"}


async def test_idempotency_key_replays_the_first_response(client: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    headers = {"Idempotency-Key": key, **CALLER}
    first = await client.post("/t/v1/orders", json={"item": "tea", "quantity": 1}, headers=headers)
    again = await client.post("/t/v1/orders", json={"item": "tea", "quantity": 1}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    fresh = await client.post(
        "/t/v1/orders", json={"item": "tea", "quantity": 1}, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert fresh.json()["number"] != first.json()["number"]
    no_key = await client.post("/t/v1/orders", json={"item": "tea", "quantity": 1})
    assert no_key.json()["number"] not in (first.json()["number"], fresh.json()["number"])


async def test_idempotency_key_reused_for_another_request_is_refused(client: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    headers = {"Idempotency-Key": key, **CALLER}
    await client.post("/t/v1/orders", json={"item": "tea", "quantity": 1}, headers=headers)
    r = await client.post("/t/v1/orders", json={"item": "coffee", "quantity": 2}, headers=headers)
    assert r.status_code == 422
    assert r.json()["type"] == "urn:szt:problem:idempotency-key-reused"


async def test_idempotency_keys_are_scoped_per_caller(client: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    a = await client.post(
        "/t/v1/orders",
        json={"item": "tea", "quantity": 1},
        headers={"Idempotency-Key": key, "Authorization": "Bearer a"},
    )
    b = await client.post(
        "/t/v1/orders",
        json={"item": "tea", "quantity": 1},
        headers={"Idempotency-Key": key, "Authorization": "Bearer b"},
    )
    assert a.json()["number"] != b.json()["number"]


async def test_failed_request_does_not_burn_the_key(client: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    headers = {"Idempotency-Key": key, **CALLER}
    bad = await client.post("/t/v1/orders", json={"item": "tea"}, headers=headers)
    assert bad.status_code == 400
    # A validation failure is never stored (issue 21): a retry is judged again, and the key still serves the
    # corrected request.
    again = await client.post("/t/v1/orders", json={"item": "tea"}, headers=headers)
    assert again.status_code == 400 and again.headers.get("idempotent-replayed") is None
    fixed = await client.post("/t/v1/orders", json={"item": "tea", "quantity": 1}, headers=headers)
    assert fixed.status_code == 201
