"""Personal data: the fast paths agree with the rules, and IDs in free text are caught."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas import catalog
from streams.pii import (
    ID_MASK,
    IdMasker,
    Pseudonymiser,
    is_valid_id,
    mask,
    normalise_phone,
    redact_ids,
    scrub_national_ids,
)
from streams.reasons import Reason
from streams.rules import national_id
from streams.rules.pseudonymise import PseudonymKey, pseudonym

DIGITS = "0123456789"
valid_ids = st.text(alphabet=DIGITS, min_size=12, max_size=12).map(
    lambda first: first + str(national_id.check_digit(first))
)
id_like = st.text(alphabet=DIGITS + "๑๒ -x", max_size=15) | valid_ids


@given(st.binary(min_size=32, max_size=200), st.text(max_size=40))
def test_precomputed_hmac_equals_the_rule(secret, value):
    key = PseudonymKey("k", secret)
    assert Pseudonymiser(catalog.raw_schema("complaint"), key).pseudonym(value) == pseudonym(
        key, value
    )


@given(id_like)
def test_fast_id_check_equals_the_rule(value):
    assert is_valid_id(value) == national_id.is_valid(value)


def test_phone_notations_normalise_to_one_number():
    for notation in (
        "0812345678",
        "081-234-5678",
        "081 234 5678",
        "+66 81 234 5678",
        "+66812345678",
    ):
        assert normalise_phone(notation) == "0812345678"


def test_mask_keeps_only_the_ends():
    assert mask("1101700203451") == "1xxxxxxxxxxx1"
    assert mask("123") == "xxx"


def test_ids_in_text_are_masked_whatever_the_notation():
    text = "ผู้ร้อง 1101700203450 หรือ 1-1017-00203-45-0 โทร 0812345678"
    assert scrub_national_ids(text) == f"ผู้ร้อง {ID_MASK} หรือ {ID_MASK} โทร 0812345678"


def test_numbers_that_fail_the_checksum_or_are_longer_stay():
    text = "1101700203451 และ 11017002034501"
    assert scrub_national_ids(text) == text


def test_pseudonymiser_rejects_a_bad_id_without_showing_it():
    engine = Pseudonymiser(catalog.raw_schema("complaint"), PseudonymKey("k", b"s" * 32))
    failure = engine.apply({"complainant_id": "1101700203451", "complainant_phone": None})
    assert failure is not None and failure[0] is Reason.INVALID_NATIONAL_ID
    assert "1101700203451" not in failure[1] and "1xxxxxxxxxxx1" in failure[1]


def test_an_empty_phone_is_treated_as_absent():
    engine = Pseudonymiser(catalog.raw_schema("complaint"), PseudonymKey("k", b"s" * 32))
    record = {"complainant_id": None, "complainant_phone": "-"}
    assert engine.apply(record) is None
    assert record == {
        "complainant_id_pseudonym": None,
        "complainant_phone_pseudonym": None,
        "pseudonym_key_id": None,
    }


COMPLAINT = [f["name"] for f in catalog.raw_schema("complaint")["fields"]]
AT_ID = COMPLAINT.index("complainant_id")


@given(st.text(alphabet=DIGITS + "- ab", max_size=40), st.text(alphabet=DIGITS, max_size=13))
def test_the_byte_precheck_never_misses_an_id_outside_the_pii_fields(subject, complainant):
    """A payload laid out as: every field before complainant_id holds `subject`'s bytes,
    complainant_id holds `complainant`, the rest is empty. IDs in the PII field don't count."""
    before, pii = subject.encode(), complainant.encode()
    payload = b"\x00\x00\x00\x00\x01" + before + pii
    starts = (
        [5] * AT_ID + [5 + len(before)] + [5 + len(before) + len(pii)] * (len(COMPLAINT) - AT_ID)
    )
    flagged = IdMasker(catalog.raw_schema("complaint")).may_hold_ids(payload, tuple(starts))
    if scrub_national_ids(subject) != subject:
        assert flagged


def test_an_id_only_in_its_own_pii_field_does_not_trigger_the_regex_pass():
    pii = b"1101700203450"
    payload = b"\x00\x00\x00\x00\x01" + b"subject" + pii
    starts = [5] * AT_ID + [12] + [12 + len(pii)] * (len(COMPLAINT) - AT_ID)
    assert not IdMasker(catalog.raw_schema("complaint")).may_hold_ids(payload, tuple(starts))


def test_details_lose_every_id_shaped_number_valid_or_not():
    assert redact_ids("province_code '1101700203451' is not a DOPA province code") == (
        f"province_code '{ID_MASK}' is not a DOPA province code"
    )
