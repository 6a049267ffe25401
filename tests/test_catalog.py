"""Catalog rules: onboarding, review by the right level, concurrent review, versions, client credentials, health."""

from __future__ import annotations

import asyncio
import io
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image

from catalog import jobs, repo, service
from catalog.models import Application, Review
from core.problems import ProblemError
from core.resources import Resources
from orgs.models import AdminPrincipal
from tests.catalog_helpers import codes_in, home, home_once
from tests.harness import Stack


def Admin(org_path: str, org_level: str, region_code: str, data_scope: str = "subtree") -> AdminPrincipal:
    return AdminPrincipal(
        id=uuid.uuid4(),
        username="t",
        org_id=uuid.uuid4(),
        org_path=org_path,
        org_level=org_level,
        region_code=region_code,
        data_scope=data_scope,
        permissions=frozenset({"*"}),
        roles=("system",),
    )


PLATFORM = Admin("320000", "province", "320000", "all")
PROVINCE = Admin("320000", "province", "320000")
SUZHOU = Admin("320000.320500", "city", "320500")
NANJING = Admin("320000.320100", "city", "320100")
GAOXIN = Admin("320000.320500.320505", "county", "320505")  # 苏州高新区分局: applies, 苏州 reviews


def png(side: int = 256, colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, "PNG")
    return out.getvalue()


def application(res: Resources, **over: Any) -> Application:
    fields: dict[str, Any] = {
        "name": "苏州高新区犬只登记",
        "category": "治安",
        "kind": "h5",
        "entry_path": "https://example.invalid/dog",
        "icon_digest": service.store_icon(res, png()).digest,
        "channels": ["ios", "android", "harmony"],
        "regions": ["320500"],
        "scopes": ["openid", "profile"],
        "redirect_uris": ["https://example.invalid/cb"],
    }
    fields.update(over)
    return Application(**fields)


def on_home(http: httpx.Client, city: str, code: str, present: bool = True) -> None:
    home_once(http, city, lambda b: (code in codes_in(b)) == present)


