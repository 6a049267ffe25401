"""Codes the handling engine and the government-service platform share (docs/domains/govplatform.md): the
implementation code (实施编码) under which the province registered each of the 49 items in the platform's item
catalogue, the 办件 status codes, and the gateway credentials (paasid and token) of this province's sender."""

from __future__ import annotations

import secrets
from pathlib import Path

from core.secrets_file import read_or_create

PAASID = "js-gat-szt"  # the sender id the platform's gateway issued to the provincial police (modelled)
# 实施主体: 江苏省公安厅's unified social credit code (a synthetic one of the right shape, with its check character).
IMPLEMENTING_ORG = "113200000140000003"  # its check character per GB 32100 (tests/test_govservice.py checks it)
# 事项类型 (C 0101 事项基本编码's type part), by the kind of item.
_TYPE = {"application": "01", "appointment": "20", "query": "20", "payment": "20", "city_link": "20"}

# Our case status -> the platform's 办件状态 (code, name).
STATUS: dict[str, tuple[str, str]] = {
    "submitted": ("01", "申报"),
    "pre_review": ("02", "预审"),
    "accepted": ("03", "受理"),
    "handling": ("04", "办理"),
    "supplement_requested": ("05", "补齐补正"),
    "completed": ("06", "办结"),
    "returned": ("07", "不予受理"),
    "withdrawn": ("08", "撤回"),
}


def item_code(app_code: str, kind: str) -> str:
    """实施编码: implementing organisation (18) + item type (2) + main item (5) + sub-item (3) + handling item (3)."""
    no = int(app_code.rsplit("-", 1)[-1])
    return f"{IMPLEMENTING_ORG}{_TYPE.get(kind, '20')}{no:05d}000001"


def token(var_path: Path) -> str:
    """The gateway token shared with the platform: generated once under var/keys (a deployment provisions it)."""
    return read_or_create(var_path / "keys" / "govplatform.token", lambda: secrets.token_hex(24))
