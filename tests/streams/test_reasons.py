"""Dead-letter reason codes: a contract with the simulator's ground truth and the audit."""

from __future__ import annotations

from govpulse.producers.defects import Defect, Outcome
from govpulse.streams.clean import Fix
from govpulse.streams.reasons import Reason


def test_every_dead_lettering_defect_has_its_reason_code():
    dead_letter = [defect for defect in Defect if defect.outcome is Outcome.DEAD_LETTER]
    assert dead_letter
    for defect in dead_letter:
        assert Reason(defect.reason) == defect.reason


def test_every_repairable_defect_that_changes_a_value_is_a_fix_kind():
    repaired = [d for d in Defect if d.outcome is Outcome.CLEAN and d is not Defect.LATE]
    assert {Fix(d.value) for d in repaired} == {Fix.THAI_DIGITS, Fix.BUDDHIST_ERA, Fix.ZERO_WIDTH}


def test_reason_codes_are_the_released_strings():
    assert {reason.value for reason in Reason} == {
        "undecodable",
        "unknown_schema",
        "invalid_value",
        "unknown_agency",
        "unknown_province",
        "unknown_district",
        "unknown_subdistrict",
        "future_timestamp",
        "outside_retention",
        "invalid_national_id",
        "too_large",
    }
