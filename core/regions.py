"""Jiangsu's region tree, defined once: the province, its 13 prefecture cities (GB/T 2260 codes, names, centres,
plate letters) and the districts the product knows (the region picker's and the seeded police branches')."""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

PROVINCE_CODE = "320000"
PROVINCE_NAME = "江苏"


class District(NamedTuple):
    code: str
    name: str  # official name, as the region picker shows it ("" when the picker does not list the district)
    branch: str = ""  # the area label of the seeded police branch (orgs.tree) there, "" when none is seeded


class City(NamedTuple):
    code: str
    name: str  # without 市
    lon: float  # centre, for GPS → city and the seeded offices
    lat: float
    plate: str  # the letter after 苏 on its vehicle plates
    districts: tuple[District, ...]

    @property
    def branches(self) -> tuple[District, ...]:
        """The districts with a seeded police branch (two per city), in seeding order."""
        return tuple(d for d in self.districts if d.branch)

    @property
    def home_district(self) -> str:
        """The district code seeded rows and simulated residents of the city use (its first branch)."""
        return self.branches[0].code


CITIES: tuple[City, ...] = (
    City("320100", "南京", 118.7969, 32.0603, "A", (
        District("320102", "玄武区", "玄武区"), District("320104", "秦淮区", "秦淮区"), District("320106", "鼓楼区"),
    )),
    City("320200", "无锡", 120.3119, 31.4912, "B", (
        District("320205", "", "锡山区"), District("320206", "", "惠山区"), District("320214", "新吴区"),
    )),
    City("320300", "徐州", 117.2841, 34.2058, "C", (
        District("320302", "鼓楼区", "鼓楼区"), District("320311", "", "泉山区"),
    )),
    City("320400", "常州", 119.9741, 31.8112, "D", (
        District("320402", "天宁区", "天宁区"), District("320404", "", "钟楼区"),
    )),
    City("320500", "苏州", 120.5853, 31.2989, "E", (
        District("320505", "虎丘区(苏州高新区)", "苏州高新区"), District("320506", "吴中区", "吴中区"),
        District("320508", "姑苏区"), District("320583", "昆山市"),
    )),
    City("320600", "南通", 120.8943, 31.9802, "F", (
        District("320602", "崇川区", "崇川区"), District("320612", "", "通州区"),
    )),
    City("320700", "连云港", 119.2216, 34.5967, "G", (
        District("320703", "", "连云区"), District("320706", "海州区"), District("320707", "", "赣榆区"),
    )),
    City("320800", "淮安", 119.0153, 33.6104, "H", (
        District("320803", "淮安区", "淮安区"), District("320804", "", "淮阴区"),
    )),
    City("320900", "盐城", 120.1633, 33.3477, "J", (
        District("320902", "亭湖区", "亭湖区"), District("320903", "", "盐都区"),
    )),
    City("321000", "扬州", 119.4129, 32.3942, "K", (
        District("321002", "广陵区", "广陵区"), District("321003", "", "邗江区"),
    )),
    City("321100", "镇江", 119.4250, 32.1875, "L", (
        District("321102", "京口区", "京口区"), District("321111", "", "润州区"),
    )),
    City("321200", "泰州", 119.9229, 32.4558, "M", (
        District("321202", "海陵区", "海陵区"), District("321203", "", "高港区"),
    )),
    City("321300", "宿迁", 118.2752, 33.9631, "N", (
        District("321302", "宿城区", "宿城区"), District("321311", "", "宿豫区"),
    )),
)  # fmt: skip

CityName = Literal[
    "南京", "无锡", "徐州", "常州", "苏州", "南通", "连云港", "淮安", "盐城", "扬州", "镇江", "泰州", "宿迁"
]

CITY_BY_CODE: dict[str, City] = {c.code: c for c in CITIES}
CITY_CODES: tuple[str, ...] = tuple(c.code for c in CITIES)
CITY_NAMES: tuple[str, ...] = tuple(c.name for c in CITIES)
# District code -> official name, for the districts the region picker lists.
DISTRICT_NAMES: dict[str, str] = {d.code: d.name for c in CITIES for d in c.districts if d.name}

assert get_args(CityName) == CITY_NAMES
