"""The 49 applications as versioned manifests: generated from catalog/data/apps49.tsv plus per-kind defaults, with
hand-written forms for the items that need more than the default (docs/integration.md: "Manifest format")."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Any

from core import regions

TSV = Path(__file__).resolve().parent.parent / "catalog" / "data" / "apps49.tsv"
MANIFEST_VERSION = 1  # bump when a generated manifest changes; older versions stay for the cases that used them

# Business line -> the police business system (police type) a case of that line is delivered to.
SYSTEMS: dict[str, str] = {
    "内保": "neibao",
    "出入境": "crj",
    "交管": "jiaoguan",
    "治安": "zhian",
    "监管": "jianguan",
    "其它": "other",
}
FIELD_TYPES = ("text", "id_number", "phone", "region", "date", "elicence", "attachment", "enum", "uscc")
ELICENCE_TYPES = ("idcard", "driving", "vehicle", "hukou", "business")
# Kinds the handling engine serves, and what a client does with each.
KINDS = ("application", "appointment", "query", "payment", "city_link", "enterprise", "map", "move_car")

REGIONS_ALL = [regions.PROVINCE_CODE]
ENTERPRISE_MARK = "enterprise"


def _f(name: str, label: str, type_: str, *, required: bool = True, **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": label, "type": type_, "required": required, **extra}


def _base_person() -> list[dict[str, Any]]:
    return [
        _f("name", "姓名", "text", max_length=30, autofill="name"),
        _f("id_number", "公民身份号码", "id_number", autofill="id_number"),
        _f("phone", "联系电话", "phone", autofill="phone"),
        _f("region_code", "办理地（行政区划）", "region", autofill="previous"),
    ]


def _base_enterprise() -> list[dict[str, Any]]:
    return [
        _f("uscc", "统一社会信用代码", "uscc", autofill="enterprise"),
        _f("contact_name", "经办人姓名", "text", max_length=30, autofill="name"),
        _f("contact_phone", "经办人电话", "phone", autofill="phone"),
        _f("region_code", "经营地（行政区划）", "region", autofill="previous"),
        _f("business_licence", "营业执照", "elicence", licence="business"),
        _f("premises", "经营场所证明", "attachment", accept=["application/pdf", "image/jpeg", "image/png"]),
    ]


# Extra fields per item number, after the base fields.
_EXTRA: dict[int, list[dict[str, Any]]] = {
    5: [
        _f("destination", "前往边境管理区", "enum", options=["东兴", "瑞丽", "凭祥", "满洲里", "二连浩特"]),
        _f("travel_date", "出行日期", "date", future=True),
        _f("idcard", "身份证（电子证照）", "elicence", licence="idcard"),
    ],
    9: [
        _f("plate", "号牌号码", "text", max_length=10),
        _f("vehicle", "行驶证（电子证照）", "elicence", licence="vehicle"),
    ],
    10: [_f("plate", "号牌号码", "text", max_length=10), _f("reason", "原因", "enum", options=["遗失", "损毁"])],
    11: [
        _f("licence", "驾驶证（电子证照）", "elicence", licence="driving"),
        _f("action", "业务类型", "enum", options=["补证", "换证"]),
        _f("reason", "原因", "enum", options=["遗失", "损毁", "有效期满", "信息变更"]),
        _f("photo", "本人近期白底证件照", "attachment", accept=["image/jpeg", "image/png"]),
        _f(
            "medical",
            "身体条件证明",
            "attachment",
            required=False,
            accept=["image/jpeg", "image/png", "application/pdf"],
        ),
        _f("pickup", "领取方式", "enum", options=["邮寄", "窗口自取"]),
    ],
    12: [
        _f("plate", "号牌号码", "text", max_length=10),
        _f("item", "补换项目", "enum", options=["行驶证", "号牌", "行驶证和号牌"]),
        _f("vehicle", "行驶证（电子证照）", "elicence", licence="vehicle"),
    ],
    16: [
        _f("brand", "品牌型号", "text", max_length=40),
        _f("frame_no", "车架号", "text", max_length=30),
        _f("invoice", "购车发票", "attachment", accept=["image/jpeg", "image/png", "application/pdf"]),
    ],
    17: [
        _f("move_from", "迁出地", "region"),
        _f("move_to", "迁入地", "region"),
        _f("reason", "迁移原因", "enum", options=["投靠", "购房", "人才引进", "婚迁", "其他"]),
        _f("hukou", "户口簿（电子证照）", "elicence", licence="hukou"),
    ],
    23: [
        _f("address", "居住地址", "text", max_length=120),
        _f("since", "居住起始日期", "date"),
        _f("basis", "居住依据", "enum", options=["合法稳定就业", "合法稳定住所", "连续就读"]),
    ],
    26: [
        _f("certificate", "证明类型", "enum", options=["亲属关系证明", "户籍证明", "死亡证明", "曾用名证明"]),
        _f("purpose", "用途", "text", max_length=100),
    ],
    30: [_f("photo", "本人近期白底证件照", "attachment", accept=["image/jpeg", "image/png"])],
}
_FEES: dict[int, list[dict[str, Any]]] = {
    7: [
        {"item": "普通护照", "amount_fen": 12000},
        {"item": "往来港澳通行证", "amount_fen": 6000},
        {"item": "港澳签注（一次）", "amount_fen": 1500},
        {"item": "往来台湾通行证", "amount_fen": 6000},
    ],
    11: [{"item": "驾驶证工本费", "amount_fen": 1000}],
    12: [{"item": "号牌工本费", "amount_fen": 10000}, {"item": "行驶证工本费", "amount_fen": 1000}],
}
_DEADLINE_DAYS = {"出入境": 7, "交管": 5, "治安": 15, "内保": 20, "监管": 3, "其它": 10}


def _materials(form: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The one-time materials notice: each document field, and whether an e-licence replaces the paper copy."""
    out = []
    for f in form:
        if f["type"] in ("attachment", "elicence"):
            out.append(
                {
                    "name": f["label"],
                    "field": f["name"],
                    "required": f["required"],
                    "certificate_free": f["type"] == "elicence",
                }
            )
    return out


