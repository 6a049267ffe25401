"""The authorisation matrix: every role is refused outside its permissions and its data scope. A city
administrator never sees or changes another city's data; nobody grants more than they hold."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admin_helpers import make_admin, platform_admin
from tests.test_admin_orgs import PDF, apply


@dataclass
class World:
    h: dict[str, dict[str, str]] = field(default_factory=dict)  # actor -> headers
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(http: httpx.Client, var_dir: Path) -> World:
    w = World()
    boss = platform_admin(http, var_dir)
    w.h["platform"] = boss
    w.ids["sz_admin"], _, w.h["suzhou"] = make_admin(http, boss, "320500", ["org_admin"], prefix="mx")
    w.ids["nj_admin"], _, w.h["nanjing"] = make_admin(http, boss, "320100", ["org_admin"], prefix="mx")
    w.ids["county_admin"], _, w.h["county"] = make_admin(http, boss, "320505", ["org_admin"], prefix="mx")
    w.ids["sys_admin"], _, w.h["system_sz"] = make_admin(http, boss, "320500", ["system"], prefix="mx")
    role = http.post(
        "/admin/v1/roles",
        headers=boss,
        json={
            "code": f"viewer{secrets.token_hex(2)}",
            "name": "只读",
            "org_code": "320500",
            "data_scope": "own",
            "permissions": ["orgs.admin.list"],
        },
    )
    assert role.status_code == 201, role.text
    w.ids["viewer"], _, w.h["viewer"] = make_admin(http, boss, "320500", [role.json()["code"]], prefix="mx")
    w.h["anonymous"] = {}
    for city, parent in (("sz", "320505"), ("nj", "320102")):
        r = apply(http, parent, f"{parent}-m{secrets.token_hex(3)}", [("a.pdf", PDF, "application/pdf")])
        assert r.status_code == 201, r.text
        w.ids[f"{city}_app"] = r.json()["id"]
        w.ids[f"{city}_doc"] = r.json()["documents"][0]["id"]
    return w


def new_admin(org: str, roles: list[str] | None = None) -> dict[str, Any]:
    return {
        "username": "m" + secrets.token_hex(4),
        "password": secrets.token_urlsafe(12),
        "display_name": "矩阵",
        "org_code": org,
        "roles": roles or [],
    }


# (actor, method, path, body, expected status). Paths name ids of the world in braces.
CASES: list[tuple[str, str, str, Any, int]] = [
    # no session at all
    *[
        ("anonymous", m, p, None, 401)
        for m, p in [
            ("GET", "/admin/v1/me"),
            ("GET", "/admin/v1/admins"),
            ("GET", "/admin/v1/orgs"),
            ("GET", "/admin/v1/org-applications"),
            ("GET", "/admin/v1/roles"),
            ("POST", "/admin/v1/org-applications/{sz_app}/review"),
        ]
    ],
    # a city administrator and another city's data
    ("suzhou", "GET", "/admin/v1/admins/{nj_admin}", None, 404),
    ("suzhou", "POST", "/admin/v1/admins/{nj_admin}/disable", None, 403),  # org_admin may not disable at all
    ("system_sz", "POST", "/admin/v1/admins/{nj_admin}/disable", None, 404),
    ("suzhou", "PUT", "/admin/v1/admins/{nj_admin}/roles", {"roles": ["org_admin"]}, 404),
    ("suzhou", "POST", "/admin/v1/admins", new_admin("320100"), 403),
    ("suzhou", "GET", "/admin/v1/orgs?parent=320100", None, 403),
    ("suzhou", "GET", "/admin/v1/org-applications/{nj_app}", None, 404),
    ("suzhou", "GET", "/admin/v1/org-applications/{nj_app}/documents/{nj_doc}", None, 404),
    ("suzhou", "POST", "/admin/v1/org-applications/{nj_app}/review", {"decision": "approve"}, 404),
    (
        "suzhou",
        "POST",
        "/admin/v1/roles",
        {"code": "x1", "name": "x", "org_code": "320100", "data_scope": "own", "permissions": []},
        403,
    ),
    ("nanjing", "GET", "/admin/v1/admins/{sz_admin}", None, 404),
    ("nanjing", "GET", "/admin/v1/org-applications/{sz_app}/documents/{sz_doc}", None, 404),
    ("system_sz", "GET", "/admin/v1/admins/{nj_admin}", None, 404),
    ("system_sz", "POST", "/admin/v1/org-applications/{nj_app}/review", {"decision": "approve"}, 404),
    # a county administrator and its city's own level
    ("county", "GET", "/admin/v1/admins/{sz_admin}", None, 404),
    ("county", "POST", "/admin/v1/admins", new_admin("320500"), 403),
    ("county", "GET", "/admin/v1/orgs?parent=320500", None, 403),
    # no escalation: roles and scopes beyond one's own
    ("suzhou", "POST", "/admin/v1/admins", new_admin("320505", ["platform"]), 403),
    ("suzhou", "POST", "/admin/v1/admins", new_admin("320505", ["system"]), 403),
    (
        "suzhou",
        "POST",
        "/admin/v1/roles",
        {"code": "wide", "name": "x", "org_code": "320500", "data_scope": "all", "permissions": []},
        403,
    ),
    (
        "suzhou",
        "POST",
        "/admin/v1/roles",
        {"code": "more", "name": "x", "org_code": "320500", "data_scope": "subtree", "permissions": ["logs.export"]},
        403,
    ),
    ("suzhou", "PUT", "/admin/v1/admins/{sz_admin}/roles", {"roles": ["org_admin"]}, 403),
    # a custom role holding one permission, scope own
    ("viewer", "POST", "/admin/v1/admins", new_admin("320500"), 403),
    ("viewer", "GET", "/admin/v1/orgs", None, 403),
    ("viewer", "GET", "/admin/v1/org-applications", None, 403),
    ("viewer", "GET", "/admin/v1/admins/{county_admin}", None, 404),
    ("viewer", "POST", "/admin/v1/org-applications/{sz_app}/review", {"decision": "approve"}, 403),
    ("viewer", "GET", "/admin/v1/roles", None, 403),
    # the positive controls: in scope and permitted
    ("viewer", "GET", "/admin/v1/admins/{sz_admin}", None, 200),
    ("county", "GET", "/admin/v1/org-applications/{sz_app}/documents/{sz_doc}", None, 200),
    ("suzhou", "GET", "/admin/v1/admins/{county_admin}", None, 200),
    ("platform", "GET", "/admin/v1/admins/{nj_admin}", None, 200),
]


@pytest.mark.parametrize(("actor", "method", "path", "body", "expected"), CASES, ids=lambda v: str(v)[:40])
def test_matrix(world: World, http: httpx.Client, actor: str, method: str, path: str, body: Any, expected: int) -> None:
    url = path.format(**world.ids)
    r = http.request(method, url, headers=world.h[actor], json=body)
    assert r.status_code == expected, f"{actor} {method} {url}: {r.status_code} {r.text[:300]}"
    if expected >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("actor", ["suzhou", "nanjing", "county", "viewer", "system_sz"])
def test_lists_stay_in_scope(world: World, http: httpx.Client, actor: str) -> None:
    me = http.get("/admin/v1/me", headers=world.h[actor]).json()
    own, scope = me["org_path"], me["data_scope"]

    def inside(path: str) -> bool:
        return path == own if scope == "own" else path == own or path.startswith(own + ".")

    admins = http.get("/admin/v1/admins", headers=world.h[actor], params={"limit": 100})
    assert admins.status_code == 200
    assert admins.json()["items"] and all(inside(a["org_path"]) for a in admins.json()["items"])
    if "orgs.org.list" in me["permissions"]:
        orgs = http.get("/admin/v1/orgs", headers=world.h[actor], params={"limit": 100}).json()["items"]
        assert orgs and all(inside(o["path"]) for o in orgs)
        apps = http.get("/admin/v1/org-applications", headers=world.h[actor], params={"limit": 100}).json()["items"]
        assert all(inside(a["parent_path"]) for a in apps)
