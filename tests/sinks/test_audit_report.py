"""The audit's verdicts and its table, without a broker."""

from __future__ import annotations

from govpulse.sinks.audit import TypeAudit, table


def balanced(**changes) -> TypeAudit:
    audit = TypeAudit(
        "complaint",
        produced=100,
        clean=90,
        dead_lettered=6,
        duplicates=4,
        clean_records=92,  # two clean records written twice by a replaying worker
        clean_ids=90,
        stored_rows=92,
        stored_ids=90,
        stored_dead_letters=6,
        dead_letter_records=7,  # one dead letter written twice by a replaying worker
        stored_dead_letter_rows=7,
    )
    for name, value in changes.items():
        setattr(audit, name, value)
    return audit


def test_replays_of_the_stream_processor_still_balance():
    assert balanced().problems == []


def test_a_record_without_outcome_is_reported():
    [problem] = balanced(clean=89, unaccounted=1).problems
    assert "1 of 100 raw records have no outcome" in problem


def test_missing_and_doubled_rows_are_told_apart():
    assert "sink behind" in balanced(stored_rows=91).problems[0]
    assert "inserted twice" in balanced(stored_rows=93).problems[0]


def test_distinct_ids_and_dead_letters_are_compared():
    assert "distinct event ids" in balanced(stored_ids=89).problems[0]
    assert "dead_letters holds 5" in balanced(stored_dead_letters=5).problems[0]
    [doubled] = balanced(stored_dead_letter_rows=8).problems
    assert "dead letters inserted twice" in doubled


def test_the_table_marks_each_type_and_lists_the_problems():
    text = table([balanced(), balanced(event_type="dataset_update", stored_rows=0)])
    lines = text.splitlines()
    assert lines[1].startswith("complaint") and lines[1].endswith("ok")
    assert lines[2].endswith("MISMATCH")
    assert lines[3].startswith("dataset_update: ClickHouse holds 0 rows for 92 clean records")


class _FakeClient:
    """Answers the two queries of `stored_counts`, remembering them."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, sql: str, parameters=None):
        self.queries.append(sql)
        rows = [(7, 1, 6)] if "events_" in sql else [(2, 3)]
        return type("Result", (), {"result_rows": rows})()


def test_stored_counts_read_only_the_audited_raw_positions():
    from govpulse.sinks.audit import stored_counts

    client = _FakeClient()
    counts = stored_counts(client, "complaint", {0: (10, 20), 1: (0, 0)}, 1_700_000_000_000)
    assert counts == {
        "stored_rows": 7,
        "stored_refused": 1,
        "stored_ids": 6,
        "stored_dead_letters": 2,
        "stored_dead_letter_rows": 3,
    }
    condition = "source_partition = 0 AND source_offset >= 10 AND source_offset < 20"
    assert condition in client.queries[0]
    assert "source_partition = 1" not in client.queries[0]  # an empty range selects nothing
    assert "occurred_at >= fromUnixTimestamp64Milli(1700000000000" in client.queries[0]
    assert "reason != {r:String}" in client.queries[1]  # refused rows are not dead letters


def test_rows_the_store_refused_count_as_stored_not_as_lost():
    assert balanced(stored_rows=90, stored_refused=2).problems == []
    [problem] = balanced(stored_rows=89, stored_refused=2).problems
    assert "89 rows (+2 refused by it) for 92 clean records: sink behind" in problem


def test_clean_records_that_cannot_be_decoded_are_a_problem_not_a_crash():
    [problem] = balanced(unreadable_clean=2).problems
    assert "2 records of clean.complaint could not be decoded" in problem
