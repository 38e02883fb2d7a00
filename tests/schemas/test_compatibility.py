"""Compatibility levels decided by Apache Avro's checker; messages name the field."""

from __future__ import annotations

import json

import pytest

from govpulse.schemas.compatibility import LEVELS, InvalidSchema, check


def record(*fields: dict) -> str:
    return json.dumps({"type": "record", "name": "Event", "fields": list(fields)})


ID = {"name": "event_id", "type": "string"}
PROVINCE = {"name": "province_code", "type": "string"}
DISTRICT_OPTIONAL = {"name": "district_code", "type": ["null", "string"], "default": None}
DISTRICT_REQUIRED = {"name": "district_code", "type": "string"}

V1 = record(ID, PROVINCE)


def test_adding_an_optional_field_with_default_is_backward_compatible():
    assert check(record(ID, PROVINCE, DISTRICT_OPTIONAL), [V1], "BACKWARD") == []


def test_adding_field_without_default_breaks_backward_and_names_the_field():
    problems = check(record(ID, PROVINCE, DISTRICT_REQUIRED), [V1], "BACKWARD")
    assert len(problems) == 1
    assert "'district_code'" in problems[0] and "no default" in problems[0]


def test_removing_a_field_without_default_breaks_forward_but_not_backward():
    without_province = record(ID)
    assert check(without_province, [V1], "BACKWARD") == []
    problems = check(without_province, [V1], "FORWARD")
    assert any("'province_code'" in p for p in problems)


def test_changing_a_type_breaks_full_in_both_directions():
    changed = record(ID, {"name": "province_code", "type": "int"})
    problems = check(changed, [V1], "FULL")
    assert any(p.startswith("BACKWARD") for p in problems)
    assert any(p.startswith("FORWARD") for p in problems)


def test_transitive_checks_every_version_plain_only_the_latest():
    v1 = record(ID, {"name": "channel", "type": "string"})
    v2 = record(ID)  # drops channel: fine for BACKWARD
    v3 = record(ID, {"name": "channel", "type": "int"})  # reads v2 (no channel) badly? no: v1
    v3 = record(ID, {"name": "channel", "type": "int", "default": 0})
    assert check(v3, [v1, v2], "BACKWARD") == []
    problems = check(v3, [v1, v2], "BACKWARD_TRANSITIVE")
    assert problems and "version 1" in problems[0] and "'channel'" in problems[0]


@pytest.mark.parametrize("level", LEVELS)
def test_first_version_is_always_accepted(level):
    assert check(V1, [], level) == []


def test_none_accepts_anything_valid():
    assert check(record({"name": "x", "type": "bytes"}), [V1], "NONE") == []


def test_invalid_avro_and_unknown_level_are_refused():
    with pytest.raises(InvalidSchema):
        check('{"type": "record", "name": "R"}', [], "BACKWARD")
    with pytest.raises(ValueError, match="SIDEWAYS"):
        check(V1, [V1], "SIDEWAYS")
