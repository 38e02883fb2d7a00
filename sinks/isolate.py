"""Rows ClickHouse refuses for what they hold: found by bisection, so the rest is stored.

Without this, one record the engine cannot take (a UUID it cannot parse, a value out of its
type's range) failed its whole insert, the writer retried it every 10 s for ever and every
partition stayed paused: one agency's record froze the national dashboard.

A data error is told from an outage by the engine's error code: parse and range errors are a
property of the rows and fail the same way every time; anything else (connection refused, a
timeout, memory, a missing table) may pass later and is retried as before, never bisected —
a schema bug must not dead-letter every row. On a data error the rows are split in halves,
each half inserted under a token derived from the insert's own (`<token>|rows:<first>-<last>`
by position in the insert), down to single rows. The split depends only on the rows and their
order, so a replay of the same insert after a crash (the sink re-inserts it whole under its
token: sinks/replay.py) fails the same way, splits the same way and ClickHouse drops the
halves it already holds: exactly once, bisected or not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from clickhouse_connect.driver.exceptions import DatabaseError, DataError

Row = TypeVar("Row")

# ClickHouse error codes that are a property of the inserted data (src/Common/ErrorCodes.cpp).
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF (a truncated value)
        33,  # CANNOT_READ_ALL_DATA
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        153,  # ILLEGAL_DIVISION (a view dividing by a value of the row)
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a view's check of the row)
        407,  # DECIMAL_OVERFLOW
        441,  # CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
        467,  # CANNOT_PARSE_BOOL
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)


class RecordRefused(ValueError):
    """A record the sink itself cannot turn into a row (not framed, schema id unknown)."""


def is_data_error(error: BaseException) -> bool:
    """True when `error` is about the rows, so the same rows fail the same way again."""
    if isinstance(error, RecordRefused | DataError):
        return True
    return isinstance(error, DatabaseError) and getattr(error, "code", None) in DATA_ERROR_CODES


def engine_message(error: BaseException, limit: int = 500) -> str:
    """The first line of the engine's message, cut to `limit` characters."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Refused:
    """A row the engine refused alone: its position in the insert and why."""

    index: int
    error: str


Insert = Callable[[Sequence[Any], str], int]


def insert_isolating(insert: Insert, rows: Sequence[Row], token: str) -> tuple[int, list[Refused]]:
    """`insert(rows, token)`; on a data error, bisect down to the rows refused alone.

    Returns the rows stored and the rows refused (in order). An error that is not a data
    error is raised, wherever in the bisection it happens: the caller retries the whole
    insert later, and what landed meanwhile is dropped by its token then.
    """
    try:
        return insert(rows, token), []
    except Exception as error:
        if not is_data_error(error):
            raise
        return _bisect(insert, rows, token, 0, len(rows), error)


def _bisect(
    insert: Insert, rows: Sequence[Any], token: str, lo: int, hi: int, error: BaseException
) -> tuple[int, list[Refused]]:
    """rows[lo:hi] failed with a data error: insert its halves, recursing into failing ones."""
    if hi - lo == 1:
        return 0, [Refused(lo, engine_message(error))]
    stored, refused = 0, []
    middle = (lo + hi) // 2
    for first, end in ((lo, middle), (middle, hi)):
        try:
            stored += insert(rows[first:end], f"{token}|rows:{first}-{end - 1}")
        except Exception as part_error:
            if not is_data_error(part_error):
                raise
            more_stored, more_refused = _bisect(insert, rows, token, first, end, part_error)
            stored += more_stored
            refused += more_refused
    return stored, refused