def test_icons_are_checked_by_content_and_resized(res: Resources) -> None:
    ref = service.store_icon(res, png(300))
    assert set(ref.urls) == {"48", "96", "144", "192"}
    from catalog import icons

    with Image.open(icons.path_for(res.settings.var_path, ref.digest, 48)) as img:
        assert img.size == (48, 48) and img.format == "PNG"
    jpeg = io.BytesIO()
    Image.new("RGB", (200, 200)).save(jpeg, "JPEG")
    for bad, why in [
        (jpeg.getvalue(), "not a PNG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "readable"),
        (png(40), "sides"),
        (png(2100)[:10] + b"x", "readable"),
    ]:
        with pytest.raises(ProblemError) as err:
            service.store_icon(res, bad)
        assert err.value.errors[0].field == "icon" and why in err.value.detail
    wide = io.BytesIO()
    Image.new("RGB", (400, 200)).save(wide, "PNG")
    with pytest.raises(ProblemError, match="square"):
        service.store_icon(res, wide.getvalue())


async def test_regions_and_review_levels(res: Resources) -> None:
    with pytest.raises(ProblemError) as err:
        await service.apply(res, GAOXIN, application(res, regions=["320100"]))  # another city
    assert err.value.errors[0].field == "regions"
    with pytest.raises(ProblemError):
        await service.apply(res, PROVINCE, application(res, regions=["320000", "320500"]))
    with pytest.raises(ProblemError) as err:
        await service.apply(res, GAOXIN, application(res, redirect_uris=[]))
    assert err.value.errors[0].field == "redirect_uris"
    v = await service.apply(res, GAOXIN, application(res))
    assert v.status == "pending" and v.version == 1 and v.app_code.startswith("app-")
    with pytest.raises(ProblemError) as err:
        await service.review(res, GAOXIN, v.id, Review(decision="approve"))  # the applicant itself
    assert err.value.status == 403
    with pytest.raises(ProblemError) as err:
        await service.review(res, NANJING, v.id, Review(decision="approve"))  # another city sees nothing
    assert err.value.status == 404
    with pytest.raises(ProblemError) as err:
        await service.review(res, SUZHOU, v.id, Review(decision="reject"))
    assert err.value.errors[0].field == "reason"
    # A province-wide app of the province's own organisation is reviewed only by the platform.
    pv = await service.apply(res, PROVINCE, application(res, name="全省测试服务", regions=["320000"]))
    with pytest.raises(ProblemError) as err:
        await service.review(res, SUZHOU, pv.id, Review(decision="approve"))
    assert err.value.status == 404
    # A city's pending list holds its subtree's versions only.
    suzhou_list = await service.versions(res, SUZHOU, status="pending", cursor=None, limit=100)
    assert v.id in {x.id for x in suzhou_list.items} and pv.id not in {x.id for x in suzhou_list.items}
    nanjing_list = await service.versions(res, NANJING, status="pending", cursor=None, limit=100)
    assert v.id not in {x.id for x in nanjing_list.items}


async def test_reject_edit_resubmit_then_approve_and_versions(http: httpx.Client, res: Resources) -> None:
    v1 = await service.apply(res, GAOXIN, application(res, name="高新区开锁备案"))
    rejected = await service.review(res, SUZHOU, v1.id, Review(decision="reject", reason="图标不清晰"))
    assert rejected.version.status == "rejected" and rejected.client_id is None
    assert rejected.version.reason == "图标不清晰"
    v2 = await service.submit_version(res, GAOXIN, v1.app_code, application(res, name="高新区开锁备案"))
    assert v2.version == 2
    with pytest.raises(ProblemError) as err:  # one pending version at a time
        await service.submit_version(res, GAOXIN, v1.app_code, application(res, name="高新区开锁备案"))
    assert err.value.status == 409
    approved = await service.review(res, SUZHOU, v2.id, Review(decision="approve"))
    assert approved.client_secret
    app = await service.get_app(res, SUZHOU, v1.app_code)
    assert app.listed and app.live_version == 2
    on_home(http, "320500", v1.app_code)
    assert v1.app_code not in codes_in(home(http, city="320100"))
    # A changed entry path and scopes: a new version; the old one stays live until it is approved.
    v3 = await service.submit_version(
        res, GAOXIN, v1.app_code, application(res, name="高新区开锁备案", entry_path="https://example.invalid/v3")
    )
    live = await service.get_app(res, SUZHOU, v1.app_code)
    assert live.entry_path == "https://example.invalid/dog" and live.live_version == 2
    again = await service.review(res, SUZHOU, v3.id, Review(decision="approve"))
    assert again.client_id and again.client_secret is None  # the secret was shown once
    assert (await service.get_app(res, SUZHOU, v1.app_code)).entry_path == "https://example.invalid/v3"
    kinds = [n.kind for n in await service.notifications(res, GAOXIN, v1.app_code)]
    assert kinds.count("review_approved") == 2 and "review_rejected" in kinds


async def test_concurrent_review_one_wins(res: Resources) -> None:
    v = await service.apply(res, GAOXIN, application(res, name="高新区并发审核"))
    outcomes = await asyncio.gather(
        service.review(res, SUZHOU, v.id, Review(decision="approve")),
        service.review(res, PLATFORM, v.id, Review(decision="reject", reason="重复")),
        return_exceptions=True,
    )
    errors = [o for o in outcomes if isinstance(o, ProblemError)]
    assert len(errors) == 1 and errors[0].status == 409
    row = await repo.get_version(res.db, v.id)
    assert row["status"] in ("approved", "rejected")


async def test_approval_issues_working_client_credentials(http: httpx.Client, res: Resources) -> None:
    v = await service.apply(res, GAOXIN, application(res, name="高新区后台对接", kind="backend", zone="government"))
    approved = await service.review(res, SUZHOU, v.id, Review(decision="approve"))
    assert approved.client_id and approved.client_secret
    token = http.post(
        "/identity/token",
        data={"grant_type": "client_credentials", "scope": "affairs"},
        auth=(approved.client_id, approved.client_secret),
    )
    assert token.status_code == 200, token.text
    assert token.json()["access_token"] and token.json()["scope"] == "affairs"
    wrong = http.post(
        "/identity/token", data={"grant_type": "client_credentials"}, auth=(approved.client_id, "not-the-secret")
    )
    assert wrong.status_code == 401
    from identity import clients

    client = await clients.get(res, approved.client_id)
    assert client is not None and client.zone == "government" and client.kind == "business"
    assert client.entitlements == ("name_masked",)  # the approved scopes, nothing more


class _Entry(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def entry_server(stack: Stack) -> Iterator[tuple[str, type[_Entry]]]:
    handler = type("Entry", (_Entry,), {"status": 200})
    server = HTTPServer(("127.0.0.1", stack.peer_port), handler)  # the one loopback port the outbound guard admits
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/entry", handler
    server.shutdown()
    server.server_close()


async def test_health_polling_delists_and_relists(
    http: httpx.Client, res: Resources, entry_server: tuple[str, type[_Entry]]
) -> None:
    url, handler = entry_server
    v = await service.apply(res, GAOXIN, application(res, name="高新区健康检查", entry_path=url))
    await service.review(res, SUZHOU, v.id, Review(decision="approve"))
    code = v.app_code
    assert await jobs.poll_once(res, {code}) == 0
    handler.status = 503
    for _ in range(jobs.FAILURES_TO_DELIST - 1):
        assert await jobs.poll_once(res, {code}) == 0
        on_home(http, "320500", code)
    assert await jobs.poll_once(res, {code}) == 1
    app = await service.get_app(res, SUZHOU, code)
    assert not app.listed and app.delisted_reason == "health"
    on_home(http, "320500", code, present=False)
    handler.status = 200
    assert await jobs.poll_once(res, {code}) == 1
    assert (await service.get_app(res, SUZHOU, code)).listed
    on_home(http, "320500", code)
    kinds = [n.kind for n in await service.notifications(res, SUZHOU, code)]
    assert kinds[:2] == ["auto_relisted", "auto_delisted"]
    # An administrator's delisting is not undone by a good poll.
    await service.set_listing(res, SUZHOU, code, False, "下线整改")
    assert await jobs.poll_once(res, {code}) == 0
    assert not (await service.get_app(res, SUZHOU, code)).listed


async def test_layout_rules(http: httpx.Client, res: Resources) -> None:
    from catalog.models import LayoutUpdate

    with pytest.raises(ProblemError) as err:
        await service.set_layout(res, SUZHOU, LayoutUpdate(region_code="320100", module="city.local", app_codes=[]))
    assert err.value.status == 403
    with pytest.raises(ProblemError) as err:
        await service.set_layout(res, SUZHOU, LayoutUpdate(region_code="320500", module="nope", app_codes=[]))
    assert err.value.errors[0].field == "module"
    before = await repo.slots(res.db, ["320500"])

    def first_two(body: dict[str, Any]) -> list[str]:
        local = next(m for m in body["modules"] if m["key"] == "city.local")
        return [i["code"] for i in local["items"]][:2]

    try:
        await service.set_layout(
            res, SUZHOU, LayoutUpdate(region_code="320500", module="city.local", app_codes=["app-49", "app-07"])
        )

        home_once(http, "320500", lambda b: first_two(b) == ["app-49", "app-07"])
    finally:
        old = [r["app_code"] for r in before if r["module"] == "city.local"]
        await service.set_layout(res, SUZHOU, LayoutUpdate(region_code="320500", module="city.local", app_codes=old))
        home_once(http, "320500", lambda b: first_two(b) == old[:2])
