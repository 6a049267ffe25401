"""The seeded organisation tree (1+N): 江苏省公安厅 and its police types, the 13 city bureaus with theirs, two
county/district branches per city and one station under each (GB/T 2260 codes, docs/contracts.md)."""

from __future__ import annotations

from core import regions

PROVINCE = (regions.PROVINCE_CODE, "江苏省公安厅")

# key -> name; codes of police-type organisations are `<region>-<key>`.
POLICE_TYPES: dict[str, str] = {
    "za": "治安",
    "jg": "交管",
    "crj": "出入境",
    "nb": "内保",
    "jgs": "监管",
    "wa": "网安",
    "jd": "禁毒",
}

# city code -> (name, its seeded county/district branches as (code, area label)) — from core.regions.
CITIES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    c.code: (c.name, tuple((d.code, d.branch) for d in c.branches)) for c in regions.CITIES
}


class Node:
    __slots__ = ("children", "code", "kind", "level", "name", "police_type", "region_code")

    def __init__(
        self, code: str, name: str, level: str, kind: str, region_code: str, police_type: str | None = None
    ) -> None:
        self.code, self.name, self.level, self.kind = code, name, level, kind
        self.region_code, self.police_type = region_code, police_type
        self.children: list[Node] = []


def build() -> Node:
    root = Node(PROVINCE[0], PROVINCE[1], "province", "bureau", PROVINCE[0])
    for key, kind_name in POLICE_TYPES.items():
        root.children.append(
            Node(f"{PROVINCE[0]}-{key}", f"{PROVINCE[1]}{kind_name}总队", "province", "police_type", PROVINCE[0], key)
        )
    for city_code, (city, counties) in CITIES.items():
        suffix = "" if city.endswith("市") else "市"
        bureau = Node(city_code, f"{city}{suffix}公安局", "city", "bureau", city_code)
        for key, kind_name in POLICE_TYPES.items():
            bureau.children.append(
                Node(
                    f"{city_code}-{key}", f"{city}{suffix}公安局{kind_name}支队", "city", "police_type", city_code, key
                )
            )
        for county_code, county in counties:
            label = county if county.endswith("区") else f"{county}区"
            branch = Node(county_code, f"{city}{suffix}公安局{label}分局", "county", "bureau", county_code)
            branch.children.append(Node(f"{county_code}-s01", f"{label}城区派出所", "station", "station", county_code))
            bureau.children.append(branch)
        root.children.append(bureau)
    return root
