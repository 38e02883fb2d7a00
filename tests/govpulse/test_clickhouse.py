"""ClickHouse through clickhouse-connect on the embedded chdb engine: the one client path."""

from __future__ import annotations

import pytest

from govpulse.clickhouse import make_client
from govpulse.settings import SettingsError

pytestmark = pytest.mark.integration


def test_create_insert_query_and_query_df(clickhouse, unique_name):
    table = unique_name("events")
    clickhouse.command(
        f"CREATE TABLE {table} (province LowCardinality(String), n UInt32) "
        "ENGINE = MergeTree ORDER BY province"
    )
    clickhouse.insert(table, [["76", 3], ["10", 5], ["76", 4]], column_names=["province", "n"])
    rows = clickhouse.query(
        f"SELECT province, sum(n) FROM {table} WHERE province = {{p:String}} GROUP BY province",
        parameters={"p": "76"},
    ).result_rows
    assert rows == [("76", 7)]
    frame = clickhouse.query_df(f"SELECT province, n FROM {table} ORDER BY n")
    assert list(frame["n"]) == [3, 4, 5]
    assert list(frame.columns) == ["province", "n"]


def test_insert_token_deduplicates_when_the_table_keeps_a_window(clickhouse, unique_name):
    table = unique_name("dedup")
    clickhouse.command(
        f"CREATE TABLE {table} (id UInt32) ENGINE = MergeTree ORDER BY id "
        "SETTINGS non_replicated_deduplication_window = 100"
    )
    for _ in range(2):
        clickhouse.insert(
            table,
            [[1], [2]],
            column_names=["id"],
            settings={"insert_deduplication_token": "t:0:1-2"},
        )
    assert clickhouse.query(f"SELECT count() FROM {table}").result_rows == [(2,)]


def test_a_dsn_with_an_unknown_scheme_names_the_setting():
    with pytest.raises(SettingsError, match="GOVPULSE_CLICKHOUSE_DSN"):
        make_client("ftp://nowhere:1/db")
