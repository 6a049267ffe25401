"""Simulator of the police business systems."""

from __future__ import annotations

from litestar import Litestar

from core.settings import Settings


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("biz", "police business systems", settings)
