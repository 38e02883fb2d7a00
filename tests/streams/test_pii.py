"""Personal data: the fast paths agree with the rules, and IDs in free text are caught."""

from __future__ import annotations

from fastavro import parse_schema
from hypothesis import given
from hypothesis import strategies as st

from govpulse.schemas import catalog
from govpulse.schemas.wire_format import encode
from govpulse.streams.decode import RawDecoder
from govpulse.streams.pii import (
    ID_MASK,
    IdMasker,
    Pseudonymiser,
    is_valid_id,
    mask,
    normalise_phone,
    redact_ids,
    scrub_national_ids,
)
from govpulse.streams.reasons import Reason
from govpulse.streams.rules import national_id
from govpulse.streams.rules.pseudonymise import PseudonymKey, pseudonym
from tests.support import examples

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


def test_numbers_that_fail_the_checksum_or_are_longer_are_masked_too():
    text = "1101700203451 และ 11017002034501"
    assert scrub_national_ids(text) == f"{ID_MASK} และ {ID_MASK}"


def test_numbers_whose_digit_groups_cannot_make_thirteen_stay_beside_a_masked_one():
    ordinary = "1111-670614-0007 2564 2565 2566 2567 1234 5678 9012 3456 2567/00123 1,234,567"
    assert scrub_national_ids(f"{ordinary} ที่ 1-1017- 00203-45-1") == f"{ordinary} ที่ {ID_MASK}"


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


COMPLAINT_RAW = catalog.raw_schema("complaint")


def laid_out(**changes: str | None) -> tuple[bytes, tuple[int, ...]]:
    """A complaint payload as the worker reads it, and where its fields start."""
    record = {**examples.example("complaint"), **changes}
    payload = encode(1, parse_schema(COMPLAINT_RAW), record)
    _, payload, starts, _ = RawDecoder("complaint", {1: parse_schema(COMPLAINT_RAW)}.get).decode(
        payload
    )
    assert starts is not None
    return payload, starts


def test_an_id_only_in_its_own_pii_field_does_not_trigger_the_regex_pass():
    payload, starts = laid_out(complaint_no="1111-0007", complainant_id="1-1017-00203-45-0")
    assert not IdMasker(COMPLAINT_RAW).may_hold_ids(payload, starts)
    payload, starts = laid_out(complaint_no="1111-0007", subject="เลข 1-1017-00203-45-0")
    assert IdMasker(COMPLAINT_RAW).may_hold_ids(payload, starts)


def test_details_lose_every_id_shaped_number_valid_or_not():
    assert redact_ids("province_code '1101700203451' is not a DOPA province code") == (
        f"province_code '{ID_MASK}' is not a DOPA province code"
    )


def test_details_lose_an_id_in_any_spelling_an_id_field_accepts():
    for spelling in (
        "11017-0020345-1",
        "1 1017 00203\n45 1",
        "๑๑๐๑๗๐๐๒๐๓๔๕๑",
        "110170\u200b0203451",
    ):
        assert redact_ids(f"value '{spelling}' is not a code") == f"value '{ID_MASK}' is not a code"
