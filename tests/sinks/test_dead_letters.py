"""Dead letters reach ClickHouse without a payload and without any 13-digit run (PDPA)."""

from __future__ import annotations

from govpulse.sinks.columns import DEAD_LETTER_COLUMNS
from govpulse.sinks.dead_letters import ID_MASK, dead_letter_row, mask_ids

LINEAGE = [
    ("source_topic", b"raw.complaint"),
    ("source_partition", b"2"),
    ("source_offset", b"41"),
    ("first_seen", b"1718336400000"),
    ("reason", b"invalid_national_id"),
    ("detail", b"complainant_id '1234567890124' fails the checksum"),
]


def test_a_dead_letter_keeps_reason_lineage_and_event_id_but_no_payload():
    row = dict(
        zip(
            DEAD_LETTER_COLUMNS,
            dead_letter_row("complaint", b"evt-1", LINEAGE, "dlq.complaint", 0, 7, 99),
            strict=True,
        )
    )
    assert row["payload"] == ""
    assert row["reason"] == "invalid_national_id"
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (
        "raw.complaint",
        2,
        41,
    )
    assert row["first_seen"] == 1718336400000
    assert row["event_id"] == "evt-1"
    assert "1234567890124" not in row["detail"] and ID_MASK in row["detail"]


def test_thirteen_digit_runs_are_masked_in_arabic_thai_and_printed_forms():
    assert mask_ids("id 1101700203450 end") == f"id {ID_MASK} end"
    assert mask_ids("id ๑๑๐๑๗๐๐๒๐๓๔๕๐") == f"id {ID_MASK}"
    assert mask_ids("1-1017-00203-45-0") == ID_MASK
    assert mask_ids("order 12345678901234 has 14 digits") == "order 12345678901234 has 14 digits"
    assert mask_ids("phone 0812345678") == "phone 0812345678"


def test_a_message_without_lineage_points_at_itself():
    row = dict(
        zip(
            DEAD_LETTER_COLUMNS,
            dead_letter_row("complaint", None, None, "dlq.complaint", 3, 8, 1234),
            strict=True,
        )
    )
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (
        "dlq.complaint",
        3,
        8,
    )
    assert row["reason"] == "unknown" and row["event_id"] is None and row["first_seen"] == 1234
