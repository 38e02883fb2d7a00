"""Regenerate the geography files from the geothai package (DOPA codes).

Run: python -m govpulse.schemas.reference.build_geography
Writes provinces.json, districts.json, subdistricts.json (the codes only, per district) and
abolished.json (districts and subdistricts DOPA abolished, with their successors).
A snapshot in the repository keeps the pipeline's reference data reviewable in diffs and
independent of the installed geothai version.
"""

from __future__ import annotations

import json
from pathlib import Path

import geothai
from geothai.abolished import abolished_areas

HERE = Path(__file__).parent
SOURCE = (
    f"geothai {geothai.DATA_VERSION} (https://geothai.fasu.dev; code MIT, data CC-BY-4.0 "
    "from the Department of Provincial Administration, DOPA)"
)


def write(name: str, rows: list[dict]) -> None:
    """One row a line: readable diffs when DOPA changes a code or a name."""
    lines = ",\n  ".join(json.dumps(row, ensure_ascii=False) for row in rows)
    header = json.dumps(SOURCE, ensure_ascii=False)
    text = f'{{\n "source": {header},\n "licence": "CC-BY-4.0",\n "rows": [\n  {lines}\n ]\n}}\n'
    (HERE / name).write_text(text, encoding="utf-8")


def main() -> None:
    provinces = geothai.provinces()
    districts = [d for p in provinces for d in geothai.districts(p.code)]
    write(
        "provinces.json",
        [{"code": p.code, "name_th": p.name_th, "name_en": p.name_en} for p in provinces],
    )
    write(
        "districts.json",
        [
            {
                "code": d.code,
                "province_code": d.province_code,
                "name_th": d.name_th,
                "name_en": d.name_en,
            }
            for d in districts
        ],
    )
    # Codes only: the pipeline validates subdistrict codes but stores no subdistrict names.
    write(
        "subdistricts.json",
        [
            {"district_code": d.code, "codes": [s.code for s in geothai.subdistricts(d.code)]}
            for d in districts
        ],
    )
    write(
        "abolished.json",
        [
            {
                "code": a.code,
                "level": a.level,
                "name_th": a.name_th,
                "abolished_on": a.abolished_on,
                "successors": list(a.successors),
                "basis": a.successors_basis,  # notice | name | null (no successor known)
                "notice": a.successors_source,
            }
            for a in abolished_areas()
            if a.level in ("district", "subdistrict")
        ],
    )


if __name__ == "__main__":
    main()
