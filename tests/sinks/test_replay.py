"""Re-inserting an interrupted insert: its token, and how a cycle's replayed batches split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govpulse.sinks.batching import Batch, Batcher, Range
from govpulse.sinks.replay import TokenRange, parse_token
from govpulse.sinks.writer import InsertGroup

TOPIC = "clean.service_request"


def batch(partition: int, first: int, last: int, token: str = "") -> Batch:
    made = Batch(TOPIC, partition, first, last, 0.0, [f"r{o}" for o in range(first, last + 1)])
    if token:
        made.replay_last, made.replay_token = last, token
    return made


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["clean.complaint", "dlq.dataset_update"]),
            st.integers(0, 63),
            st.integers(0, 10**12),
            st.integers(0, 10**6),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_a_group_token_parses_back_into_its_table_and_ranges(spans):
    batches = [Batch(t, p, first, first + n, 0.0) for t, p, first, n in spans]
    token = InsertGroup("events_complaint", "complaint", batches).token
    table, ranges = parse_token(token)
    assert table == "events_complaint"
    assert sorted(ranges) == sorted(
        TokenRange(b.topic, b.partition, b.first, b.last) for b in batches
    )


@pytest.mark.parametrize("bad", ["", "events_x", "events_x|", "events_x|t:0:5", "x|t:a:1-2"])
def test_a_malformed_token_is_refused(bad):
    with pytest.raises(ValueError):
        parse_token(bad)


def test_replayed_batches_leave_the_cycles_group_one_group_per_original_insert():
    t1 = f"events_service_request|{TOPIC}:0:0-4,{TOPIC}:1:0-9"
    t2 = f"events_service_request|{TOPIC}:2:0-2"
    fresh = batch(0, 5, 8)
    group = InsertGroup(
        "events_service_request",
        "service_request",
        [batch(0, 0, 4, t1), fresh, batch(2, 0, 2, t2), batch(1, 0, 9, t1)],
    )
    rest, first, second = group.split_replays()
    assert rest.batches == [fresh] and not rest.replay_token
    assert first.token == t1 and [b.partition for b in first.batches] == [0, 1]
    assert second.token == t2 and [b.partition for b in second.batches] == [2]


def test_a_replay_without_a_token_stays_in_the_cycles_group():
    legacy = batch(0, 0, 4)
    legacy.replay_last = 4
    group = InsertGroup("events_service_request", "service_request", [legacy])
    assert group.split_replays() == [group]


def test_the_batcher_carries_each_ranges_token_to_its_batch():
    batcher = Batcher()
    batcher.set_plan((TOPIC, 0), [Range(0, 2, "tok-a"), Range(3, 4, "tok-b"), (5, 6)])
    for offset in range(9):
        batcher.add(TOPIC, 0, offset, offset, now=0.0)
    taken = [(b.first, b.last, b.replay, b.replay_token) for b in batcher.take()]
    assert taken == [
        (0, 2, True, "tok-a"),
        (3, 4, True, "tok-b"),
        (5, 6, True, ""),
        (7, 8, False, ""),
    ]
