"""Simulator of the WeChat open platform."""

from __future__ import annotations

from litestar import Litestar

from core.settings import Settings


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("wechat", "WeChat open platform", settings)
