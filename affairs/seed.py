"""Seeds: the 49 manifests, offices across the 13 cities (stations, exit-entry halls, vehicle offices, detention
centres, service halls), the per-city links of items 8 and 25, and published commendations (items 1, 42, 43)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from affairs import repo
from affairs.geo import cell_of
from affairs.manifests import all_manifests
from core import regions
from core.resources import Resources

# City -> (name, centre latitude, centre longitude, a county code used for seeded rows), from core.regions.
CITIES: dict[str, tuple[str, float, float, str]] = {
    c.code: (c.name, c.lat, c.lon, c.home_district) for c in regions.CITIES
}
KINDS: dict[str, tuple[str, str, list[str]]] = {
    "station": (
        "派出所",
        "周一至周日 00:00-24:00（户籍窗口 工作日 09:00-17:00）",
        ["户籍", "居住证", "开具证明", "报警求助"],
    ),
    "exit_entry": ("出入境接待大厅", "周一至周六 09:00-17:00", ["护照", "港澳通行证", "台湾通行证", "签注"]),
    "vehicle": ("车管所", "工作日 08:30-17:00", ["驾驶证", "机动车登记", "号牌", "检验合格标志"]),
    "detention": ("看守所", "工作日 09:00-11:30 14:00-16:30", ["律师会见", "家属会见"]),
    "service": ("公安政务服务中心", "工作日 09:00-17:00", ["综合受理", "企业服务", "出入境", "交管", "户政"]),
}
PER_CITY = {"station": 12, "exit_entry": 2, "vehicle": 2, "detention": 1, "service": 1}
_NS = uuid.UUID("5e7d0a3c-7c43-4c7e-9a8e-affa1500f1ce")
STREETS = ("人民路", "中山路", "解放路", "建设路", "长江路", "新华路", "和平路", "文化路", "学府路", "东风路")


def office_rows(per_city: dict[str, int], seed: int = 2026) -> list[tuple[Any, ...]]:
    """Plausible offices scattered within ~15 km of each city centre; ids are stable so seeding is idempotent."""
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    for city, (cname, lat, lon, county) in CITIES.items():
        for kind, count in per_city.items():
            label, hours, services = KINDS[kind]
            for i in range(count):
                la = lat + rng.uniform(-0.13, 0.13)
                lo = lon + rng.uniform(-0.15, 0.15)
                name = (
                    f"{cname}市公安局{label}"
                    if count == 1
                    else f"{cname}{STREETS[i % 10]}{label}" + (f"{i // 10 + 1}分" if i >= 10 else "")
                )
                if kind == "station":
                    name = f"{cname}市公安局{STREETS[i % 10]}派出所" + (f"（{i // 10 + 1}）" if i >= 10 else "")
                rows.append(
                    (
                        uuid.uuid5(_NS, f"{city}:{kind}:{i}:{seed}"),
                        name,
                        kind,
                        county,
                        f"江苏省{cname}市{STREETS[rng.randrange(10)]}{rng.randint(1, 399)}号",
                        f"0{rng.randint(510, 527)}-{rng.randint(80000000, 89999999)}",
                        round(la, 6),
                        round(lo, 6),
                        cell_of(la, lo),
                        hours,
                        services,
                    )
                )
    return rows


async def seed(res: Resources) -> None:
    for m in all_manifests().values():
        await repo.upsert_manifest(res.db, m)
    if await repo.office_count(res.db) == 0:
        await repo.insert_offices(res.db, office_rows(PER_CITY))
    for city, (cname, *_rest) in CITIES.items():
        n = city[:4]
        await repo.upsert_city_link(
            res.db, "app-08", city, f"https://jtgl.{n}.gov.cn.example/jqtxz", f"{cname}机动车禁区通行证", replace=False
        )
        await repo.upsert_city_link(
            res.db, "app-25", city, f"https://ga.{n}.gov.cn.example/qlyzz", f"{cname}犬类准养证", replace=False
        )
    awards = [
        (
            uuid.uuid5(_NS, "award:1"),
            "app-01",
            "苏州工业园区某科技有限公司",
            "320505",
            "内部治安保卫工作先进单位",
            2025,
        ),
        (uuid.uuid5(_NS, "award:2"), "app-01", "张建国", "320102", "内部治安保卫工作先进个人", 2024),
        (uuid.uuid5(_NS, "award:3"), "app-42", "江苏金盾保安服务有限公司", "320102", "保安服务突出贡献单位", 2025),
        (uuid.uuid5(_NS, "award:4"), "app-42", "李卫东", "320205", "见义勇为优秀保安员", 2025),
        (uuid.uuid5(_NS, "award:5"), "app-43", "徐州市某再生资源回收站", "320302", "协助查获违法犯罪奖励", 2024),
    ]
    await repo.insert_awards(res.db, awards)
