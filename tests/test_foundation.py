"""The foundation: every mount answers health, readiness and OpenAPI; errors are problem documents."""

from __future__ import annotations

import httpx
import pytest

from core.observe import metrics_headers
from core.server import APPS
from core.settings import load_settings
from simulators.app import SIMULATORS
from tests.harness import Stack


@pytest.mark.parametrize("mount", sorted(APPS))
def test_every_mount_is_alive_ready_and_documented(http: httpx.Client, mount: str) -> None:
    assert http.get(f"/{mount}/healthz").json() == {"status": "ok"}
    ready = http.get(f"/{mount}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["postgres"] == "ok"
    doc = http.get(f"/{mount}/schema/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert f"/{mount}/healthz" in doc["paths"]
    assert doc["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]


@pytest.mark.parametrize("mount", sorted(SIMULATORS))
def test_every_simulator_is_alive(sim_url: str, mount: str) -> None:
    assert httpx.get(f"{sim_url}/{mount}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{sim_url}/{mount}/schema/openapi.json").status_code == 200


def test_signing_server_simulator_is_its_own_process(stack: Stack) -> None:
    assert httpx.get(f"{stack.signer_url}/healthz").json() == {"status": "ok"}


def test_root_landing_metrics(http: httpx.Client) -> None:
    landing = http.get("/")
    assert landing.status_code == 200 and "苏证通" in landing.text
    for mount in APPS:
        assert f"/{mount}/schema/openapi.json" in landing.text
    assert http.get("/readyz").json()["status"] == "ready"
    http.get("/bff/healthz")
    metrics = http.get("/metrics", headers=metrics_headers(load_settings())).text  # behind its bearer token
    assert 'szt_http_requests_total{app="bff",method="GET",route="/bff/healthz",status="200"}' in metrics
    assert "szt_http_request_duration_seconds_bucket" in metrics


def test_unknown_path_and_method_are_problems(http: httpx.Client) -> None:
    r = http.get("/bff/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == "urn:szt:problem:not-found" and body["title_zh"] == "资源不存在"
    assert body["request_id"] == r.headers["x-request-id"]
    r = http.post("/identity/healthz")
    assert r.status_code == 405 and r.json()["status"] == 405


def test_request_id_is_propagated_or_assigned(http: httpx.Client) -> None:
    r = http.get("/bff/healthz", headers={"X-Request-ID": "client-abc-123"})
    assert r.headers["x-request-id"] == "client-abc-123"
    r = http.get("/bff/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32
