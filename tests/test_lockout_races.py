"""Attempt counters under a concurrent burst (DESIGN: count and decide in one atomic step): 50 wrong secrets at once,
over real HTTP, from many loopback addresses (so the per-address limits do not hide a missing per-account lock),
then the right secret once the limit's worth of answers are back. Judged like a sequence: only the first
`limit` wrong ones are even compared, every later one — and the right one — is refused as locked."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from core.reqsig import sign_headers
from core.resources import Resources
from eseal import seals
from identity.credentials import pin as pin_rules
from identity.credentials import sms as sms_rules
from orgs import service as org_service
from orgs import totp
from tests.admin_helpers import platform_admin, sign_in
from tests.eseal_helpers import bureau, make_pdf
from tests.identity_helpers import Citizen, enrol, pick_citizen, sign, sms_code

WRONG = 50
Call = Callable[[], Awaitable[httpx.Response]]


@pytest.fixture
async def pool(base_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """HTTP clients on 17 source addresses of 127.0.0.0/8 (fresh ones each test): ≤ 3 sign-ins per address."""
    net = f"127.{random.randrange(1, 255)}.{random.randrange(0, 255)}"
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base_url,
                    timeout=60,
                    transport=httpx.AsyncHTTPTransport(local_address=f"{net}.{i}"),
                )
            )
            for i in range(1, 18)
        ]
        yield clients


async def burst(wrong: list[Call], right: Call, limit: int) -> tuple[list[httpx.Response], httpx.Response]:
    """All wrong attempts at once; the right one as soon as `limit` of them have been answered (others in flight)."""
    answered = 0
    gate = asyncio.Event()

    async def attempt(call: Call) -> httpx.Response:
        nonlocal answered
        r = await call()
        answered += 1
        if answered >= limit:
            gate.set()
        return r

    async def then_right() -> httpx.Response:
        await gate.wait()
        return await right()

    *answers, last = await asyncio.gather(*(attempt(c) for c in wrong), then_right())
    return answers, last


def kinds(answers: list[httpx.Response]) -> Counter[str]:
    return Counter(f"{r.status_code} {r.json().get('type', '').rsplit(':', 1)[-1]}" for r in answers)


def wrong_pin(right: str) -> str:
    while (p := f"{random.randrange(10**8):08d}") == right:
        pass
    return p


async def test_pin_burst_locks_and_refuses_the_right_pin(
    http: httpx.Client, sim_url: str, pool: list[httpx.AsyncClient]
) -> None:
    citizen = pick_citizen(sim_url)
    right_pin = "73519482"
    enrolled = enrol(http, sim_url, citizen, pin=right_pin)
    serial = str(enrolled["credential"]["serial"])  # type: ignore[index]

    async def prepared(client: httpx.AsyncClient, c: Citizen, pin: str) -> Call:
        chal = (await client.post("/bff/v1/challenges")).json()  # each attempt with its own challenge
        body = {
            "method": "credential",
            "serial": serial,
            "challenge_id": chal["challenge_id"],
            "signature": sign(c.device, chal["challenge"]),
            "pin": pin,
        }
        return lambda: client.post("/bff/v1/sessions", json=body)

    calls = await asyncio.gather(*(prepared(pool[i % len(pool)], citizen, wrong_pin(right_pin)) for i in range(WRONG)))
    right = await prepared(pool[-1], citizen, right_pin)
    answers, last = await burst(list(calls), right, pin_rules.MAX_FAILURES)

    assert last.status_code == 403 and last.json()["type"].endswith(":pin-locked"), last.text
    seen = kinds(answers)
    assert seen == {"422 pin-wrong": pin_rules.MAX_FAILURES, "403 pin-locked": WRONG - pin_rules.MAX_FAILURES}, seen
    again = await (await prepared(pool[-2], citizen, right_pin))()
    assert again.status_code == 403 and again.json()["type"].endswith(":pin-locked")


async def test_sms_code_burst_kills_the_code_before_the_right_one(
    http: httpx.Client, sim_url: str, pool: list[httpx.AsyncClient]
) -> None:
    citizen = pick_citizen(sim_url)
    enrol(http, sim_url, citizen)
    code = sms_code(http, sim_url, citizen.phone, "sign_in")

    def attempt(client: httpx.AsyncClient, given: str) -> Call:
        body = {"method": "sms", "phone": citizen.phone, "sms_code": given}
        return lambda: client.post("/bff/v1/sessions", json=body)

    guesses = [f"{(int(code) + 1 + i) % 10**6:06d}" for i in range(WRONG)]
    answers, last = await burst(
        [attempt(pool[i % len(pool)], g) for i, g in enumerate(guesses)], attempt(pool[-1], code), sms_rules.TRIES
    )

    assert last.status_code == 422 and last.json()["type"].endswith(":sms-code-expired"), last.text
    seen = kinds(answers)
    assert seen == {
        "422 sms-code-wrong": sms_rules.TRIES - 1,
        "422 sms-code-exhausted": 1,
        "422 sms-code-expired": WRONG - sms_rules.TRIES,
    }, seen


async def test_seal_password_burst_locks_and_refuses_the_right_password(
    res: Resources, base_url: str, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局网安支队")
    user = f"user-{secrets.token_hex(4)}"
    await seals.grant(res, b.seal.id, "user", user, actor="admin")
    await seals.set_password(res, user, "印章密码-2026")
    pdf = base64.b64encode(make_pdf(tmp_path / "in.pdf").read_bytes()).decode()
    path = "/eseal/v1/documents:sign"

    def attempt(client: httpx.AsyncClient, password: str) -> Call:
        payload = {
            "document": pdf,
            "seals": [{"seal_code": b.seal.code, "x": 300, "y": 300}],
            "user_id": user,
            "seal_password": password,
        }
        body = json.dumps(payload).encode()
        headers = sign_headers("X-App-Code", b.app_code, b.app_secret.encode(), "POST", path, body)
        return lambda: client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        wrong = [attempt(client, f"guess-{i:04d}") for i in range(WRONG)]
        answers, last = await burst(wrong, attempt(client, "印章密码-2026"), seals.LOCK_AFTER)
        assert last.status_code == 423 and last.json()["type"].endswith(":seal-password-locked"), last.text
        seen = kinds(answers)
        assert seen == {
            "403 seal-password-wrong": seals.LOCK_AFTER,
            "423 seal-password-locked": WRONG - seals.LOCK_AFTER,
        }, seen
        again = await attempt(client, "印章密码-2026")()
        assert again.status_code == 423


def new_admin(http: httpx.Client, var_dir: Path) -> tuple[str, str]:
    boss = platform_admin(http, var_dir)
    username, password = "race" + secrets.token_hex(4), secrets.token_urlsafe(12)
    r = http.post(
        "/admin/v1/admins",
        headers=boss,
        json={
            "username": username,
            "password": password,
            "display_name": "并发测试",
            "org_code": "320500",
            "roles": ["org_admin"],
        },
    )
    assert r.status_code == 201, r.text
    return username, password


def admin_attempt(client: httpx.AsyncClient, username: str, password: str, **extra: str) -> Call:
    body = {"username": username, "password": password, **extra}
    return lambda: client.post("/admin/v1/sessions", json=body)


async def test_admin_password_burst_locks_and_refuses_the_right_password(
    http: httpx.Client, var_dir: Path, pool: list[httpx.AsyncClient]
) -> None:
    username, password = new_admin(http, var_dir)
    wrong = [admin_attempt(pool[i % len(pool)], username, f"wrong-{i:04d}") for i in range(WRONG)]
    answers, last = await burst(wrong, admin_attempt(pool[-1], username, password), org_service.MAX_FAILURES)

    assert last.status_code == 423 and last.json()["type"].endswith(":account-locked"), last.text
    seen = kinds(answers)
    assert seen == {
        "401 bad-credentials": org_service.MAX_FAILURES,
        "423 account-locked": WRONG - org_service.MAX_FAILURES,
    }, seen
    assert (await admin_attempt(pool[-2], username, password)()).status_code == 423


async def test_admin_totp_burst_locks_and_refuses_the_right_code(
    http: httpx.Client, var_dir: Path, pool: list[httpx.AsyncClient]
) -> None:
    username, password = new_admin(http, var_dir)
    h = sign_in(http, username, password)
    secret = http.post("/admin/v1/me/totp", headers=h).json()["secret"]
    r = http.post("/admin/v1/me/totp/confirm", headers=h, json={"code": totp.code_at(secret)})
    assert r.status_code == 204, r.text
    right = totp.code_at(secret, at=time.time() + 30)  # the next step's code: not the one just used
    guesses = [f"{(int(right) + 1 + i) % 10**6:06d}" for i in range(WRONG)]
    wrong = [admin_attempt(pool[i % len(pool)], username, password, totp=g) for i, g in enumerate(guesses)]
    right_one = admin_attempt(pool[-1], username, password, totp=right)
    answers, last = await burst(wrong, right_one, org_service.MAX_FAILURES)

    assert last.status_code == 423 and last.json()["type"].endswith(":account-locked"), last.text
    seen = kinds(answers)
    assert seen == {
        "401 totp-invalid": org_service.MAX_FAILURES,
        "423 account-locked": WRONG - org_service.MAX_FAILURES,
    }, seen
