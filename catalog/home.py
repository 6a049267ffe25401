"""The home layout read model: the province's modules merged with a city's own, cached per layout version.

Each module has a fixed number of slots. A city's slot wins at its position; the empty positions are filled by the
province's services in the province's order; apps that are listed and visible but placed nowhere join their
business line (province-wide apps) or the city's own module (city apps) at the end, while there is room.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from catalog import repo
from catalog.models import CITIES, LINE_OF, MODULES, PROVINCE, ListedApp
from catalog.service import all_listed, layout_version, visible
from core.resources import Resources


@dataclass(frozen=True)
class Placed:
    app: ListedApp
    source: str  # "province" | "city": whose layout put it here


@dataclass(frozen=True)
class Layout:
    version: int
    city: str | None
    channel: str
    modules: tuple[tuple[str, tuple[Placed, ...]], ...]  # in MODULES order, empty modules left out


_CACHE: OrderedDict[tuple[int, str | None, str], Layout] = OrderedDict()
_CACHE_MAX = 256  # 14 regions x 5 channels per version, a few versions


def merge(
    apps: dict[str, ListedApp], slots: list[tuple[str, str, int, str]], city: str | None, channel: str
) -> tuple[tuple[str, tuple[Placed, ...]], ...]:
    shown = {c: a for c, a in apps.items() if visible(a, city, channel)}
    by_module: dict[str, tuple[dict[int, str], list[str]]] = {m: ({}, []) for m in MODULES}
    for region, module, position, code in slots:
        if module not in by_module:
            continue
        if region == PROVINCE:
            by_module[module][1].append(code)
        elif region == city:
            by_module[module][0][position] = code
    placed_anywhere: set[str] = set()
    result: dict[str, list[Placed]] = {}
    for module, (title_kind_slots) in MODULES.items():
        size = title_kind_slots[2]
        city_slots, province_order = by_module[module]
        cells: list[Placed | None] = [None] * size
        used: set[str] = set()
        for pos, code in city_slots.items():
            if pos < size and code in shown and code not in used:
                cells[pos] = Placed(shown[code], "city")
                used.add(code)
        fill = (c for c in province_order if c in shown and c not in used)
        for i in range(size):
            if cells[i] is None:
                nxt = next(fill, None)
                if nxt is None:
                    break
                cells[i] = Placed(shown[nxt], "province")
                used.add(nxt)
        result[module] = [c for c in cells if c is not None]
        placed_anywhere |= used
    for code, app in shown.items():
        if code in placed_anywhere:
            continue
        module = "city.local" if PROVINCE not in app.regions else LINE_OF.get(app.category, "line.qita")
        if len(result[module]) < MODULES[module][2]:
            result[module].append(Placed(app, "city" if module == "city.local" else "province"))
    return tuple((m, tuple(items)) for m, items in result.items() if items)


async def layout(res: Resources, city: str | None, channel: str) -> Layout:
    """The merged layout for a city (None: the province only) and channel, computed once per layout version."""
    version = await layout_version(res)
    key = (version, city, channel)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    apps = {a.code: a for a in await all_listed(res)}
    regions = [PROVINCE] + ([city] if city in CITIES else [])
    rows = [(r["region_code"], r["module"], r["position"], r["app_code"]) for r in await repo.slots(res.db, regions)]
    built = Layout(version=version, city=city, channel=channel, modules=merge(apps, rows, city, channel))
    _CACHE[key] = built
    while len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return built
