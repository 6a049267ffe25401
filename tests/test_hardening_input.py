"""Bad bytes refused at the edge (core.edge): control characters, invalid UTF-8, deep nesting and oversized
integers answer a 400 problem naming the field, on the running server over real HTTP — never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from litestar import post
from litestar.params import JSONBody

from core.app import build_app
from core.resources import Resources
from tests.admin_helpers import platform_admin

PROBLEM = "application/problem+json"


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"] == "urn:szt:problem:validation"
    assert body["request_id"]
    assert [e["field"] for e in body["errors"]] == [field], body


@pytest.fixture(scope="module")
def admin(http: httpx.Client, var_dir: Path) -> dict[str, str]:
    return platform_admin(http, var_dir)


def test_nul_in_a_json_field_is_a_400_naming_it(http: httpx.Client) -> None:
    # Today: asyncpg CharacterNotInRepertoireError -> 500.
    r = http.post("/admin/v1/sessions", json={"username": "ad\x00min", "password": "x" * 12})
    _refused(r, "username")


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f"])
def test_control_characters_in_nested_json_fields_are_refused(http: httpx.Client, char: str) -> None:
    body = {"name": "张三", "device": {"name": f"Mate{char}60", "platform": "android", "public_key": "x"}}
    r = http.post("/bff/v1/enrolments", json=body)
    _refused(r, "device.name")


def test_control_characters_in_keys_and_arrays_are_named(http: httpx.Client) -> None:
    r = http.post("/bff/v1/enrolments", json={"items": ["ok", "b\x00d"]})
    _refused(r, "items[1]")
    r = http.post("/bff/v1/enrolments", json={"k\x00": 1})
    _refused(r, "k\\u0000")


def test_tab_newline_and_return_are_allowed(http: httpx.Client) -> None:
    # Allowed characters reach the handler, which judges the request on its merits (here: wrong password).
    r = http.post("/admin/v1/sessions", json={"username": "a\tb\nc\r", "password": "x" * 12})
    assert r.status_code in (400, 401, 423), r.text
    assert all("control" not in e["message"] for e in r.json().get("errors", []))


def test_escaped_backslash_before_u0000_is_not_a_nul(http: httpx.Client) -> None:
    raw = b'{"username": "a\\\\u0000b", "password": "xxxxxxxxxxxx"}'  # the text a\u0000b, six visible characters
    r = http.post("/admin/v1/sessions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (401, 423), r.text


def test_deep_nesting_is_a_400_not_a_recursion_error(http: httpx.Client) -> None:
    # Today: RecursionError -> 500.
    raw = b"[" * 1000 + b"]" * 1000
    r = http.post("/bff/v1/enrolments", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"].startswith("[0][0]")
    assert "nest" in r.json()["errors"][0]["message"]


def test_nesting_within_the_limit_is_judged_by_the_handler(http: httpx.Client) -> None:
    raw = b'{"device": ' + b"[" * 20 + b"]" * 20 + b"}"
    r = http.post("/bff/v1/enrolments", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert all("nest" not in e["message"] for e in r.json()["errors"])


def test_invalid_utf8_in_a_json_body_is_refused(http: httpx.Client) -> None:
    raw = b'{"username": "\xff\xfeadmin", "password": "xxxxxxxxxxxx"}'
    r = http.post("/admin/v1/sessions", content=raw, headers={"content-type": "application/json"})
    _refused(r, "body")
    assert "UTF-8" in r.json()["errors"][0]["message"]


def test_oversized_integer_is_refused(http: httpx.Client) -> None:
    raw = b'{"username": "admin", "password": "xxxxxxxxxxxx", "totp": 1' + b"0" * 40 + b"}"
    r = http.post("/admin/v1/sessions", content=raw, headers={"content-type": "application/json"})
    _refused(r, "totp")


def test_json_body_without_a_json_content_type_is_checked_too(http: httpx.Client) -> None:
    r = http.post("/admin/v1/sessions", content=b'{"username": "a\\u0000", "password": "x"}')
    _refused(r, "username")


def test_nul_in_a_query_parameter_is_a_400_naming_it(http: httpx.Client, admin: dict[str, str]) -> None:
    # Today: every text filter of the log searches -> 500.
    for name in ("username", "action", "ip", "target", "reason"):
        r = http.get("/admin/v1/logs/operations", params={name: "x\x00y"}, headers=admin)
        _refused(r, name)
    r = http.get("/admin/v1/logs/integrations", params={"detail": "x\x00y"}, headers=admin)
    _refused(r, "detail")


def test_invalid_utf8_in_a_query_parameter_is_refused(http: httpx.Client, admin: dict[str, str]) -> None:
    r = http.get("/admin/v1/logs/operations?username=%ff%fe", headers=admin)
    _refused(r, "username")


def test_oversized_integer_in_a_query_parameter_is_refused(http: httpx.Client, admin: dict[str, str]) -> None:
    r = http.get("/admin/v1/logs/operations", params={"limit": "9" * 40}, headers=admin)
    assert r.status_code == 400, r.text
    assert r.status_code < 500


def test_nul_in_a_form_field_is_a_400_naming_it(http: httpx.Client) -> None:
    # Today: the console's sign-in form -> 500.
    r = http.post("/admin/login", data={"username": "ad\x00min", "password": "x" * 12})
    _refused(r, "username")


def test_nul_in_admin_registration_display_name(http: httpx.Client) -> None:
    r = http.post(
        "/admin/v1/admin-registrations",
        json={"username": "nulreg1", "password": "Passw0rd!Passw0rd", "display_name": "张\x00三", "org_code": "x"},
    )
    _refused(r, "display_name")


def test_clean_requests_still_pass(http: httpx.Client, admin: dict[str, str]) -> None:
    r = http.get("/admin/v1/logs/operations", params={"username": "admin", "limit": 5}, headers=admin)
    assert r.status_code == 200, r.text


def test_oversized_integer_in_a_json_body_reaching_the_database(http: httpx.Client, sim_url: str) -> None:
    # Today: a draft's `revision` of 10**30 goes to PostgreSQL as a bigint -> 500.
    from tests.identity_helpers import bearer, enrol, pick_citizen

    session = enrol(http, sim_url, pick_citizen(sim_url))["session"]
    assert isinstance(session, dict)
    raw = b'{"form": {"move_to": "320505"}, "revision": 1' + b"0" * 30 + b"}"
    r = http.put(
        "/bff/v1/affairs/drafts/app-17",
        content=raw,
        headers={**bearer(session), "content-type": "application/json"},
    )
    _refused(r, "revision")
    assert r.headers["cache-control"] == "no-store"


async def test_a_value_the_database_refuses_is_a_400_not_a_500(res: Resources) -> None:
    # The net behind the edge: input it does not inspect (a multipart field) refused by PostgreSQL.
    @post("/v1/echo")
    async def echo(data: JSONBody[dict[str, str]], res: Resources) -> dict[str, str]:
        return {"v": await res.db.fetchval("SELECT $1::text", data["v"])}

    app = build_app("t", settings=res.settings, title="t", description="t", route_handlers=[echo], resources=res)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:  # type: ignore[arg-type]
        r = await c.post("/t/v1/echo", json={"v": "a\x00b"})  # in-process: no edge in front
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "urn:szt:problem:invalid-data"
        assert (await c.post("/t/v1/echo", json={"v": "ab"})).json() == {"v": "ab"}
