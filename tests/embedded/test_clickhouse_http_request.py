"""How the embedded ClickHouse HTTP endpoint reads a request (pure: no engine)."""

from __future__ import annotations

import pytest

from govpulse.embedded.clickhouse_http import RequestError, parse_request


def test_insert_data_starts_right_after_the_format_line_even_when_it_looks_like_whitespace():
    # Native data for 9 columns and 10 rows starts with bytes 0x09 0x0a: "\t\n"
    statement = parse_request({}, b"INSERT INTO t (a, b) FORMAT Native\n\t\n\x00rest")
    assert statement.sql == "INSERT INTO t (a, b) FORMAT Native"
    assert statement.data == b"\t\n\x00rest"


def test_with_a_query_parameter_the_body_is_the_data():
    statement = parse_request({"query": "INSERT INTO t FORMAT CSV"}, b"1,2\n")
    assert (statement.sql, statement.data) == ("INSERT INTO t FORMAT CSV", b"1,2\n")


def test_a_query_in_the_body_has_no_data():
    statement = parse_request({"default_format": "Native"}, b"SELECT 1 FORMAT JSON")
    assert (statement.sql, statement.data, statement.output_format) == (
        "SELECT 1 FORMAT JSON",
        b"",
        "Native",
    )


def test_settings_parameters_and_transport_options_are_told_apart():
    statement = parse_request(
        {
            "database": "gov",
            "max_threads": "1",
            "param_p": "10",
            "query_id": "q1",
            "enable_http_compression": "1",
        },
        b"SELECT {p:String}",
    )
    assert statement.database == "gov"
    assert statement.settings == {"max_threads": "1"}
    assert statement.parameters == {"p": "10"}


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({}, b"   ", "Empty query"),
        ({"max threads": "1"}, b"SELECT 1", "Unknown setting 'max threads'"),
        ({"x'; DROP TABLE t; --": "1"}, b"SELECT 1", "Unknown setting"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(params, body, message):
    with pytest.raises(RequestError, match=message):
        parse_request(params, body)
