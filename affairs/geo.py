"""The map's grid: 0.1° cells indexed by a btree, and great-circle distance."""

from __future__ import annotations

import math

EARTH_M = 6_371_008.8
CELL = 0.1  # degrees; offices.cell = floor(lat/CELL)*10000 + floor(lon/CELL)


def cell_of(lat: float, lon: float) -> int:
    return math.floor(lat / CELL) * 10000 + math.floor(lon / CELL)


def cells_of_box(lat0: float, lat1: float, lon0: float, lon1: float) -> list[int]:
    return [
        i * 10000 + j
        for i in range(math.floor(lat0 / CELL), math.floor(lat1 / CELL) + 1)
        for j in range(math.floor(lon0 / CELL), math.floor(lon1 / CELL) + 1)
    ]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(a))
