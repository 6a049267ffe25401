"""The seeded organisation tree (1+N): 江苏省公安厅 and its police types, the 13 city bureaus with theirs, two
county/district branches per city and one station under each (GB/T 2260 codes, docs/contracts.md)."""

from __future__ import annotations

PROVINCE = ("320000", "江苏省公安厅")

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

CITIES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "320100": ("南京", (("320102", "玄武"), ("320104", "秦淮"))),
    "320200": ("无锡", (("320205", "锡山"), ("320206", "惠山"))),
    "320300": ("徐州", (("320302", "鼓楼"), ("320311", "泉山"))),
    "320400": ("常州", (("320402", "天宁"), ("320404", "钟楼"))),
    "320500": ("苏州", (("320505", "苏州高新区"), ("320506", "吴中"))),
    "320600": ("南通", (("320602", "崇川"), ("320612", "通州"))),
    "320700": ("连云港", (("320703", "连云"), ("320707", "赣榆"))),
    "320800": ("淮安", (("320803", "淮安"), ("320804", "淮阴"))),
    "320900": ("盐城", (("320902", "亭湖"), ("320903", "盐都"))),
    "321000": ("扬州", (("321002", "广陵"), ("321003", "邗江"))),
    "321100": ("镇江", (("321102", "京口"), ("321111", "润州"))),
    "321200": ("泰州", (("321202", "海陵"), ("321203", "高港"))),
    "321300": ("宿迁", (("321302", "宿城"), ("321311", "宿豫"))),
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
            Node(f"320000-{key}", f"江苏省公安厅{kind_name}总队", "province", "police_type", "320000", key)
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
