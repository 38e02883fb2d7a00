"""ID-shaped numbers in free text are masked through the whole transform, valid or not, in
every spelling an ID field accepts — and ordinary numbers are left alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from govpulse.schemas import catalog
from govpulse.schemas.wire_format import encode
from govpulse.streams.clean import clean_string
from govpulse.streams.decode import RawDecoder
from govpulse.streams.pii import ID_MASK, IdMasker, redact_ids, scrub_national_ids
from govpulse.streams.rules import national_id, thai_digits
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.rules.text import ZERO_WIDTH
from govpulse.streams.transform import Cleaned, Rejected, Transformer
from tests.support import examples

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AT = datetime(2024, 6, 14, 3, 30, tzinfo=UTC)  # the examples' occurred_at
NOW_MS = (AT + timedelta(minutes=1) - EPOCH) // timedelta(milliseconds=1)
ARABIC = "0123456789"
TO_THAI = str.maketrans(ARABIC, thai_digits.THAI_DIGITS)
VALID_ID = "1101700230708"
MISTYPED_ID = "1101700230709"  # one digit off: fails the checksum
assert national_id.is_valid(VALID_ID) and not national_id.is_valid(MISTYPED_ID)

# A registry in a dict: the latest raw schema and the clean schema of each type.
SCHEMAS: dict[int, Any] = {}
RAW_ID: dict[str, int] = {}
CLEAN_ID: dict[str, int] = {}
for _type in catalog.EVENT_TYPES:
    RAW_ID[_type] = len(SCHEMAS) + 1
    SCHEMAS[RAW_ID[_type]] = parse_schema(catalog.raw_schema(_type))
    CLEAN_ID[_type] = len(SCHEMAS) + 1
    SCHEMAS[CLEAN_ID[_type]] = parse_schema(catalog.clean_schema(_type))
COMPLAINT = Transformer(
    "complaint", SCHEMAS.__getitem__, CLEAN_ID["complaint"], PseudonymKey("k", b"t" * 32)
)


def process(**changes: Any) -> Cleaned | Rejected:
    record = {**examples.example("complaint"), **changes}
    return COMPLAINT.process(
        encode(RAW_ID["complaint"], SCHEMAS[RAW_ID["complaint"]], record), 0, 0, NOW_MS
    )


def cleaned(**changes: Any) -> Cleaned:
    result = process(**changes)
    assert isinstance(result, Cleaned), result
    return result


def subject_of(subject: str) -> str:
    return cleaned(subject=subject).record["subject"]


def masked_count(field: str, event_type: str = "complaint") -> float:
    labels = {"event_type": event_type, "field": field}
    return REGISTRY.get_sample_value("govpulse_streams_ids_masked_total", labels) or 0.0


def is_separator(char: str) -> bool:
    """What an ID field drops between digits: '-', whitespace, zero-width characters."""
    return char == "-" or char.isspace() or char in ZERO_WIDTH


def holds_id_shaped_number(text: str) -> bool:
    """The definition in `streams.pii`, without a regex: runs of digits ("groups") joined by
    separators, where some whole consecutive groups make 13 digits or one group 14 or more."""
    chains: list[list[int]] = [[]]
    digits = 0
    for char in thai_digits.to_arabic(text) + "\0":
        if char in ARABIC:
            digits += 1
            continue
        if digits:
            chains[-1].append(digits)
            digits = 0
        if not is_separator(char):
            chains.append([])
    return any(
        group >= 14 or any(sum(chain[i:j]) == 13 for j in range(i + 1, len(chain) + 1))
        for chain in chains
        for i, group in enumerate(chain)
    )


# -- examples ----------------------------------------------------------------------------------
def test_mistyped_id_in_subject_is_masked():
    result = cleaned(subject=f"ผู้ร้อง {MISTYPED_ID} แจ้งว่า")
    assert result.record["subject"] == f"ผู้ร้อง {ID_MASK} แจ้งว่า"
    assert result.defects_fixed == ["national_id_in_text"]
    assert MISTYPED_ID.encode() not in result.value


@pytest.mark.parametrize(
    "spelling",
    ["1-1017-00230-70-9", "1 1017 00230 70 9", "1-1017 00230-709", "1 - 1017 - 00230 - 70 - 9"],
)
def test_mistyped_id_with_printed_separators_is_masked(spelling):
    assert subject_of(f"เลขบัตร {spelling} ครับ") == f"เลขบัตร {ID_MASK} ครับ"


@pytest.mark.parametrize("spelling", [MISTYPED_ID, "1-1017-00230-70-9"])
def test_mistyped_id_in_thai_digits_is_masked(spelling):
    result = cleaned(subject=f"เลขบัตร {spelling.translate(TO_THAI)}")
    assert result.record["subject"] == f"เลขบัตร {ID_MASK}"
    assert result.defects_fixed == ["thai_digits", "national_id_in_text"]


@pytest.mark.parametrize(
    "spelling",
    ["1\u00a01017\u00a000230\u00a070\u00a09", "11017\u00a0\u00a0002307\u00a008"],
    ids=["mistyped, printed groups", "valid, other groups"],
)
def test_id_with_nbsp_separators_is_masked(spelling):
    assert subject_of(f"เลข\u00a0{spelling}\u00a0ครับ") == f"เลข {ID_MASK} ครับ"


def test_valid_id_broken_across_a_line_is_masked():
    result = cleaned(subject="ผู้ร้องเลขบัตร 1-1017-\n00230-70-8 แจ้งว่าไฟดับ")
    assert result.record["subject"] == f"ผู้ร้องเลขบัตร {ID_MASK} แจ้งว่าไฟดับ"
    assert result.defects_fixed == ["whitespace", "national_id_in_text"]


def test_id_spelled_oddly_in_a_clean_subject_is_found_by_the_byte_precheck():
    """Cleaning leaves this subject alone, so only the payload pre-check sends it to the regex."""
    subject = "ผู้ร้องเลขบัตร 1-1017- 00230-70-8 แจ้งว่าไฟดับ"
    assert clean_string(subject) == (subject, [])
    assert subject_of(subject) == f"ผู้ร้องเลขบัตร {ID_MASK} แจ้งว่าไฟดับ"


def test_id_next_to_a_phone_number_is_masked_and_the_phone_stays():
    assert subject_of(f"{MISTYPED_ID} 0812345678") == f"{ID_MASK} 0812345678"


def test_ordinary_numbers_stay_while_a_mistyped_id_beside_them_is_masked():
    ordinary = "โทร 0812345678 หรือ 02-123-4567 วันที่ 2567-01-01 ค่าปรับ 1,234,567 บาท"
    result = cleaned(subject=f"{ordinary} เลขบัตร {MISTYPED_ID}", complaint_no="1111-670614-0007")
    assert result.record["subject"] == f"{ordinary} เลขบัตร {ID_MASK}"
    assert result.record["complaint_no"] == "1111-670614-0007"  # 4 + 6 + 4 digits: not 13


def test_a_longer_run_of_digits_is_masked_as_it_may_hold_an_id():
    assert subject_of(f"บัญชี {MISTYPED_ID}42 ครับ") == f"บัญชี {ID_MASK} ครับ"


def test_the_event_id_is_never_masked_even_when_its_digits_look_like_an_id():
    event_id = "abcdefa1-1234-4234-8234-1234bcdefabc"  # 1 + 4 + 4 + 4 digits across dashes
    result = cleaned(event_id=event_id, subject=f"เลขบัตร {MISTYPED_ID}")
    assert result.event_id == result.record["event_id"] == event_id
    assert result.record["subject"] == f"เลขบัตร {ID_MASK}"


def test_dead_letter_details_mask_a_mistyped_id_in_any_spelling():
    result = process(province_code="11017-00230709")
    assert isinstance(result, Rejected)
    assert ID_MASK in result.detail and "00230709" not in result.detail


# -- metrics -----------------------------------------------------------------------------------
def test_masks_are_counted_per_field():
    before = {name: masked_count(name) for name in ("subject", "source_system", "complaint_no")}
    cleaned(
        subject=f"{MISTYPED_ID} และ 1-1017-\n00230-70-8",
        source_system=f"desk {VALID_ID}",
    )
    after = {name: masked_count(name) for name in before}
    assert after["subject"] - before["subject"] == 2
    assert after["source_system"] - before["source_system"] == 1
    assert after["complaint_no"] == before["complaint_no"]


def test_a_masker_given_its_event_type_exports_every_text_field_from_the_start():
    masker = IdMasker(catalog.raw_schema("dataset_update"), "dataset_update")
    for name in masker.text_fields:
        assert (
            REGISTRY.get_sample_value(
                "govpulse_streams_ids_masked_total", {"event_type": "dataset_update", "field": name}
            )
            is not None
        )
    assert "event_id" not in masker.text_fields  # a UUID, validated: not free text


# -- properties --------------------------------------------------------------------------------
texts = st.text(
    alphabet=st.sampled_from([*ARABIC, *ARABIC, "๑", "๕", "-", " ", "\n", "\u00a0", "\u200b"])
    | st.sampled_from(["a", "ก", "/", ",", "."]),
    max_size=60,
)


@settings(max_examples=500)
@given(texts)
def test_exactly_the_id_shaped_numbers_are_masked_in_text_and_details(text):
    masked = scrub_national_ids(text)
    assert (masked != text) == holds_id_shaped_number(text)
    assert not holds_id_shaped_number(masked)
    assert redact_ids(text) == masked


COMPLAINT_DECODER = RawDecoder("complaint", SCHEMAS.__getitem__)
COMPLAINT_MASKER = IdMasker(catalog.raw_schema("complaint"))


@st.composite
def digit_groups(draw: st.DrawFn) -> str:
    """Runs of Arabic or Thai digits joined by separators (clean or not) or other characters."""
    groups = draw(st.lists(st.text(alphabet=ARABIC + "๑๕", min_size=1, max_size=14), max_size=6))
    joins = st.sampled_from(["-", " ", "- ", " - ", "--", "a", "/", "ก", " x ", "\u00a0", "-\n"])
    return "".join(group + draw(joins) for group in groups)


@settings(max_examples=300)
@given(digit_groups(), st.text(alphabet=ARABIC, max_size=13))
def test_the_byte_precheck_never_misses_an_id_shaped_number_outside_the_pii_fields(
    subject, complainant_id
):
    """A field cleaning leaves alone is checked on the payload bytes only (the regex sees the
    fields cleaning changed): there, every ID-shaped number must show. Thai digits, NBSP and
    line breaks are not in the byte check: cleaning changes every field that holds one."""
    record = {
        **examples.example("complaint"),
        "complaint_no": "1111-0007",
        "subject": subject,
        "complainant_id": complainant_id,
    }
    payload = encode(RAW_ID["complaint"], SCHEMAS[RAW_ID["complaint"]], record)
    _, payload, starts, _ = COMPLAINT_DECODER.decode(payload)
    if holds_id_shaped_number(subject) and clean_string(subject)[0] == subject:
        assert COMPLAINT_MASKER.may_hold_ids(payload, starts)


SEPARATORS = ["", "", "", "-", " ", "\u00a0", "\n", "\t", "- ", "-\n", " - ", "\u200b", "--"]
words = st.text(
    alphabet=st.sampled_from(list("กขคงจนมยรลวสหอะาำิีุูเแโไ่้ ABCxyz/.,:()"))
    | st.sampled_from([" ", "\n", "\u00a0", "\u200b", "-"]),
    max_size=20,
)


@st.composite
def id_spellings(draw: st.DrawFn) -> str:
    """13 digits (any, most failing the checksum), each Arabic or Thai, separators anywhere."""
    digits = draw(st.text(alphabet=ARABIC, min_size=13, max_size=13))
    thai = draw(st.sampled_from(["none", "all", "some"]))
    spelled = []
    for index, digit in enumerate(digits):
        if thai == "all" or (thai == "some" and draw(st.booleans())):
            digit = digit.translate(TO_THAI)
        spelled.append((draw(st.sampled_from(SEPARATORS)) if index else "") + digit)
    return "".join(spelled)


TEXT_FIELDS = ["subject", "source_system", "complaint_no"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(TEXT_FIELDS), words, id_spellings(), words)
def test_no_id_spelling_in_free_text_survives_cleaning(field, before, spelling, after):
    result = cleaned(**{field: f"{before} {spelling} {after}"})
    text = result.record[field]
    assert ID_MASK in text
    assert not re.search(r"[0-9]{13}", re.sub(r"[-\s]", "", thai_digits.to_arabic(text)))


numbers = st.text(alphabet=st.sampled_from([*ARABIC, "๑", " ", "-", "\n", "x", "ก", "/"]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(numbers, id_spellings(), numbers)
def test_an_id_among_other_numbers_leaves_no_id_shaped_number(before, spelling, after):
    text = cleaned(subject=f"{before} {spelling} {after}").record["subject"]
    assert ID_MASK in text
    assert not holds_id_shaped_number(text)