@cache
def rows() -> list[dict[str, str]]:
    with TSV.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def build(row: dict[str, str]) -> dict[str, Any]:
    no = int(row["no"])
    kind = row["kind"]
    category = row["category"]
    legal = ENTERPRISE_MARK in (row.get("note") or "") or kind == "enterprise"
    form: list[dict[str, Any]] = []
    if kind == "application":
        form = (_base_enterprise() if legal else _base_person()) + _EXTRA.get(no, [])
        if legal and no in (13, 14, 15):
            form.append(_f("vehicle", "车辆行驶证（电子证照）", "elicence", licence="vehicle"))
    elif kind == "appointment":
        form = [
            _f("name", "姓名", "text", max_length=30, autofill="name"),
            _f("phone", "联系电话", "phone", autofill="phone"),
        ]
        if no == 44:
            form += [
                _f("lawyer_licence", "律师执业证号", "text", pattern=r"^\d{17}$"),
                _f("law_firm", "律师事务所", "text", max_length=60),
                _f("detainee", "被会见人姓名", "text", max_length=30),
            ]
        if no == 45:
            form += [
                _f("detainee", "被会见人姓名", "text", max_length=30),
                _f("kinship", "与被会见人关系", "enum", options=["配偶", "父母", "子女", "兄弟姐妹", "其他近亲属"]),
                _f("declaration", "亲属关系声明（如实填写，承担法律责任）", "enum", options=["本人承诺属实"]),
            ]
    elif kind == "enterprise":
        form = [
            _f("service", "服务事项", "enum", options=["上门指导", "安全检查", "证照咨询", "其他"]),
            _f("detail", "需求描述", "text", max_length=500),
        ]
    return {
        "code": f"app-{no:02d}",
        "version": MANIFEST_VERSION,
        "no": no,
        "name": row["name"],
        "category": category,
        "kind": kind,
        "regions": REGIONS_ALL,
        "subject": "legal" if legal else "natural",
        "assurance": "wz+face" if legal else ("wz" if kind in ("application", "appointment", "payment") else "sms"),
        "identity_scopes": ["name", "id_number", "phone"] if kind in ("application", "appointment") else [],
        "form": form,
        "materials": _materials(form),
        "fees": _FEES.get(no, []),
        "binding": {
            "system": SYSTEMS[category],
            "protocol": "szt-biz/1",
            "deadline_days": _DEADLINE_DAYS[category],
        },
        "note": row.get("note") or "",
    }


@cache
def all_manifests() -> dict[str, dict[str, Any]]:
    return {m["code"]: m for m in (build(r) for r in rows())}
