"""Reference data: complete, consistent, and as DOPA codes it."""

from __future__ import annotations

import re

from govpulse.schemas import reference

THAI = re.compile("[\u0e00-\u0e7f]")


def test_there_are_77_provinces_and_928_districts():
    assert len(reference.provinces()) == 77
    assert len(reference.districts()) == 928


def test_province_76_is_phetchaburi_in_the_west():
    assert reference.provinces()["76"].name_en == "Phetchaburi"
    assert reference.provinces()["76"].name_th == "เพชรบุรี"
    assert reference.region_of("76").code == "W"


def test_every_district_belongs_to_a_known_province_by_its_code_prefix():
    provinces = reference.provinces()
    for district in reference.districts().values():
        assert district.province_code in provinces
        assert district.code[:2] == district.province_code
        assert re.fullmatch("[0-9]{4}", district.code)


def test_every_subdistrict_is_in_its_district_by_its_code_prefix():
    listed = reference.subdistricts()
    assert sorted(listed) == sorted(reference.districts())
    codes = [code for district, codes in listed.items() for code in codes if code[:4] == district]
    assert len(codes) == sum(map(len, listed.values())) == len(set(codes)) > 7_000
    assert all(re.fullmatch("[0-9]{6}", code) for code in codes)


def test_abolished_codes_are_not_current_and_their_successors_are():
    current = {*reference.districts(), *(c for cs in reference.subdistricts().values() for c in cs)}
    abolished = reference.abolished()
    assert abolished["4303"].successor == "3801"  # Bueng Kan became a province in 2011
    for code, area in abolished.items():
        assert code not in current and len(code) == {"district": 4, "subdistrict": 6}[area.level]
        assert all(s in current and len(s) == len(code) for s in area.successors), code


def test_every_province_is_in_exactly_one_region():
    listed = [code for region in reference.regions().values() for code in region.provinces]
    assert sorted(listed) == sorted(reference.provinces())
    assert len(reference.regions()) == 6


def test_every_department_has_an_existing_ministry_as_parent():
    agencies = reference.agencies()
    for agency in agencies.values():
        if agency.parent is not None:
            assert agencies[agency.parent].parent is None, agency.code
            assert agency.code.startswith(agency.parent + "-")
    assert reference.ministry_of("MOI-DOPA").code == "MOI"
    assert reference.ministry_of("MOI").code == "MOI"


def test_the_twenty_ministries_and_sixty_departments_are_there():
    agencies = reference.agencies().values()
    assert sum(a.parent is None for a in agencies) >= 20
    assert sum(a.parent is not None for a in agencies) >= 50


def test_names_are_thai_and_english():
    rows = [*reference.provinces().values(), *reference.agencies().values()]
    for row in rows:
        assert THAI.search(row.name_th), row
        assert row.name_en.isascii() and row.name_en, row
