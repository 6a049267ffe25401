"""Reading the home screen in catalog and home tests.

A change made in the test process reaches the server's home screens within catalog.service.LOCAL_TTL (each
process asks Redis for the layout version at most that often), so checks after such a change wait for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from catalog.service import LOCAL_TTL

IOS = {"X-SZT-Client": "ios/3.2.0"}


def home(http: httpx.Client, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    r = http.get("/bff/v1/home", params=params, headers={**IOS, **(headers or {})})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def codes_in(body: dict[str, Any]) -> set[str]:
    return {i["code"] for part in ("zones", "areas", "modules") for m in body.get(part, []) for i in m["items"]}


def home_once(http: httpx.Client, city: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The home of `city` as soon as `check` holds for it; fails if it does not within the propagation time."""
    deadline = time.monotonic() + LOCAL_TTL + 2.0
    while True:
        body = home(http, city=city)
        if check(body):
            return body
        assert time.monotonic() < deadline, f"the home of {city} did not change as expected"
        time.sleep(0.05)
