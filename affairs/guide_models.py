"""A service guide (办事指南) as the app and the mini programs show it: the elements of the item's implementation
list pulled from the government-service platform's item catalogue (affairs.govservice.sync_guides)."""

from __future__ import annotations

import msgspec


class GuideMaterial(msgspec.Struct):
    name: str
    required: bool
    certificate_free: bool  # an e-licence replaces the paper copy
    copies: int


class GuidePlace(msgspec.Struct):
    name: str
    hours: str


class GuideFee(msgspec.Struct):
    item: str
    amount_fen: int
    basis: str = ""


class GuideQA(msgspec.Struct):
    q: str
    a: str


class Guide(msgspec.Struct):
    item_code: str  # 实施编码 in the platform's catalogue
    version: int  # the platform's version of this guide
    updated_at: str  # when the platform published it (北京时间)
    service_object: str
    conditions: list[str]
    materials: list[GuideMaterial]
    process: list[str]
    places: list[GuidePlace]
    time_limit: str
    legal_time_limit: str
    fees: list[GuideFee]
    faq: list[GuideQA]
    consult_phone: str
    source: str = "一体化政务服务平台"
