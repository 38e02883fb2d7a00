"""The embedded engine over ClickHouse's HTTP interface: what other processes use to share it."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from govpulse.clickhouse import make_client, served_engine_url
from govpulse.sinks.avro_container import container

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def remote(clickhouse_http):
    """A clickhouse-connect HTTP client, as a second sink or `govpulse audit` would make."""
    client = make_client(clickhouse_http)
    yield client
    client.close()


def _get(url: str) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_rows_written_over_http_are_the_rows_the_owner_reads(clickhouse, remote, unique_name):
    table = unique_name("shared")
    remote.command(f"CREATE TABLE {table} (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    summary = remote.insert(table, [[1, "กรุงเทพ"], [2, "Chiang Mai"]], column_names=["id", "name"])
    assert summary.written_rows == 2
    assert clickhouse.query(f"SELECT id, name FROM {table} ORDER BY id").result_rows == [
        (1, "กรุงเทพ"),
        (2, "Chiang Mai"),
    ]
    rows = remote.query(
        f"SELECT name FROM {table} WHERE id = {{id:UInt32}}", parameters={"id": 2}
    ).result_rows
    assert rows == [("Chiang Mai",)]


def test_avro_inserts_keep_their_settings_and_deduplication_token(remote, unique_name):
    table = unique_name("avro")
    remote.command(
        f"CREATE TABLE {table} (id Int64, note String) ENGINE = MergeTree ORDER BY id "
        "SETTINGS non_replicated_deduplication_window = 100"
    )
    schema = (
        '{"type": "record", "name": "r", "fields": [{"name": "id", "type": "long"}, '
        '{"name": "extra", "type": "string"}]}'
    )
    body = container(schema, [b"\0\0\0\0\1" + bytes([2 * 7]) + b"\2x"])  # id 7, extra "x"
    settings = {
        "input_format_avro_allow_missing_fields": 1,
        "insert_deduplication_token": "t:0:7-7",
    }
    for _ in range(2):  # a retried insert whose first attempt landed
        remote.raw_insert(table, ["id", "note"], body, settings=settings, fmt="Avro")
    assert remote.query(f"SELECT id, note FROM {table}").result_rows == [(7, "")]


def test_engine_errors_arrive_as_clickhouse_errors(remote):
    with pytest.raises(DatabaseError) as error:
        remote.query("SELECT * FROM no_such_table_here")
    assert "UNKNOWN_TABLE" in str(error.value) and "code: 60" in str(error.value)


def test_curl_style_requests_and_ping(clickhouse_http, clickhouse_dir):
    query = urllib.parse.quote("SELECT 40 + 2")
    assert _get(f"{clickhouse_http}/?query={query}")[:2] == (200, "42\n")
    status, text, headers = _get(f"{clickhouse_http}/ping")
    assert (status, text) == (200, "Ok.\n")
    status, text, headers = _get(f"{clickhouse_http}/?query=SELECT+(")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "62"  # SYNTAX_ERROR
    status, text, _ = _get(f"{clickhouse_http}/?query=SELECT+1&bad%20name=1")
    assert status == 400 and "Unknown setting 'bad name'" in text


def test_a_dsn_finds_the_endpoint_serving_its_directory_and_no_other(
    clickhouse_http, clickhouse_dir, tmp_path
):
    port = int(clickhouse_http.rsplit(":", 1)[1])
    assert served_engine_url(f"chdb://{clickhouse_dir}", port) == clickhouse_http
    assert served_engine_url(f"chdb://{tmp_path}", port) is None  # another stack's store
    assert served_engine_url("http://127.0.0.1:1", port) is None  # a server DSN stays as is


def test_settings_of_one_request_do_not_leak_into_the_next(remote):
    def max_threads(**settings) -> int:
        sql = "SELECT toUInt64(getSetting('max_threads'))"
        return remote.query(sql, settings=settings).result_rows[0][0]

    default = max_threads()
    assert max_threads(max_threads=default + 3) == default + 3
    assert [max_threads() for _ in range(6)] == [default] * 6  # every pooled connection


def test_parameters_too_long_for_a_url_arrive_as_form_fields(remote):
    """clickhouse-connect posts the query and its parameters as multipart form fields when
    the URL would be too long: the sink's look-up of thousands of event ids does."""
    ids = [str(uuid.uuid4()) for _ in range(3000)]
    rows = remote.query(
        "SELECT count() FROM format(TSV, 'id UUID', {ids:String})",
        parameters={"ids": "\n".join(ids)},
    ).result_rows
    assert rows == [(3000,)]
