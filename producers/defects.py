"""The kinds of dirty record agencies really send, and where each must end up.

The simulator injects at most one defect per record and counts them; the stream processor
reports the same reason codes, so every later stage can be checked against this ground truth.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    CLEAN = "clean"  # cleaning repairs it; it reaches clean.<type>
    DEAD_LETTER = "dead_letter"  # it goes to dlq.<type> with the defect's reason code
    DUPLICATE = "duplicate"  # dropped by de-duplication


class Defect(StrEnum):
    THAI_DIGITS = "thai_digits"
    BUDDHIST_ERA = "buddhist_era"
    ZERO_WIDTH = "zero_width"
    LATE = "late_timestamp"
    INVALID_NATIONAL_ID = "invalid_national_id"
    UNKNOWN_PROVINCE = "unknown_province"
    FUTURE = "future_timestamp"
    DUPLICATE = "duplicate"

    @property
    def outcome(self) -> Outcome:
        return _OUTCOMES[self]

    @property
    def reason(self) -> str | None:
        """The dead-letter reason code the stream processor uses, if it dead-letters."""
        return self.value if self.outcome is Outcome.DEAD_LETTER else None


_OUTCOMES = {
    Defect.THAI_DIGITS: Outcome.CLEAN,
    Defect.BUDDHIST_ERA: Outcome.CLEAN,
    Defect.ZERO_WIDTH: Outcome.CLEAN,
    Defect.LATE: Outcome.CLEAN,
    Defect.INVALID_NATIONAL_ID: Outcome.DEAD_LETTER,
    Defect.UNKNOWN_PROVINCE: Outcome.DEAD_LETTER,
    Defect.FUTURE: Outcome.DEAD_LETTER,
    Defect.DUPLICATE: Outcome.DUPLICATE,
}
