"""Property tests for the pure cleaning rules (no broker, milliseconds each)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from govpulse.streams.rules import buddhist_era, national_id, text, thai_digits
from govpulse.streams.rules.pseudonymise import PseudonymKey, pseudonym

ARABIC = "0123456789"
digit_strings = st.text(alphabet=ARABIC, min_size=1, max_size=20)
thai_text = st.text(
    alphabet=st.sampled_from(list("กขคงจฉชซญดตถทนบปผพฟมยรลวศษสหอฮะาำิีึืุูเแโใไ่้๊๋็์ ๐๑๒๓๔๕๖๗๘๙0123456789"))
    | st.sampled_from(list(text.ZERO_WIDTH + " \t\n\u00a0")),
    max_size=60,
)


def _thai_form(digits: str) -> str:
    return digits.translate(str.maketrans(ARABIC, thai_digits.THAI_DIGITS))


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    first = draw(st.text(alphabet=ARABIC, min_size=12, max_size=12))
    return first + str(national_id.check_digit(first))


# -- Thai digits ----------------------------------------------------------------------------
@given(digit_strings)
def test_thai_and_arabic_digit_forms_give_the_same_result(digits):
    assert thai_digits.to_arabic(_thai_form(digits)) == thai_digits.to_arabic(digits) == digits


@given(thai_text)
def test_digit_conversion_is_idempotent_and_leaves_no_thai_digit(value):
    once = thai_digits.to_arabic(value)
    assert thai_digits.to_arabic(once) == once
    assert not thai_digits.has_thai_digits(once)
    assert len(once) == len(value)


def test_thai_digits_pass_python_isdigit_which_is_why_we_convert_first():
    assert "๒๕๖๗".isdigit() and int("๒๕๖๗") == 2567
    assert re.fullmatch("[0-9]+", "๒๕๖๗") is None
    assert thai_digits.to_arabic("๒๕๖๗") == "2567"


# -- text -----------------------------------------------------------------------------------
@given(thai_text)
def test_clean_text_is_idempotent_and_strips_every_zero_width_char(value):
    once = text.clean_text(value)
    assert text.clean_text(once) == once
    assert not text.has_zero_width(once)
    assert "  " not in once and once == once.strip()
    assert unicodedata.is_normalized("NFC", once)


def test_sara_am_survives_cleaning_unlike_nfkc():
    word = "กำแพงเพชร"
    assert text.clean_text(word) == word
    assert unicodedata.normalize("NFKC", word) != word


def test_zero_width_space_inside_a_thai_word_is_removed():
    assert text.clean_text("เพช\u200bรบุรี\u200d ") == "เพชรบุรี"


# -- national ID ----------------------------------------------------------------------------
@given(valid_ids())
def test_valid_ids_always_pass_the_checksum(value):
    assert national_id.is_valid(value)


def _corrupt(value: str, position: int, delta: int) -> str:
    return value[:position] + str((int(value[position]) + delta) % 10) + value[position + 1 :]


def _residue(value: str) -> int:
    return sum(int(d) * w for d, w in zip(value[:12], range(13, 1, -1), strict=True)) % 11


@given(valid_ids(), st.integers(1, 9))
def test_every_corruption_of_the_check_digit_fails(value, delta):
    assert not national_id.is_valid(_corrupt(value, 12, delta))


@given(valid_ids(), st.integers(0, 11), st.integers(1, 9))
def test_single_digit_corruptions_fail_except_where_the_official_checksum_is_blind(
    value, position, delta
):
    """The official scheme cannot see two corruptions, and only those pass:
    the 3rd digit (weight 11 ≡ 0 mod 11), and a sum moving between residues 0 and 10
    (both give check digit 1)."""
    corrupted = _corrupt(value, position, delta)
    blind = position == 2 or {_residue(value), _residue(corrupted)} == {0, 10}
    assert national_id.is_valid(corrupted) == blind


@given(valid_ids())
def test_thai_digit_ids_pass_only_after_conversion(value):
    thai = _thai_form(value)
    assert not national_id.is_valid(thai)
    assert national_id.is_valid(thai_digits.to_arabic(thai))


def test_known_id_and_separators():
    assert national_id.check_digit("110170020345") == 0  # 144 mod 11 = 1; (11 - 1) mod 10 = 0
    assert national_id.is_valid(national_id.normalise("1-1017-00203-45-0"))
    assert not national_id.is_valid("110170020345")  # 12 digits
    assert not national_id.is_valid("11017002034512")  # 14 digits


# -- Buddhist Era ---------------------------------------------------------------------------
def test_be_year_2567_becomes_2024():
    assert buddhist_era.to_ce_year(2567) == 2024


@given(st.integers(buddhist_era.CE_MIN, buddhist_era.CE_MAX))
def test_a_ce_year_is_never_shifted_and_its_be_form_comes_back(year):
    assert buddhist_era.to_ce_year(year) == year
    assert buddhist_era.to_ce_year(year + 543) == year


@given(st.integers(-(10**6), 10**6))
def test_year_conversion_is_idempotent(year):
    once = buddhist_era.to_ce_year(year)
    assert buddhist_era.to_ce_year(once) == once


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 12, 31)))
def test_be_timestamp_shifts_back_to_the_same_wall_clock(moment):
    moment = moment.replace(tzinfo=UTC, microsecond=moment.microsecond // 1000 * 1000)
    assume(not (moment.month == 2 and moment.day == 29))
    epoch, milli = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)
    ce = (moment - epoch) // milli
    be = (moment.replace(year=moment.year + 543) - epoch) // milli
    assert buddhist_era.to_ce_timestamp(be) == ce
    assert buddhist_era.to_ce_timestamp(ce) == ce


# -- pseudonyms ---------------------------------------------------------------------------
keys = st.binary(min_size=32, max_size=64)


@given(keys, valid_ids())
def test_pseudonym_is_stable_per_key(secret, value):
    key = PseudonymKey("k1", secret)
    assert pseudonym(key, value) == pseudonym(PseudonymKey("k1", secret), value)


@given(keys, keys, valid_ids())
def test_pseudonyms_differ_across_keys(secret_a, secret_b, value):
    assume(secret_a != secret_b)
    assert pseudonym(PseudonymKey("a", secret_a), value) != pseudonym(
        PseudonymKey("b", secret_b), value
    )


@given(keys, valid_ids())
def test_pseudonym_never_contains_thirteen_digits_or_the_id(secret, value):
    result = pseudonym(PseudonymKey("k", secret), value)
    assert value not in result
    assert re.search("[0-9]{13}", result) is None


def test_a_short_key_is_refused_and_repr_hides_the_secret():
    try:
        PseudonymKey("weak", b"short")
    except ValueError as error:
        assert "weak" in str(error)
    else:
        raise AssertionError("a 5-byte key was accepted")
    assert "s3cr3t" not in repr(PseudonymKey("k", b"s3cr3t" * 8))
