"""Buddhist Era (พ.ศ. = CE + 543) years become Common Era years.

A year is taken as BE when it falls in the plausibility window for BE and not for CE, so a
year already in CE is never shifted twice (converting is idempotent).
"""

from __future__ import annotations

from govpulse.schemas.timestamps import epoch_millis, from_epoch_millis

BE_OFFSET = 543
# Plausible CE years for government records; BE years are the same window shifted by 543.
CE_MIN, CE_MAX = 1900, 2200
BE_MIN, BE_MAX = CE_MIN + BE_OFFSET, CE_MAX + BE_OFFSET  # 2443 … 2743


def is_be_year(year: int) -> bool:
    return year > CE_MAX and BE_MIN <= year <= BE_MAX


def to_ce_year(year: int) -> int:
    """2567 → 2024; 2024 → 2024; anything outside both windows is returned unchanged."""
    return year - BE_OFFSET if is_be_year(year) else year


def _year_of_millis(millis: int) -> int:
    return from_epoch_millis(millis).year


def is_be_timestamp(millis: int) -> bool:
    """True when an epoch-millis timestamp lands in a BE year (an agency wrote 2567-…)."""
    try:
        return is_be_year(_year_of_millis(millis))
    except OverflowError:
        return False


def to_ce_timestamp(millis: int) -> int:
    """Shift a timestamp written with a BE year back by 543 years (same month, day, time)."""
    if not is_be_timestamp(millis):
        return millis
    moment = from_epoch_millis(millis)
    try:
        shifted = moment.replace(year=moment.year - BE_OFFSET)
    except ValueError:  # 29 February in a BE year that is not leap in CE: keep the 28th
        shifted = moment.replace(year=moment.year - BE_OFFSET, day=28)
    return epoch_millis(shifted)
