"""Clean Avro records → insert columns: exact values, the clean schema's names, loud failures."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from govpulse.schemas.catalog import (
    EVENT_TYPES,
    PSEUDONYM_SUFFIX,
    clean_schema,
    pii_fields,
    raw_schema,
)
from govpulse.sinks.columns import (
    DEAD_LETTER_COLUMNS,
    clickhouse_type,
    columns_for,
    table_for,
    to_columns,
    to_rows,
)
from tests.support.examples import example

_EXTRAS: dict[str, Any] = {
    "pseudonym_key_id": "k2024",
    "agency_name_th": "กรมการปกครอง",
    "agency_name_en": "Department of Provincial Administration",
    "ministry_code": "MOI",
    "ministry_name_th": "กระทรวงมหาดไทย",
    "ministry_name_en": "Ministry of Interior",
    "province_name_th": "เพชรบุรี",
    "province_name_en": "Phetchaburi",
    "district_name_th": None,
    "district_name_en": None,
    "region_code": "W",
    "region_name_th": "ภาคตะวันตก",
    "region_name_en": "Western",
    "defects_fixed": ["thai_digits"],
    "processed_at": datetime(2024, 6, 14, 3, 30, 1, 500000, tzinfo=UTC),
    "source_partition": 3,
    "source_offset": 41,
}


def clean_example(event_type: str) -> dict[str, Any]:
    """The raw example as the stream processor would emit it: pseudonymised and enriched."""
    record = example(event_type)
    for field in pii_fields(raw_schema(event_type)):
        value = record.pop(field)
        record[field + PSEUDONYM_SUFFIX] = None if value is None else f"pseudonym-of-{field}"
    return {**record, **_EXTRAS}


def avro_round_trip(event_type: str, record: dict[str, Any]) -> dict[str, Any]:
    """What the sink gets: the record encoded and decoded by fastavro with the clean schema."""
    schema = fastavro.parse_schema(clean_schema(event_type))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, schema, schema)


def by_column(event_type: str, records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return dict(zip(columns_for(event_type), to_columns(event_type, records), strict=True))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_columns_are_the_clean_schema_fields_in_order(event_type):
    assert columns_for(event_type) == [f["name"] for f in clean_schema(event_type)["fields"]]
    assert table_for(event_type) == f"events_{event_type}"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_a_fastavro_decoded_record_maps_to_one_value_per_column(event_type):
    decoded = avro_round_trip(event_type, clean_example(event_type))
    by_name = by_column(event_type, [decoded, decoded])
    assert all(len(column) == 2 for column in by_name.values())
    assert by_name["event_id"][0] == decoded["event_id"]
    assert isinstance(by_name["event_id"][0], uuid.UUID)
    assert by_name["occurred_at"] == [1718335800000, 1718335800000]  # 2024-06-14 03:30 UTC
    assert by_name["processed_at"][0] == 1718335801500
    assert not set(pii_fields(raw_schema(event_type))) & set(by_name), "raw personal data"


def test_timestamps_become_exact_epoch_milliseconds():
    record = clean_example("service_request")
    record["occurred_at"] = datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)
    record["produced_at"] = datetime(1970, 1, 1, tzinfo=UTC)
    columns = by_column("service_request", [record])
    assert columns["occurred_at"] == [1709251199999]
    assert columns["produced_at"] == [0]


def test_integer_timestamps_pass_through_for_decoders_without_logical_types():
    record = clean_example("net_pracharat_usage")
    record["interval_start"] = 1718335800000
    columns = by_column("net_pracharat_usage", [record])
    assert columns["interval_start"] == [1718335800000]


def test_a_naive_datetime_is_refused_rather_than_read_as_local_time():
    record = clean_example("complaint")
    record["occurred_at"] = datetime(2024, 6, 14, 10, 30)
    with pytest.raises(TypeError):
        to_columns("complaint", [record])


def test_money_nulls_and_arrays_pass_through_unchanged():
    record = clean_example("digital_center_activity")
    other = {**clean_example("digital_center_activity"), "order_amount_thb": None}
    columns = by_column("digital_center_activity", [record, other])
    assert columns["order_amount_thb"] == [Decimal("1250.00"), None]
    assert columns["participant_id_pseudonym"] == [None, None]
    assert columns["defects_fixed"] == [["thai_digits"], ["thai_digits"]]


def test_rows_are_the_columns_transposed():
    records = [clean_example("dataset_update"), clean_example("dataset_update")]
    records[1]["record_count"] = 7
    rows = to_rows("dataset_update", records)
    columns = to_columns("dataset_update", records)
    assert rows == [list(row) for row in zip(*columns, strict=True)]
    assert rows[1][columns_for("dataset_update").index("record_count")] == 7


def test_an_empty_batch_gives_empty_columns():
    assert to_columns("complaint", []) == [[] for _ in columns_for("complaint")]


def test_a_record_missing_a_field_names_it():
    record = clean_example("complaint")
    del record["region_code"]
    with pytest.raises(KeyError, match="region_code"):
        to_columns("complaint", [record])


def test_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type"):
        columns_for("parking_ticket")


@pytest.mark.parametrize(
    ("avro_type", "expected"),
    [
        ({"type": "string", "logicalType": "uuid"}, "UUID"),
        ({"type": "long", "logicalType": "timestamp-millis"}, "DateTime64(3, 'UTC')"),
        (
            ["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}],
            "Nullable(Decimal(12, 2))",
        ),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "String"),
        ({"type": "array", "items": "string"}, "Array(String)"),
        (["null", "float"], "Nullable(Float32)"),
        ("boolean", "Bool"),
        ("long", "Int64"),
    ],
)
def test_avro_types_map_to_clickhouse_types(avro_type, expected):
    assert clickhouse_type(avro_type) == expected


def test_a_union_of_two_value_types_has_no_column_type():
    with pytest.raises(ValueError, match="unions"):
        clickhouse_type(["null", "string", "long"])


def test_every_clean_field_has_a_column_type():
    for event_type in EVENT_TYPES:
        for field in clean_schema(event_type)["fields"]:
            assert clickhouse_type(field["type"]), field["name"]


def test_dead_letter_columns_leave_inserted_at_to_its_default():
    assert "inserted_at" not in DEAD_LETTER_COLUMNS
    assert {"payload", "reason", "source_offset", "event_id"} <= set(DEAD_LETTER_COLUMNS)
