"""The ClickHouse data model on the embedded engine: migrations, drift guard, rollups, dedup.

One migrated database per module (migrating takes ~0.5 s), named uniquely because other tests
share the session's chdb engine; tests that insert use their own day, so they never see each
other's rows in the shared rollups. Tests that need a pristine bookkeeping table get their own
database. The cluster DDL is checked as rendered text: there is no cluster here.
"""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from govpulse.schemas.catalog import (
    EVENT_TYPES,
    PSEUDONYM_SUFFIX,
    clean_schema,
    pii_fields,
    raw_schema,
)
from govpulse.schemas.rollups import tier_tables
from govpulse.sinks.columns import (
    DEAD_LETTER_COLUMNS,
    clickhouse_type,
    columns_for,
    table_for,
    to_columns,
)
from govpulse.sinks.migrations import DdlOptions, MigrationError, load_migrations, migrate, render
from govpulse.sinks.rollup_ddl import DIRTY_INDEX, replaced_views
from tests.support.examples import example

pytestmark = pytest.mark.integration

MINUTE_ROLLUPS = (
    "activity_minute",
    "service_request_minute",
    "complaint_minute",
    "net_pracharat_minute",
    "digital_center_minute",
    "dead_letters_minute",
    # 0010_produced_minute: the newest produced_at stored per minute, for the data age
    "produced_minute",
)
# 0011_tiers_from_minute: the hour and day tiers (province and national, and district_hour),
# filled by the tier job from the minute tier. 0007/0008 had created tables of the same names,
# each filled by materialized views on every insert; 0011 drops those views and tables and
# creates the tables again, as ReplacingMergeTree(version).
TIERS = tuple(t.name for t in tier_tables())
REPLACED_VIEWS = tuple(replaced_views())
ROLLUPS = (*MINUTE_ROLLUPS, *TIERS)
# The views left after every migration: the minute rollups' and produced_minute's.
VIEWS = (
    *(f"mv_activity_minute_{t}" for t in EVENT_TYPES),
    "mv_service_request_minute",
    "mv_complaint_minute",
    "mv_net_pracharat_minute",
    "mv_digital_center_minute",
    "mv_dead_letters_minute",
    *(f"mv_produced_minute_{t}" for t in EVENT_TYPES),
)
STORAGE = (*(table_for(t) for t in EVENT_TYPES), "dead_letters", *ROLLUPS)
# 0006_sink_ingest: the sink's Avro staging tables (Null engine) with their views into
# events_<type>, and its bookkeeping of offset ranges; one per node, no _local/Distributed pair.
STAGING = tuple(f"{table_for(t)}_avro" for t in EVENT_TYPES)
STAGING_VIEWS = tuple(f"mv_{table_for(t)}_avro" for t in EVENT_TYPES)
SINK_TABLES = (*STAGING, "sink_batches")
# 0011: where the tier job is; one table for the whole cluster, like schema_migrations.
TIER_PROGRESS = "tier_progress"
# 0009: the token column, and a longer deduplication window on every table that has one
# (produced_minute comes after, in 0010; the tier tables 0009 altered are 0007/0008's);
# 0011: a skip index on activity_minute's last_inserted_at, added then materialized.
ALTERS = (
    "ALTER TABLE gp.sink_batches",
    *(f"ALTER TABLE gp.{t}" for t in STORAGE if t != "produced_minute"),
    "ALTER TABLE gp.activity_minute",
    "ALTER TABLE gp.activity_minute",
)
_TODAY = datetime.now(UTC).replace(second=0, microsecond=0)


def day(n: int) -> datetime:
    """The start of a minute n days ago: recent enough for the TTL, apart from other tests."""
    return _TODAY - timedelta(days=n)


