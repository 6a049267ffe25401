"""Scopes, the claims they carry, and the entitlement a client needs for each (minimum disclosure)."""

from __future__ import annotations

from datetime import date

from core.masking import mask_name
from identity import people

# scope -> entitlements the client must hold (any of them) for the scope to be granted
SCOPE_ENTITLEMENT: dict[str, tuple[str, ...]] = {
    "openid": (),
    "profile": ("name_masked", "name"),
    "realname": ("name",),
    "idcard": ("id_number",),
    "phone": ("phone",),
    "age": ("over_18", "age_band"),
    "gender": ("gender",),
    "enterprise": ("enterprise",),
}
SUPPORTED_SCOPES = (*SCOPE_ENTITLEMENT, "offline_access")
SCOPE_TITLES_ZH: dict[str, str] = {
    "openid": "身份标识",
    "profile": "姓名（脱敏）",
    "realname": "真实姓名",
    "idcard": "身份证号",
    "phone": "手机号",
    "age": "年龄段及是否成年",
    "gender": "性别",
    "enterprise": "代办企业",
    "offline_access": "保持登录",
}
UNMASKED_SCOPES = frozenset({"realname", "idcard", "phone"})


def grantable(requested: list[str], entitlements: tuple[str, ...]) -> list[str]:
    """The requested scopes this client may receive at all."""
    out = []
    for s in requested:
        needs = SCOPE_ENTITLEMENT.get(s)
        if s == "offline_access" or needs == () or (needs and any(e in entitlements for e in needs)):
            out.append(s)
    return out


def claims_for(person: people.Person, scopes: list[str], today: date) -> dict[str, object]:
    claims: dict[str, object] = {}
    age = people.age_on(person.birth_date, today)
    if "profile" in scopes:
        claims["name"] = mask_name(person.name)
    if "realname" in scopes:
        claims["name"] = person.name
    if "idcard" in scopes:
        claims["id_number"] = person.id_number
    if "phone" in scopes:
        claims["phone_number"] = "+86" + person.phone
        claims["phone_number_verified"] = True
    if "age" in scopes and age is not None:
        claims["over_18"] = age >= 18
        claims["age_band"] = people.age_band(age)
    if "gender" in scopes:
        claims["gender"] = person.gender
    return claims
