"""The police map's offices, kept in the process per 0.1° grid cell for a minute: a nearby query then costs no
database round trip once its cells are warm. Offices change seldom (seeds, the business systems' lists), so a
minute's staleness is fine; the cache is bounded by cells, not by offices."""

from __future__ import annotations

import heapq
import math
import time
from collections import OrderedDict
from typing import NamedTuple

import msgspec

from affairs import repo
from affairs.bookings import office_view
from affairs.geo import cells_of_box, distance_m
from affairs.models import OfficeList, OfficeView
from core.resources import Resources

TTL = 60.0  # seconds a cell's offices are kept
MAX_CELLS = 4096  # ≈ all of Jiangsu's 0.1° cells with offices


class Office(NamedTuple):
    lat: float
    lon: float
    kind: str
    view: OfficeView  # without the distance


_cells: OrderedDict[int, tuple[float, list[Office]]] = OrderedDict()


async def offices_of(res: Resources, cells: list[int]) -> list[Office]:
    now = time.monotonic()
    stale = [c for c in cells if (hit := _cells.get(c)) is None or now - hit[0] > TTL]
    if stale:
        fresh: dict[int, list[Office]] = {c: [] for c in stale}
        for r in await repo.offices_of_cells(res.db, stale):
            fresh[r["cell"]].append(Office(r["lat"], r["lon"], r["kind"], office_view(r)))
        for c, offices in fresh.items():
            _cells[c] = (now, offices)
            _cells.move_to_end(c)
        while len(_cells) > MAX_CELLS:
            _cells.popitem(last=False)
    out: list[Office] = []
    for c in cells:
        got = _cells.get(c)
        if got is not None:
            out.extend(got[1])
    return out


async def nearby(res: Resources, lat: float, lon: float, radius_m: int, kind: str | None, limit: int) -> OfficeList:
    """Offices within `radius_m`, nearest first: the grid cells of the bounding box, a cheap planar distance to
    pick the few nearest, then the great-circle distance on those only."""
    coslat = max(math.cos(math.radians(lat)), 0.01)
    dlat = radius_m / 111_195.0
    dlon = radius_m / (111_195.0 * coslat)
    lat0, lat1, lon0, lon1 = lat - dlat, lat + dlat, lon - dlon, lon + dlon
    candidates = [
        o
        for o in await offices_of(res, cells_of_box(lat0, lat1, lon0, lon1))
        if lat0 <= o.lat <= lat1 and lon0 <= o.lon <= lon1 and (kind is None or o.kind == kind)
    ]
    # The planar order agrees with the great-circle one at these distances; a few spare for the circle's cut.
    near = heapq.nsmallest(limit + 8, candidates, key=lambda o: (o.lat - lat) ** 2 + ((o.lon - lon) * coslat) ** 2)
    hits = sorted(((d, o) for o in near if (d := distance_m(lat, lon, o.lat, o.lon)) <= radius_m), key=lambda h: h[0])
    return OfficeList([msgspec.structs.replace(o.view, distance_m=round(d)) for d, o in hits[:limit]])
