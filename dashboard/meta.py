"""What the page needs once, at load: labels in Thai and English, provinces with their map
tiles, regions, ministries and agencies, time ranges and the red-line thresholds.

Built from files (`labels.json`, `geo/tiles.json`) and `schemas.reference`, so a new label or
a renamed agency needs no code change. Computed once per process: it never changes while the
process runs.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from govpulse.dashboard.params import DEFAULT_RANGE, RANGES
from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.schemas.reference import agencies, districts, provinces, regions


@cache
def labels() -> dict[str, Any]:
    """labels.json without its `about` note: group → code → {"th": …, "en": …}."""
    data = json.loads(
        files("govpulse.dashboard").joinpath("labels.json").read_text(encoding="utf-8")
    )
    return {group: table for group, table in data.items() if group != "about"}


@cache
def tiles() -> dict[str, Any]:
    """geo/tiles.json: the tile-grid position of every province, and its source."""
    data: dict[str, Any] = json.loads(
        files("govpulse.dashboard.geo").joinpath("tiles.json").read_text(encoding="utf-8")
    )
    return data


def check_tiles() -> None:
    """Fail at start-up, naming the codes, if the tile grid and the province list disagree."""
    placed = {tile["code"] for tile in tiles()["tiles"]}
    known = set(provinces())
    cells = [(tile["col"], tile["row"]) for tile in tiles()["tiles"]]
    if placed != known or len(set(cells)) != len(cells):
        raise ValueError(
            "dashboard/geo/tiles.json does not match schemas/reference/provinces.json "
            f"(missing {sorted(known - placed)}, extra {sorted(placed - known)}, "
            f"{len(cells) - len(set(cells))} shared cells); run "
            "python -m govpulse.dashboard.geo.build_tiles"
        )


def build_meta(
    *, refresh_seconds: float, freshness_threshold_seconds: float, dead_letter_threshold: float
) -> dict[str, Any]:
    """The /api/meta document."""
    check_tiles()
    grid = tiles()
    tile_of = {tile["code"]: tile for tile in grid["tiles"]}
    district_count: dict[str, int] = {}
    for district in districts().values():
        district_count[district.province_code] = district_count.get(district.province_code, 0) + 1
    table = agencies()
    return {
        "labels": labels(),
        "event_types": list(EVENT_TYPES),
        "ranges": [
            {"name": r.name, "seconds": r.seconds, "step_seconds": r.step} for r in RANGES.values()
        ],
        "default_range": DEFAULT_RANGE,
        "refresh_seconds": refresh_seconds,
        "thresholds": {
            "freshness_seconds": freshness_threshold_seconds,
            "dead_letter_rate": dead_letter_threshold,
        },
        "grid": {"columns": grid["columns"], "rows": grid["rows"], "source": grid["source"]},
        "provinces": [
            {
                "code": p.code,
                "name_th": p.name_th,
                "name_en": p.name_en,
                "region": tile_of[p.code]["region"],
                "abbr": tile_of[p.code]["abbr"],
                "col": tile_of[p.code]["col"],
                "row": tile_of[p.code]["row"],
                "districts": district_count.get(p.code, 0),
            }
            for p in provinces().values()
        ],
        "regions": [
            {"code": r.code, "name_th": r.name_th, "name_en": r.name_en} for r in regions().values()
        ],
        "agencies": [
            {
                "code": a.code,
                "name_th": a.name_th,
                "name_en": a.name_en,
                "ministry_code": a.ministry_code,
                "is_ministry": a.parent is None,
            }
            for a in table.values()
        ],
    }
