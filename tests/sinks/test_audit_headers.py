"""The audit reads lineage and reasons from outcome records' headers, without a broker.

Kafka allows a header without a value (confluent-kafka gives None for it): such a record is
one the audit cannot place or explain, never a crash of the whole audit.
"""

from __future__ import annotations

from confluent_kafka import Message

from govpulse.sinks.audit import _Outcomes


def _outcomes() -> _Outcomes:
    return _Outcomes("complaint", {0: (0, 10)}, lambda schema_id: None, None)


def _dead_letter(*headers: tuple[str, bytes | None]) -> Message:
    return Message(topic="dlq.complaint", partition=0, offset=0, headers=list(headers))


def test_a_dead_letter_whose_reason_header_has_no_value_counts_with_reason_unknown():
    outcomes = _outcomes()
    outcomes.add(
        "dlq", _dead_letter(("source_partition", b"0"), ("source_offset", b"3"), ("reason", None))
    )
    audit = outcomes.result()
    assert audit.dead_lettered == 1
    assert audit.dead_letter_reasons == {"unknown": 1}


def test_lineage_headers_without_a_value_leave_the_record_unplaced():
    outcomes = _outcomes()
    outcomes.add("dlq", _dead_letter(("source_partition", None), ("source_offset", b"3")))
    outcomes.add("dup", _dead_letter(("source_partition", b"0"), ("source_offset", None)))
    audit = outcomes.result()
    assert (audit.dead_lettered, audit.duplicates, audit.unaccounted) == (0, 0, 10)


def test_lineage_and_reason_headers_as_the_stream_processor_writes_them():
    outcomes = _outcomes()
    outcomes.add(
        "dlq",
        _dead_letter(
            ("source_partition", b"0"), ("source_offset", b"4"), ("reason", b"invalid_value")
        ),
    )
    outcomes.add("dup", _dead_letter(("source_partition", b"0"), ("source_offset", b"5")))
    outcomes.add("dup", _dead_letter(("source_partition", b"0"), ("source_offset", b"x")))
    audit = outcomes.result()
    assert (audit.dead_lettered, audit.duplicates, audit.unaccounted) == (1, 1, 8)
    assert audit.dead_letter_reasons == {"invalid_value": 1}
