"""Seed: the 49 applications (catalog/data/apps49.tsv) as listed apps app-01 … app-49, and the home layout of the
province and of each city (every city has its own local module; 苏州 and 南京 also rearrange a zone)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from catalog import icons, repo
from catalog.models import CHANNELS, CITIES, PROVINCE
from catalog.service import pinyin_of, publish_layout
from core.resources import Resources

log = logging.getLogger("szt.seed.catalog")
TSV = Path(__file__).parent / "data" / "apps49.tsv"
COLOURS: dict[str, tuple[int, int, int]] = {
    "内保": (52, 88, 160),
    "出入境": (0, 138, 122),
    "交管": (214, 120, 0),
    "治安": (30, 100, 200),
    "监管": (120, 80, 160),
    "其它": (90, 110, 130),
}


def code_of(no: int) -> str:
    return f"app-{no:02d}"


def _codes(*nos: int) -> list[str]:
    return [code_of(n) for n in nos]


# The province's modules (slot order).
PROVINCE_LAYOUT: dict[str, list[str]] = {
    "zone.zhian": _codes(26, 30, 25, 48, 47, 49, 42, 43),
    "zone.huzheng": _codes(17, 18, 19, 20, 21, 22, 23, 24),
    "zone.chejiaguan": _codes(11, 12, 10, 9, 16, 8),
    "area.natural": _codes(2, 3, 4, 6, 7, 44, 45, 47),
    "area.legal": _codes(46, 13, 14, 15, 27, 28, 29, 31),
}
# Each city's own module; 苏州 and 南京 also put their own services first in a zone.
CITY_LOCAL: dict[str, list[str]] = {
    "320100": _codes(47, 44, 5),
    "320200": _codes(8, 25, 48),
    "320300": _codes(25, 8, 47),
    "320400": _codes(8, 48, 25),
    "320500": _codes(8, 25, 48, 26),
    "320600": _codes(25, 47, 8),
    "320700": _codes(5, 8, 25),
    "320800": _codes(8, 47, 25),
    "320900": _codes(25, 8, 48),
    "321000": _codes(47, 25, 8),
    "321100": _codes(8, 25, 47),
    "321200": _codes(48, 8, 25),
    "321300": _codes(25, 48, 8),
}
CITY_ZONES: dict[str, dict[str, dict[int, str]]] = {
    "320500": {"zone.chejiaguan": {0: code_of(8)}},
    "320100": {"zone.zhian": {0: code_of(47)}},
}


def _lines(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    from catalog.home import LINE_OF

    lines: dict[str, list[str]] = {}
    for r in rows:
        lines.setdefault(LINE_OF[r["category"]], []).append(code_of(int(r["no"])))
    return lines


async def seed(res: Resources) -> None:
    if await repo.get_app(res.db, code_of(1)) is not None:
        return
    with TSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    digests = {cat: icons.store(res.settings.var_path, icons.generated(cat, c)) for cat, c in COLOURS.items()}
    async with res.db.acquire() as conn, conn.transaction():
        for r in rows:
            code = code_of(int(r["no"]))
            legal = r["kind"] == "enterprise" or r["note"].startswith("enterprise")
            full, initials = pinyin_of(r["name"])
            fields = {
                "name": r["name"],
                "category": r["category"],
                "kind": "h5",
                "audience": "legal" if legal else "natural",
                "zone": "internet",
                "entry_path": f"/affairs/v1/apps/{code}",
                "icon_digest": digests[r["category"]],
                "channels": list(CHANNELS),
                "regions": [PROVINCE],
                "scopes": ["openid", "profile"],
                "redirect_uris": [],
                "pinyin_full": full,
                "pinyin_initials": initials,
            }
            await repo.insert_app(conn, code=code, org_id=None, org_path=PROVINCE, fields=fields)
            v = await repo.insert_version(conn, app_code=code, status="approved", submitted_by=None, fields=fields)
            await repo.make_live(conn, v, client_id=None, pinyin_full=full, pinyin_initials=initials)
        for module, codes in {**PROVINCE_LAYOUT, **_lines(rows)}.items():
            await repo.replace_module(conn, PROVINCE, module, codes)
        for city in CITIES:
            await repo.replace_module(conn, city, "city.local", CITY_LOCAL[city])
            for module, cells in CITY_ZONES.get(city, {}).items():
                await repo.put_slots(conn, city, module, cells)
        version = await repo.bump_layout(conn)
    await publish_layout(res, version)
    log.info("catalog seeded", extra={"apps": len(rows)})