def clean_record(event_type: str, at: datetime, **changes: Any) -> dict[str, Any]:
    """A clean record as fastavro decodes it from clean.<type>: pseudonymised and enriched."""
    record = example(event_type)
    for field in pii_fields(raw_schema(event_type)):
        value = record.pop(field)
        record[field + PSEUDONYM_SUFFIX] = None if value is None else f"p-{field}"
    record.update(
        event_id=uuid.uuid4(),
        occurred_at=at,
        produced_at=at,
        pseudonym_key_id="k1",
        agency_name_th="ชื่อหน่วยงาน",
        agency_name_en="Agency",
        ministry_code="MOI",
        ministry_name_th="กระทรวงมหาดไทย",
        ministry_name_en="Ministry of Interior",
        province_name_th="จังหวัด",
        province_name_en="Province",
        district_name_th=None,
        district_name_en=None,
        region_code="W",
        region_name_th="ภาคตะวันตก",
        region_name_en="Western",
        defects_fixed=[],
        processed_at=at + timedelta(milliseconds=1500),
        source_partition=0,
        source_offset=0,
    )
    record.update(changes)
    return record


def insert(client, database: str, event_type: str, records: list[dict], token: str = "") -> None:
    """Insert the way the sink does: column-oriented, with a deduplication token."""
    client.insert(
        f"{database}.{table_for(event_type)}",
        to_columns(event_type, records),
        column_names=columns_for(event_type),
        column_oriented=True,
        settings={"insert_deduplication_token": token or uuid.uuid4().hex},
    )


