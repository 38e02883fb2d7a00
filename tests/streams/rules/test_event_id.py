"""One event id, one spelling: ids are canonical before de-duplication compares them."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govpulse.streams.batch import BatchProcessor, DictDedup, Output, RawRecord
from govpulse.streams.reasons import Reason
from govpulse.streams.rules.event_id import canonical_event_id
from govpulse.streams.validate import is_uuid
from tests.support.transform import NOW_MS, TRANSFORMERS, cleaned, example, payload, rejected

ID = "6e2f4a1b-3c8d-4e6f-9b2e-0d3c4b5a6f7e"
SPELLINGS = [
    ID,
    ID.upper(),
    ID.replace("-", ""),
    ID.upper().replace("-", ""),
    "{" + ID + "}",
    "{" + ID.replace("-", "").upper() + "}",
    "urn:uuid:" + ID,
    "URN:UUID:" + ID.upper(),
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_accepted_spelling_becomes_the_lowercase_canonical_id(spelling):
    assert canonical_event_id(spelling) == ID


@pytest.mark.parametrize(
    "spelling",
    [
        "",
        "not-a-uuid",
        ID[:-1],
        ID + "0",
        "{" + ID,  # unbalanced braces
        ID + "}",
        "6e2f4a1b3c8d-4e6f-9b2e-0d3c4b5a6f7e",  # dashes in some places only
        "6e2f-4a1b-3c8d-4e6f-9b2e-0d3c-4b5a-6f7e",  # uuid.UUID takes this; we do not
        "6e2f4a1b-3c8d-4e6f-9b2e-0d3c4b5a6f7g",
        "{{" + ID + "}}",
    ],
)
def test_other_spellings_are_not_event_ids(spelling):
    assert canonical_event_id(spelling) is None
    assert not is_uuid(spelling)


@given(st.uuids(), st.booleans(), st.booleans(), st.sampled_from(["", "braces", "urn"]))
def test_canonical_form_is_what_uuid_prints(value, upper, no_dashes, wrap):
    text = str(value).replace("-", "") if no_dashes else str(value)
    text = text.upper() if upper else text
    text = {"": text, "braces": "{" + text + "}", "urn": "urn:uuid:" + text}[wrap]
    assert canonical_event_id(text) == str(value) == str(uuid.UUID(text))


@pytest.mark.parametrize("spelling", SPELLINGS[1:])
def test_a_non_canonical_id_is_stored_canonical_and_reported_as_fixed(spelling):
    result = cleaned("complaint", example("complaint", event_id=spelling))
    assert result.event_id == result.record["event_id"] == ID
    assert "event_id_spelling" in result.defects_fixed


def test_a_canonical_id_is_not_a_defect():
    result = cleaned("complaint", example("complaint", event_id=ID))
    assert "event_id_spelling" not in result.defects_fixed


def test_one_id_in_upper_and_lower_case_is_one_event():
    """The same UUID in two spellings passed de-duplication twice and gave two rows."""
    dedup = DictDedup()
    processor = BatchProcessor("complaint", TRANSFORMERS["complaint"], dedup)
    output = Output("127.0.0.1:9", {"log_level": 0}, security={})
    records = [
        RawRecord(spelling.encode(), payload("complaint", example("complaint", event_id=spelling)),
                  0, offset)
        for offset, spelling in enumerate(SPELLINGS)
    ]  # fmt: skip
    counts = processor.route(records, output, NOW_MS)
    assert counts.clean == 1 and counts.duplicates == len(SPELLINGS) - 1
    assert list(dedup.first_seen) == [ID]


def test_an_id_uuid_accepts_but_clickhouse_refuses_is_an_invalid_value():
    """`uuid.UUID` drops dashes wherever they stand; ClickHouse's UUID parser does not."""
    result = rejected("complaint", example("complaint", event_id="6e2f-4a1b" + ID[8:]))
    assert result.reason is Reason.INVALID_VALUE
