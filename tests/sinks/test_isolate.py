"""Bisection of an insert ClickHouse refused for its data (sinks/isolate.py), on a fake engine
that refuses the rows a test marks as bad — the real engine's case is in test_sink.py."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from hypothesis import given
from hypothesis import strategies as st

from govpulse.sinks.isolate import RecordRefused, insert_isolating, is_data_error


class Engine:
    """Stores rows under tokens, dropping a token it has seen (as ClickHouse's dedup does);
    refuses an insert holding a bad row with CANNOT_PARSE_UUID, or everything while down."""

    def __init__(self, bad: set[int], down_after: int | None = None) -> None:
        self.bad = bad
        self.down_after = down_after
        self.tokens: dict[str, list[int]] = {}
        self.calls = 0

    def insert(self, rows: Sequence[int], token: str) -> int:
        self.calls += 1
        if self.down_after is not None and self.calls > self.down_after:
            raise OperationalError("connection refused")
        if self.bad.intersection(rows):
            raise DatabaseError("Code: 376. Cannot parse UUID", code=376)
        self.tokens.setdefault(token, list(rows))
        return len(rows)

    @property
    def stored(self) -> list[int]:
        return sorted(row for rows in self.tokens.values() for row in rows)


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))))
def test_every_good_row_is_stored_once_and_every_bad_row_refused(case):
    size, bad = case
    rows = list(range(size))
    engine = Engine(bad)
    stored, refused = insert_isolating(engine.insert, rows, "t")
    assert engine.stored == [r for r in rows if r not in bad]
    assert stored == size - len(bad)
    assert [each.index for each in refused] == sorted(bad)
    assert all("Cannot parse UUID" in each.error for each in refused)


def test_a_clean_insert_is_one_insert_under_its_own_token():
    engine = Engine(set())
    assert insert_isolating(engine.insert, [1, 2, 3], "tok") == (3, [])
    assert list(engine.tokens) == ["tok"] and engine.calls == 1


def test_one_bad_row_in_a_thousand_costs_about_two_inserts_per_halving():
    engine = Engine({617})
    insert_isolating(engine.insert, list(range(1000)), "t")
    assert engine.calls <= 1 + 2 * 10


def test_a_replay_splits_the_same_way_and_stores_nothing_twice():
    """A crash after some halves landed: the replay re-inserts the whole under the original
    token, fails the same way, and ClickHouse drops the halves it holds by their tokens."""
    rows = list(range(100))
    engine = Engine({3, 64, 65})
    first = insert_isolating(engine.insert, rows, "t")
    tokens = dict(engine.tokens)
    second = insert_isolating(engine.insert, rows, "t")
    assert first[1] == second[1] and engine.tokens == tokens
    assert engine.stored == [r for r in rows if r not in {3, 64, 65}]


def test_an_outage_during_the_bisection_is_raised_for_a_retry_not_dead_lettered():
    engine = Engine({5}, down_after=3)
    with pytest.raises(OperationalError):
        insert_isolating(engine.insert, list(range(64)), "t")
    engine.down_after = None  # back: the retry completes, nothing twice
    _, refused = insert_isolating(engine.insert, list(range(64)), "t")
    assert [each.index for each in refused] == [5]
    assert engine.stored == [r for r in range(64) if r != 5]


def test_an_outage_is_never_taken_for_bad_data():
    engine = Engine(set(), down_after=0)
    with pytest.raises(OperationalError):
        insert_isolating(engine.insert, [1, 2], "t")
    assert engine.calls == 1


@pytest.mark.parametrize(
    ("error", "data"),
    [
        (DatabaseError("Code: 376. CANNOT_PARSE_UUID", code=376), True),
        (DatabaseError("Code: 321. VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE", code=321), True),
        (RecordRefused("not framed"), True),
        (DatabaseError("Code: 60. UNKNOWN_TABLE", code=60), False),
        (DatabaseError("Code: 16. NO_SUCH_COLUMN_IN_TABLE", code=16), False),
        (DatabaseError("Code: 241. MEMORY_LIMIT_EXCEEDED", code=241), False),
        (OperationalError("HTTP 503"), False),
        (TimeoutError("read timed out"), False),
    ],
)
def test_data_errors_are_told_from_outages_and_schema_bugs(error, data):
    assert is_data_error(error) is data