def one(client, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


@pytest.fixture(scope="module")
def db(clickhouse) -> str:
    """A freshly migrated database for this module."""
    name = f"govpulse_{uuid.uuid4().hex[:10]}"
    applied = migrate(clickhouse, database=name)
    assert applied == [m.name for m in load_migrations()]
    return name


# --- migrate: creates, is idempotent, refuses drift -----------------------------------------------


def test_migrate_creates_every_table_view_and_bookkeeping_row(clickhouse, db):
    rows = clickhouse.query(
        "SELECT name, engine FROM system.tables WHERE database = {d:String}", parameters={"d": db}
    ).result_rows
    engines = dict(rows)
    assert set(engines) == {
        *STORAGE, *VIEWS, *SINK_TABLES, *STAGING_VIEWS, TIER_PROGRESS, "schema_migrations"
    }  # fmt: skip
    assert not set(engines) & set(REPLACED_VIEWS)  # the tiers have no view left
    assert {engines[v] for v in (*VIEWS, *STAGING_VIEWS)} == {"MaterializedView"}
    assert {engines[s] for s in STAGING} == {"Null"}
    assert {engines[r] for r in MINUTE_ROLLUPS} == {"AggregatingMergeTree"}
    # a bucket the tier job recomputes replaces its rows (the newest version wins)
    assert {engines[t] for t in (*TIERS, TIER_PROGRESS)} == {"ReplacingMergeTree"}
    recorded = clickhouse.query(
        f"SELECT version, name, checksum FROM {db}.schema_migrations ORDER BY version"
    ).result_rows
    assert recorded == [(m.version, m.name, m.checksum) for m in load_migrations()]
    # migrate ran the tier job once (the backfill of the tiers), which recorded where it is
    progress = clickhouse.query(f"SELECT job FROM {db}.{TIER_PROGRESS} FINAL").result_rows
    assert progress == [("tiers",)]


def test_a_second_run_applies_nothing_and_records_nothing(clickhouse, db):
    progress = f"SELECT count(), max(version) FROM {db}.{TIER_PROGRESS}"
    before = clickhouse.query(progress).result_rows
    assert migrate(clickhouse, database=db) == []
    assert one(clickhouse, f"SELECT count() FROM {db}.schema_migrations") == len(load_migrations())
    # the tier job has run here: migrate does not backfill the tiers again
    assert clickhouse.query(progress).result_rows == before


def _copy_of_ddl(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(str(files("govpulse.sinks.ddl").joinpath(name)), tmp_path / name)
    return tmp_path


def test_a_migration_edited_after_it_was_applied_is_refused_naming_the_file(
    clickhouse, unique_name, tmp_path
):
    directory = _copy_of_ddl(tmp_path, "0001_events.sql", "0002_dead_letters.sql")
    database = unique_name("gp_edited")
    assert migrate(clickhouse, database=database, directory=directory) == [
        "0001_events",
        "0002_dead_letters",
    ]
    edited = directory / "0002_dead_letters.sql"
    edited.write_text(edited.read_text().replace("detail String", "detail String, note String"))
    with pytest.raises(MigrationError, match=r"0002_dead_letters\.sql changed after"):
        migrate(clickhouse, database=database, directory=directory)
    columns = clickhouse.query(f"DESCRIBE TABLE {database}.dead_letters").result_rows
    assert "note" not in {c[0] for c in columns}


def test_a_database_ahead_of_this_code_is_refused(clickhouse, unique_name, tmp_path):
    database = unique_name("gp_ahead")
    migrate(clickhouse, database=database, directory=_copy_of_ddl(tmp_path, "0001_events.sql"))
    (tmp_path / "0001_events.sql").unlink()
    with pytest.raises(MigrationError, match="0001_events applied, which this govpulse"):
        migrate(clickhouse, database=database, directory=tmp_path)


def test_pending_migrations_apply_in_order_after_earlier_ones(clickhouse, unique_name, tmp_path):
    database = unique_name("gp_pending")
    directory = _copy_of_ddl(tmp_path, "0001_events.sql")
    assert migrate(clickhouse, database=database, directory=directory) == ["0001_events"]
    _copy_of_ddl(tmp_path, "0003_activity_minute.sql", "0002_dead_letters.sql")
    assert migrate(clickhouse, database=database, directory=directory) == [
        "0002_dead_letters",
        "0003_activity_minute",
    ]


def test_a_changed_retention_is_applied_to_existing_tables_but_shrunk_only_when_asked(
    clickhouse, unique_name, caplog
):
    database = unique_name("gp_ttl")

    def ttl() -> dict[str, str]:
        return {
            name: re.search(r"toIntervalDay\((\d+)\)", query)[1]
            for name, query in clickhouse.query(
                "SELECT name, create_table_query FROM system.tables "
                "WHERE database = {d:String} AND create_table_query LIKE '% TTL %'",
                parameters={"d": database},
            ).result_rows
        }

    def expected(raw: str, dead: str) -> dict[str, str]:
        events = {table_for(t): raw for t in EVENT_TYPES}
        return {**events, "dead_letters": dead, "sink_batches": "1", "produced_minute": "2"}

    migrate(clickhouse, database=database)
    assert migrate(clickhouse, database=database, raw_ttl_days=800, dead_letter_ttl_days=60) == []
    assert ttl() == expected("800", "60")  # longer: applied
    migrate(clickhouse, database=database)  # a process started without the settings
    assert ttl() == expected("800", "60")  # shorter: kept, and said
    assert "more than the 400 days configured: kept" in caplog.text
    migrate(
        clickhouse, database=database, raw_ttl_days=30, dead_letter_ttl_days=7,
        shrink_retention=True,
    )  # fmt: skip
    assert ttl() == expected("30", "7")


def test_a_failing_statement_names_its_file_and_is_not_recorded(clickhouse, unique_name, tmp_path):
    directory = tmp_path / "ddl"
    directory.mkdir()
    (directory / "0001_broken.sql").write_text(
        "CREATE TABLE IF NOT EXISTS ${db}.fine (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
        "CREATE TABLE IF NOT EXISTS ${db}.broken (x UInt8) ENGINE = NoSuchEngine;\n"
    )
    database = unique_name("gp_broken")
    with pytest.raises(MigrationError, match=r"0001_broken\.sql, statement 2 \(CREATE TABLE"):
        migrate(clickhouse, database=database, directory=directory)
    recorded = clickhouse.query(f"SELECT count() FROM {database}.schema_migrations").result_rows
    assert recorded == [(0,)]


# --- drift guard: every clean-schema field has a column of the right type -------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_clean_schema_field_has_a_column_of_its_type(clickhouse, db, event_type):
    actual = dict(
        clickhouse.query(
            "SELECT name, type FROM system.columns "
            "WHERE database = {d:String} AND table = {t:String}",
            parameters={"d": db, "t": table_for(event_type)},
        ).result_rows
    )
    fields = clean_schema(event_type)["fields"]
    missing = [f["name"] for f in fields if f["name"] not in actual]
    assert not missing, f"clean-schema fields without a column: add a migration for {missing}"
    assert set(actual) == {f["name"] for f in fields} | {"inserted_at"}
    for field in fields:
        column_type = actual[field["name"]]
        bare = re.sub(r"^LowCardinality\((.*)\)$", r"\1", column_type)
        assert bare == clickhouse_type(field["type"]), field["name"]
        is_enum = isinstance(field["type"], dict) and field["type"]["type"] == "enum"
        # village_code is the exception: ~75,000 villages are too many for LowCardinality.
        coded = (
            re.search(r"_code$|_name_(th|en)$", field["name"]) and field["name"] != "village_code"
        )
        if is_enum or coded:
            assert column_type.startswith("LowCardinality("), field["name"]
    assert actual["inserted_at"] == "DateTime64(3, 'UTC')"


# --- inserts reach the tables and the rollups -----------------------------------------------------


@pytest.mark.parametrize(("n", "event_type"), list(enumerate(EVENT_TYPES, start=1)))
def test_clean_records_reach_their_table_and_activity_minute(clickhouse, db, n, event_type):
    at = day(n)
    national_ids = [
        f + PSEUDONYM_SUFFIX
        for f, kind in pii_fields(raw_schema(event_type)).items()
        if kind == "national_id"
    ]
    people = [{national_ids[0]: p} for p in ("a", "b", "a", None)] if national_ids else [{}] * 4
    records = [
        clean_record(event_type, at, province_code="76", **people[0]),
        clean_record(event_type, at + timedelta(seconds=30), province_code="76", **people[1]),
        clean_record(event_type, at + timedelta(seconds=59), province_code="76", **people[2]),
        clean_record(event_type, at + timedelta(minutes=1), province_code="10", **people[3]),
    ]
    insert(clickhouse, db, event_type, records)

    assert (
        one(
            clickhouse,
            f"SELECT count() FROM {db}.{table_for(event_type)} "
            f"WHERE toDate(occurred_at) = '{at.date()}'",
        )
        == 4
    )
    rollup = clickhouse.query(
        f"SELECT minute, province_code, sum(events), uniqMerge(citizens), "
        f"quantileTDigestMerge(0.5)(pipeline_latency_ms), max(last_inserted_at) > minute "
        f"FROM {db}.activity_minute WHERE event_type = {{t:String}} "
        f"AND toDate(minute) = {{d:Date}} GROUP BY minute, province_code ORDER BY minute",
        parameters={"t": event_type, "d": at.date()},
    ).result_rows
    citizens = 2 if national_ids else 0
    assert [r[:4] for r in rollup] == [
        (at.replace(tzinfo=None), "76", 3, citizens),
        ((at + timedelta(minutes=1)).replace(tzinfo=None), "10", 1, 0),
    ]
    assert {r[4] for r in rollup} == {1500.0}
    assert all(r[5] for r in rollup)


def test_service_requests_roll_up_by_status_with_fees_and_satisfaction(clickhouse, db):
    at = day(10)
    records = [
        clean_record("service_request", at, status="COMPLETED", satisfaction_score=5),
        clean_record("service_request", at, status="COMPLETED", satisfaction_score=3),
        clean_record("service_request", at, status="REJECTED", satisfaction_score=None),
    ]
    insert(clickhouse, db, "service_request", records)
    by_status = clickhouse.query(
        f"SELECT status, sum(requests), sum(satisfaction_sum), sum(satisfaction_count) "
        f"FROM {db}.service_request_minute WHERE minute = {{m:DateTime('UTC')}} "
        f"GROUP BY status ORDER BY status",
        parameters={"m": at},
    ).result_rows
    assert by_status == [("COMPLETED", 2, 8, 2), ("REJECTED", 1, 0, 0)]
    activity = clickhouse.query(
        f"SELECT sum(amount_thb), quantileTDigestMerge(0.5)(processing_seconds) "
        f"FROM {db}.activity_minute WHERE event_type = 'service_request' "
        f"AND minute = {{m:DateTime('UTC')}}",
        parameters={"m": at},
    ).result_rows
    assert activity == [(Decimal("300.00"), 1260.0)]


def test_complaints_roll_up_by_category_severity_and_status(clickhouse, db):
    at = day(11)
    insert(
        clickhouse,
        db,
        "complaint",
        [
            clean_record(
                "complaint", at, category="CORRUPTION", severity="HIGH", resolution_days=4
            ),
            clean_record(
                "complaint", at, category="CORRUPTION", severity="HIGH", resolution_days=6
            ),
            clean_record("complaint", at, category="LAND", severity="LOW", via_1111=False),
        ],
    )
    rows = clickhouse.query(
        f"SELECT category, severity, via_1111, sum(complaints), "
        f"quantileTDigestMerge(0.5)(resolution_days) FROM {db}.complaint_minute "
        f"WHERE minute = {{m:DateTime('UTC')}} GROUP BY ALL ORDER BY category",
        parameters={"m": at},
    ).result_rows
    assert rows[0][:4] == ("CORRUPTION", "HIGH", True, 2)
    assert 4.0 <= rows[0][4] <= 6.0
    assert rows[1][:4] == ("LAND", "LOW", False, 1)


def test_net_pracharat_usage_rolls_up_sessions_traffic_and_access_points(clickhouse, db):
    at = day(12)
    insert(
        clickhouse,
        db,
        "net_pracharat_usage",
        [
            clean_record(
                "net_pracharat_usage", at, access_point_id="AP-1", sessions=10, bytes_down=5
            ),
            clean_record(
                "net_pracharat_usage", at, access_point_id="AP-1", sessions=20, bytes_down=7
            ),
            clean_record(
                "net_pracharat_usage",
                at,
                access_point_id="AP-2",
                sessions=1,
                bytes_down=0,
                bytes_up=9,
                avg_latency_ms=None,
            ),
        ],
    )
    row = clickhouse.query(
        f"SELECT sum(reports), uniqMerge(access_points), sum(sessions), sum(bytes_down), "
        f"sum(bytes_up), quantileTDigestMerge(0.5)(latency_ms) FROM {db}.net_pracharat_minute "
        f"WHERE minute = {{m:DateTime('UTC')}}",
        parameters={"m": at},
    ).result_rows[0]
    assert row == (3, 2, 31, 12, 210_118_443 * 2 + 9, 38.5)  # the example's bytes_up twice


def test_digital_centre_orders_roll_up_by_activity_and_category(clickhouse, db):
    at = day(13)
    insert(
        clickhouse,
        db,
        "digital_center_activity",
        [
            clean_record("digital_center_activity", at, order_amount_thb=Decimal("1250.50")),
            clean_record("digital_center_activity", at, order_amount_thb=Decimal("99.50")),
            clean_record(
                "digital_center_activity",
                at,
                activity="TRAINING",
                participants=25,
                order_amount_thb=None,
                product_category=None,
            ),
        ],
    )
    rows = clickhouse.query(
        f"SELECT activity, product_category, sum(activities), sum(participants), "
        f"sum(order_amount_thb) FROM {db}.digital_center_minute "
        f"WHERE minute = {{m:DateTime('UTC')}} GROUP BY ALL ORDER BY activity",
        parameters={"m": at},
    ).result_rows
    assert rows == [
        ("ONLINE_ORDER", "textile", 2, 2, Decimal("1350.00")),
        ("TRAINING", "", 1, 25, Decimal("0.00")),
    ]


# --- idempotent inserts ---------------------------------------------------------------------------


def test_a_replayed_batch_with_the_same_token_is_stored_once_in_table_and_rollups(clickhouse, db):
    at = day(20)
    # Big enough that clickhouse-connect sends it as several blocks, as a real sink batch is.
    records = [
        clean_record("complaint", at + timedelta(milliseconds=i), source_offset=i)
        for i in range(20_000)
    ]
    for _ in range(2):
        insert(clickhouse, db, "complaint", records, token="clean.complaint:0:0-19999")
    where = f"WHERE toDate(occurred_at) = '{at.date()}'"
    assert one(clickhouse, f"SELECT count() FROM {db}.events_complaint {where}") == 20_000
    minute_where = f"WHERE toDate(minute) = '{at.date()}'"
    assert one(clickhouse, f"SELECT sum(events) FROM {db}.activity_minute {minute_where}") == 20_000
    assert one(clickhouse, f"SELECT sum(complaints) FROM {db}.complaint_minute {minute_where}") == (
        20_000
    )
    insert(clickhouse, db, "complaint", records[:10], token="clean.complaint:0:20000-20009")
    assert one(clickhouse, f"SELECT count() FROM {db}.events_complaint {where}") == 20_010
    assert one(clickhouse, f"SELECT sum(events) FROM {db}.activity_minute {minute_where}") == 20_010


# --- dead letters ---------------------------------------------------------------------------------


def test_dead_letters_are_stored_and_counted_per_minute_by_reason(clickhouse, db):
    at = day(6)  # dead letters expire after 30 days, at insert time too
    payload = b"\x00\x00\x00\x00\x07\xff not avro"

    def letter(offset: int, reason: str) -> list[Any]:
        values = {
            "event_type": "complaint",
            "reason": reason,
            "detail": "check digit 9 != 3",
            "source_topic": "raw.complaint",
            "source_partition": 2,
            "source_offset": offset,
            "first_seen": at,
            "payload": payload,
            "event_id": None if reason == "undecodable" else str(uuid.uuid4()),
        }
        return [values[name] for name in DEAD_LETTER_COLUMNS]

    rows = [
        letter(7, "invalid_national_id"),
        letter(8, "invalid_national_id"),
        letter(9, "undecodable"),
    ]
    for _ in range(2):  # a replay with the same token is dropped here too
        clickhouse.insert(
            f"{db}.dead_letters",
            rows,
            column_names=list(DEAD_LETTER_COLUMNS),
            settings={"insert_deduplication_token": "dlq.complaint:2:7-9"},
        )
    stored = clickhouse.query(
        f"SELECT source_offset, length(payload), payload = {{p:String}} AS same, isNull(event_id), "
        f"inserted_at >= first_seen FROM {db}.dead_letters "
        f"WHERE first_seen = {{m:DateTime64(3, 'UTC')}} ORDER BY source_offset",
        parameters={"p": payload, "m": at},
    ).result_rows
    assert stored == [
        (7, len(payload), 1, 0, 1),
        (8, len(payload), 1, 0, 1),
        (9, len(payload), 1, 1, 1),
    ]
    per_reason = clickhouse.query(
        f"SELECT reason, sum(dead_letters) FROM {db}.dead_letters_minute "
        f"WHERE minute = {{m:DateTime('UTC')}} GROUP BY reason ORDER BY reason",
        parameters={"m": at},
    ).result_rows
    assert per_reason == [("invalid_national_id", 2), ("undecodable", 1)]


# --- rendered DDL for a cluster (text only) -------------------------------------------------------


def _all_statements(options: DdlOptions) -> list[str]:
    return [s for m in load_migrations() for s in m.statements(options)]


def _names(statements: list[str], verb: str) -> list[str]:
    """The objects of gp the statements starting with `verb` name, in order."""
    pattern = re.compile(rf"{verb} (?:IF (?:NOT )?EXISTS )?gp\.(\w+)")
    return [m[1] for s in statements if (m := pattern.match(s))]


def test_single_node_ddl_has_no_cluster_parts_and_no_leftover_placeholders():
    statements = _all_statements(DdlOptions(database="gp"))
    text = "\n".join(statements)
    assert "${" not in text
    assert not re.search(r"ON CLUSTER|Replicated|Distributed|_local\b", text)
    tables = _names(statements, "CREATE TABLE")
    # every tier table twice: by 0007/0008, then by 0011 after dropping that one
    assert sorted(tables) == sorted([*STORAGE, *TIERS, *SINK_TABLES, TIER_PROGRESS])
    views = _names(statements, "CREATE MATERIALIZED VIEW")
    assert sorted(views) == sorted([*VIEWS, *STAGING_VIEWS, *REPLACED_VIEWS])
    assert _names(statements, "DROP VIEW") == list(REPLACED_VIEWS)
    # one per tier table, one per event type for activity's and district_hour's
    assert len(REPLACED_VIEWS) == 39
    assert _names(statements, "DROP TABLE") == list(TIERS)
    alters = [re.match(r"ALTER TABLE \S+", s)[0] for s in statements if s.startswith("ALTER")]
    assert sorted(alters) == sorted(ALTERS)
    drops = len(REPLACED_VIEWS) + len(TIERS)
    assert len(statements) == len(tables) + len(views) + drops + len(ALTERS)  # nothing else


def test_replicated_cluster_ddl_uses_local_replicated_tables_behind_distributed_ones():
    statements = _all_statements(DdlOptions(database="gp", replicated=True, cluster="govpulse"))
    assert all("ON CLUSTER govpulse" in s for s in statements)
    creates = {  # the last CREATE of each name: a tier table's is 0011's
        m[1]: s for s in statements if (m := re.match(r"CREATE TABLE IF NOT EXISTS gp\.(\w+)", s))
    }
    assert set(creates) == {
        *STORAGE, *(f"{t}_local" for t in STORAGE), *SINK_TABLES, TIER_PROGRESS
    }  # fmt: skip
    for table in STORAGE:
        local, distributed = creates[f"{table}_local"], creates[table]
        if table in TIERS:
            engine, version = "ReplicatedReplacingMergeTree", ", version"
        elif table in MINUTE_ROLLUPS:
            engine, version = "ReplicatedAggregatingMergeTree", ""
        else:
            engine, version = "ReplicatedMergeTree", ""
        assert (
            f"ENGINE = {engine}('/clickhouse/tables/{{shard}}/{{database}}/{{table}}', "
            f"'{{replica}}'{version})" in local
        ), table
        assert f"ENGINE = Distributed(govpulse, gp, {table}_local" in distributed
    assert "cityHash64(event_id)" in creates["events_complaint"]
    # the tier job's progress is one for the cluster: no shard in its path, no Distributed twin
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', "
        "version)" in creates[TIER_PROGRESS]
    )
    # 0011 drops the tiers' Distributed tables and their _local tables before creating them
    assert _names(statements, "DROP TABLE") == [name for t in TIERS for name in (t, f"{t}_local")]
    views = [
        s
        for s in statements
        if s.startswith("CREATE MATERIALIZED VIEW") and not re.search(r"\bmv_events_\w+_avro\b", s)
    ]
    assert len(views) == len(VIEWS) + len(REPLACED_VIEWS)
    assert all(
        re.search(r"TO gp\.\w+_local\b", v) and re.search(r"FROM gp\.\w+_local\b", v) for v in views
    )
    # the skip index the tier job scans late events with goes on every shard's minute tier
    alters = [s for s in statements if s.startswith("ALTER TABLE gp.activity_minute_local ")]
    assert [a.splitlines()[-1] for a in alters[-2:]] == [
        f"ADD INDEX IF NOT EXISTS {DIRTY_INDEX} last_inserted_at TYPE minmax GRANULARITY 1",
        f"MATERIALIZE INDEX {DIRTY_INDEX}",
    ]


def test_a_cluster_without_replication_is_refused():
    """Its bookkeeping (applied migrations, the sink's in-flight ranges) would be per node."""
    with pytest.raises(ValueError, match="needs replicated=True"):
        DdlOptions(database="gp", cluster="c1")


def test_replicated_bookkeeping_is_shared_by_every_shard():
    bootstrap = files("govpulse.sinks.ddl").joinpath("schema_migrations.sql").read_text("utf-8")
    (statement,) = render(bootstrap, DdlOptions(database="gp", replicated=True, cluster="c1"))
    assert "ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}'" in statement
    assert "{shard}" not in statement


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"database": "gp; DROP TABLE x"}, "database="),
        ({"cluster": "c-1"}, "cluster="),
        ({"raw_ttl_days": 0}, "raw_ttl_days=0"),
        ({"dead_letter_ttl_days": 1.5}, "dead_letter_ttl_days=1.5"),
    ],
)
def test_bad_options_are_refused_naming_the_parameter(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DdlOptions(**options)
