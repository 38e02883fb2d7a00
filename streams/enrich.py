"""Reference data flattened into plain dicts: code → the clean_extras fields it determines.

Built once per process from `schemas.reference`, so validating a code is one dict membership
test and enriching a record is three `dict.update` calls — no dataclass attribute walks, no
region search per record. The field names are those of `schemas/avro/clean_extras.avsc`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from govpulse.schemas import reference

NO_DISTRICT: dict[str, Any] = {"district_name_th": None, "district_name_en": None}


@dataclass(frozen=True)
class ReferenceTables:
    """Agency, province and district codes with the clean_extras values each one implies."""

    agencies: dict[str, dict[str, str]]  # agency_code → agency and ministry names
    provinces: dict[str, dict[str, str]]  # province_code → province names and region
    districts: dict[str, dict[str, str]]  # district_code → district names
    district_province: dict[str, str]  # district_code → its province_code
    subdistricts: frozenset[str] = frozenset()  # current 6-digit subdistrict codes
    # abolished code → the one code a DOPA notice puts in its place (govpulse.streams.clean repairs)
    legacy_districts: dict[str, str] = field(default_factory=dict)
    legacy_subdistricts: dict[str, str] = field(default_factory=dict)

    def enrich(self, record: dict[str, Any]) -> None:
        """Add the reference fields to a record whose codes were validated."""
        record.update(self.agencies[record["agency_code"]])
        record.update(self.provinces[record["province_code"]])
        district = record.get("district_code")
        record.update(NO_DISTRICT if district is None else self.districts[district])


@cache
def reference_tables() -> ReferenceTables:
    """The tables, built on first use; a province without a region stops the process here."""
    agencies = {}
    for code, agency in reference.agencies().items():
        ministry = reference.ministry_of(code)
        agencies[code] = {
            "agency_name_th": agency.name_th,
            "agency_name_en": agency.name_en,
            "ministry_code": ministry.code,
            "ministry_name_th": ministry.name_th,
            "ministry_name_en": ministry.name_en,
        }
    provinces = {}
    for code, province in reference.provinces().items():
        try:
            region = reference.region_of(code)
        except KeyError:
            raise ValueError(
                f"province {code} ({province.name_en}) is in no region of "
                "schemas/reference/regions.json; add it there"
            ) from None
        provinces[code] = {
            "province_name_th": province.name_th,
            "province_name_en": province.name_en,
            "region_code": region.code,
            "region_name_th": region.name_th,
            "region_name_en": region.name_en,
        }
    districts = {
        code: {"district_name_th": district.name_th, "district_name_en": district.name_en}
        for code, district in reference.districts().items()
    }
    district_province = {code: d.province_code for code, d in reference.districts().items()}
    subdistricts = frozenset(
        code
        for district in reference.districts()
        for code in reference.subdistricts().get(district, ())
    )
    legacy: dict[int, dict[str, str]] = {4: {}, 6: {}}
    for code, area in reference.abolished().items():
        successor = area.successor
        if successor is not None and (successor in districts or successor in subdistricts):
            legacy[len(code)][code] = successor
    return ReferenceTables(
        agencies, provinces, districts, district_province, subdistricts, legacy[4], legacy[6]
    )
