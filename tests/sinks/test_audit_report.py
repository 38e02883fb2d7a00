"""The audit's verdicts, its table and its pure parts (views, buckets), without a broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from govpulse.sinks.audit import (
    END_OF_TIME,
    RollupCount,
    RollupView,
    TypeAudit,
    bucket_bounds,
    bucket_label,
    parse_view,
    rollup_problems,
    table,
    to_json,
    ttl_seconds,
    window_text,
)


def balanced(**changes) -> TypeAudit:
    audit = TypeAudit(
        "complaint",
        produced=100,
        clean=90,
        dead_lettered=6,
        duplicates=4,
        clean_records=90,
        clean_ids=90,
        stored_rows=90,
        stored_ids=90,
        stored_dead_letters=6,
        dead_letter_records=6,
        dead_letter_positions=6,
        stored_dead_letter_rows=6,
        window="all of raw.complaint",
    )
    for name, value in changes.items():
        setattr(audit, name, value)
    return audit


def test_one_record_and_one_row_per_raw_record_balances():
    assert balanced().problems == []


def test_an_event_id_on_two_raw_records_is_stored_once_and_balances():
    """A cross-partition duplicate: two clean raw positions, one event id, one row."""
    assert balanced(produced=101, clean=91, clean_records=91).problems == []


def test_a_record_without_outcome_is_reported():
    [problem] = balanced(clean=89, clean_records=89, unaccounted=1).problems
    assert "1 of 100 raw records have no outcome" in problem


def test_records_the_stream_processor_wrote_twice_are_reported_per_topic():
    [clean] = balanced(clean_records=102).problems
    assert clean == (
        "clean.complaint holds 102 records for 90 raw positions: "
        "the stream processor wrote 12 twice"
    )
    [dead] = balanced(dead_letter_records=7).problems
    assert dead == (
        "dlq.complaint holds 7 records for 6 raw positions: the stream processor wrote 1 twice"
    )


def test_a_row_stored_twice_names_the_table_the_window_and_the_difference():
    problems = balanced(stored_rows=91).problems
    assert problems[0] == (
        "events_complaint holds 91 rows for 90 distinct event ids in all of raw.complaint: "
        "1 row stored twice"
    )
    assert "ClickHouse holds 91 rows for 90 distinct event ids in clean.complaint: " in problems[1]
    assert problems[1].endswith("rows inserted twice")
    [refused] = balanced(stored_rows=88, stored_refused=4).problems[:1]
    assert refused.startswith("events_complaint holds 88 rows (+4 refused by it) for 90")
    assert refused.endswith(": 2 rows stored twice")


def test_missing_rows_are_the_sink_behind_not_doubles():
    problems = balanced(stored_rows=89, stored_ids=89).problems
    assert problems[0].endswith(
        "for 90 distinct event ids in clean.complaint: sink behind, or rows lost"
    )
    assert "ClickHouse has 89 distinct event ids, clean.complaint has 90" in problems[1]
    assert not any("stored twice" in p for p in problems)


def test_a_replayed_clean_record_is_no_excuse_for_a_second_row():
    """The old check took rows = clean records (replays included) for balanced."""
    problems = balanced(clean_records=91, stored_rows=91).problems
    assert any("wrote 1 twice" in p for p in problems)
    assert any(p.startswith("events_complaint holds 91 rows for 90 distinct") for p in problems)


def test_dead_letters_are_compared_as_rows_and_as_positions():
    assert (
        "dead_letters holds 5 raw records, dlq.complaint has 6"
        in (balanced(stored_dead_letters=5, stored_dead_letter_rows=5).problems[0])
    )
    [doubled] = balanced(stored_dead_letter_rows=8).problems
    assert doubled == (
        "dead_letters holds 8 rows for 6 raw positions in all of raw.complaint: "
        "2 dead letters stored twice"
    )


def test_rows_the_store_refused_count_as_stored_not_as_lost():
    assert balanced(stored_rows=88, stored_refused=2).problems == []
    problems = balanced(stored_rows=87, stored_refused=2, stored_ids=89).problems
    assert (
        "87 rows (+2 refused by it) for 90 distinct event ids in clean.complaint: sink behind"
        in (problems[0])
    )


def test_clean_records_that_cannot_be_decoded_are_a_problem_not_a_crash():
    [problem] = balanced(unreadable_clean=2).problems
    assert "2 records of clean.complaint could not be decoded" in problem


def minute(**changes) -> RollupCount:
    count = RollupCount("activity_minute", "events_complaint", "minute", buckets=60)
    for name, value in changes.items():
        setattr(count, name, value)
    return count


def test_a_rollup_bucket_that_differs_names_the_rollup_the_bucket_and_the_gap():
    count = minute(differing=1, rollup_events=967, table_events=1_000,
                   first=[("2026-12-07T10:31:00+00:00", 967, 1_000)])  # fmt: skip
    assert rollup_problems(count, "complaint") == [
        "activity_minute counts 967 complaint events in 2026-12-07 10:31 UTC, "
        "events_complaint holds 1,000: 33 missing"
    ]
    count.first = [("2026-12-07T10:31:00+00:00", 1_002, 1_000)]
    assert rollup_problems(count, "complaint")[0].endswith("holds 1,000: 2 too many")
    assert balanced(rollups=[count]).problems == rollup_problems(count, "complaint")
    assert balanced(rollups=[count, minute()]).rollups_off == 1


def test_beyond_the_first_differing_buckets_a_rollup_is_summed_up():
    first = [(f"2026-12-07T10:3{i}:00+00:00", 0, 5) for i in range(3)]
    count = minute(differing=40, rollup_events=800, table_events=1_000, first=first)
    problems = rollup_problems(count, "complaint")
    assert len(problems) == 4
    assert problems[3] == (
        "activity_minute differs from events_complaint in 37 more minutes (over all 60 "
        "minutes compared it counts 800 complaint events, events_complaint holds 1,000)"
    )


def test_buckets_are_named_by_the_rollups_grain_in_utc():
    assert bucket_label("2026-12-07T10:31:00+00:00", "minute") == "2026-12-07 10:31 UTC"
    assert bucket_label("2026-12-07T10:00:00+00:00", "hour") == "the hour 2026-12-07 10:00 UTC"
    assert bucket_label("2026-12-07T00:00:00+00:00", "day") == "the day 2026-12-07 (UTC)"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_only_whole_buckets_inside_the_window_are_compared():
    since, until = at("2026-12-07 10:31:30"), at("2026-12-07 10:45:10")
    assert bucket_bounds(60, since, until) == (at("2026-12-07 10:32"), at("2026-12-07 10:45"))
    assert bucket_bounds(60, at("2026-12-07 10:31"), None) == (at("2026-12-07 10:31"), END_OF_TIME)
    first, end = bucket_bounds(3_600, since, until)  # no whole hour: nothing compared
    assert first == end == at("2026-12-07 11:00")
    assert bucket_bounds(86_400, None, until) == (0, at("2026-12-07 00:00"))
    assert bucket_bounds(60, None, None) == (0, END_OF_TIME)


def test_the_audited_window_in_words():
    since, until = datetime(2026, 12, 7, 10, tzinfo=UTC), datetime(2026, 12, 7, 11, tzinfo=UTC)
    assert window_text("raw.complaint", None, None) == "all of raw.complaint"
    assert (
        window_text("raw.complaint", since, None) == "raw.complaint since 2026-12-07 10:00:00 UTC"
    )
    assert (
        window_text("raw.complaint", None, until) == "raw.complaint before 2026-12-07 11:00:00 UTC"
    )
    assert window_text("raw.complaint", since, until) == (
        "raw.complaint from 2026-12-07 10:00:00 UTC until 2026-12-07 11:00:00 UTC"
    )


# As system.tables shows them (create_table_query shortened to what is read).
ACTIVITY = (
    "CREATE MATERIALIZED VIEW default.mv_activity_minute_complaint TO default.activity_minute "
    "(`minute` DateTime('UTC'), `event_type` String) AS SELECT …",
    "SELECT toStartOfMinute(occurred_at) AS minute, 'complaint' AS event_type, province_code, "
    "agency_code, channel, ministry_code, region_code, count() AS events, uniqStateIf("
    "assumeNotNull(complainant_id_pseudonym), isNotNull(complainant_id_pseudonym)) AS citizens "
    "FROM default.events_complaint GROUP BY minute, province_code, agency_code, channel, "
    "ministry_code, region_code",
)
DISTRICT = (
    "CREATE MATERIALIZED VIEW db.mv_district_hour_complaint TO db.district_hour_local (…)",
    "SELECT toStartOfHour(occurred_at) AS hour, province_code, agency_code, "
    "ifNull(district_code, '') AS district_code, 'complaint' AS event_type, count() AS events "
    "FROM db.events_complaint_local GROUP BY hour, province_code, agency_code, district_code",
)
PER_TYPE_DAY = (
    "CREATE MATERIALIZED VIEW default.mv_complaint_day TO default.complaint_day (…)",
    "SELECT toStartOfDay(occurred_at) AS day, province_code, count() AS complaints, "
    "quantileTDigestStateIf(toFloat32(assumeNotNull(resolution_days)), "
    "isNotNull(resolution_days)) AS resolution_days FROM default.events_complaint GROUP BY day",
)


def test_a_view_counting_events_per_bucket_of_occurred_at_is_a_rollup():
    view = parse_view("mv_activity_minute_complaint", *ACTIVITY, "events_complaint")
    assert view == RollupView(
        "mv_activity_minute_complaint", "activity_minute", "events_complaint", "events",
        "minute", "minute", 60, (("event_type", "complaint"),),
    )  # fmt: skip
    district = parse_view("mv_district_hour_complaint", *DISTRICT, "events_complaint")
    assert isinstance(district, RollupView)
    assert (district.table, district.grain, district.step) == ("district_hour_local", "hour", 3_600)
    assert district.filters == (("event_type", "complaint"),)  # not the ifNull('') district
    day = parse_view("mv_complaint_day", *PER_TYPE_DAY, "events_complaint")
    assert isinstance(day, RollupView)
    assert (day.count_column, day.time_column, day.filters) == ("complaints", "day", ())


@pytest.mark.parametrize(
    ("create", "select", "why"),
    [
        (
            "CREATE MATERIALIZED VIEW d.mv_produced_minute_complaint TO d.produced_minute (…)",
            "SELECT toStartOfMinute(produced_at) AS minute, 'complaint' AS event_type, "
            "max(produced_at) AS last_produced_at FROM d.events_complaint GROUP BY minute",
            "no count() column",
        ),
        (
            "CREATE MATERIALIZED VIEW d.mv_x TO d.x (…)",
            "SELECT toStartOfMinute(produced_at) AS minute, count() AS events "
            "FROM d.events_complaint GROUP BY minute",
            "not bucketed by",
        ),
        (
            "CREATE MATERIALIZED VIEW d.mv_x TO d.x (…)",
            "SELECT toStartOfHour(occurred_at) AS hour, count() AS events "
            "FROM d.events_complaint WHERE status = 'closed' GROUP BY hour",
            "filters, joins or multiplies rows",
        ),
        (
            "CREATE MATERIALIZED VIEW d.mv_x REFRESH EVERY 1 HOUR TO d.x (…)",
            "SELECT toStartOfDay(occurred_at) AS day, count() AS events "
            "FROM d.events_complaint GROUP BY day",
            "refreshable",
        ),
        (
            "CREATE MATERIALIZED VIEW d.mv_x (…) ENGINE = SummingMergeTree ORDER BY day",
            "SELECT toStartOfDay(occurred_at) AS day, count() AS events "
            "FROM d.events_complaint GROUP BY day",
            "no TO table",
        ),
    ],
)
def test_views_the_audit_cannot_compare_say_why(create, select, why):
    result = parse_view("mv_x", create, select, "events_complaint")
    assert isinstance(result, str) and why in result


def test_a_rollups_retention_is_read_from_its_ttl():
    assert ttl_seconds(
        "… ORDER BY (minute, event_type) TTL minute + toIntervalDay(2) SETTINGS …"
    ) == (2 * 86_400)
    assert (
        ttl_seconds("… TTL toDateTime(hour) + toIntervalMonth(13) SETTINGS …") == 13 * 28 * 86_400
    )
    assert ttl_seconds("… ORDER BY minute SETTINGS index_granularity = 8192") is None


def test_the_table_marks_each_type_and_lists_the_problems():
    text = table([balanced(), balanced(event_type="dataset_update", stored_rows=0)])
    lines = text.splitlines()
    assert "clean ids" in lines[0] and "CH dead rows" in lines[0] and "rollups off" in lines[0]
    assert lines[1].startswith("complaint") and lines[1].endswith("ok")
    assert lines[2].endswith("MISMATCH")
    assert lines[3].startswith("dataset_update: ClickHouse holds 0 rows for 90 distinct event ids")


def test_the_json_carries_the_rollups_and_the_new_figures():
    count = minute(differing=1, first=[("2026-12-07T10:31:00+00:00", 967, 1_000)])
    result = json.loads(to_json([balanced(rollups=[count])]))
    complaint = result["types"]["complaint"]
    assert not result["ok"] and complaint["rollups_off"] == 1
    assert complaint["rollups"][0]["first"] == [["2026-12-07T10:31:00+00:00", 967, 1000]]
    assert complaint["dead_letter_positions"] == 6 and complaint["window"] == "all of raw.complaint"


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
    assert "ifNull(event_id, concat('@'" in client.queries[0]  # refused without id: its position
    assert "reason != {r:String}" in client.queries[1]  # refused rows are not dead letters
