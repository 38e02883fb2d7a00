"""How the sink cuts batches: by cycle, and at replayed ranges exactly."""

from __future__ import annotations

from govpulse.sinks.batching import Batcher


def feed(batcher: Batcher, offsets, topic: str = "clean.x", partition: int = 0) -> None:
    for offset in offsets:
        batcher.add(topic, partition, offset, f"r{offset}", now=0.0)


def test_a_cycle_takes_one_batch_per_partition_with_its_offset_range():
    batcher = Batcher()
    feed(batcher, range(5))
    feed(batcher, range(10, 13), partition=1)
    taken = sorted(batcher.take(), key=lambda b: b.partition)
    assert [(b.partition, b.first, b.last, len(b.records)) for b in taken] == [
        (0, 0, 4, 5),
        (1, 10, 12, 3),
    ]
    assert taken[0].describe() == "clean.x:0:0-4"
    assert batcher.rows == 0 and batcher.oldest() is None


def test_extend_appends_a_run_like_single_adds():
    batcher = Batcher()
    batcher.extend("clean.x", 0, [3, 4, 5], ["a", "b", "c"], now=1.0)
    batcher.extend("clean.x", 0, [6], ["d"], now=2.0)
    [batch] = batcher.take()
    assert (batch.first, batch.last, batch.records, batch.opened_at) == (3, 6, list("abcd"), 1.0)


def test_replayed_ranges_are_cut_at_their_recorded_offsets():
    batcher = Batcher()
    batcher.set_plan(("clean.x", 0), [(10, 14), (15, 16)])
    batcher.extend("clean.x", 0, list(range(10, 20)), [f"r{o}" for o in range(10, 20)], now=0)
    taken = batcher.take()
    assert [(b.first, b.last, b.replay) for b in taken] == [
        (10, 14, True),
        (15, 16, True),
        (17, 19, False),
    ]


def test_an_incomplete_replayed_range_waits_for_its_last_offset():
    batcher = Batcher()
    batcher.set_plan(("clean.x", 0), [(10, 14)])
    feed(batcher, range(10, 13))
    assert batcher.take() == []  # inserting part of the range would change its boundaries
    feed(batcher, range(13, 15))
    assert batcher.has_cut
    [batch] = batcher.take()
    assert (batch.first, batch.last, batch.replay) == (10, 14, True)


def test_a_normal_batch_never_runs_into_a_replayed_range():
    batcher = Batcher()
    batcher.set_plan(("clean.x", 0), [(20, 22)])
    feed(batcher, [18, 19, 20, 21, 22])
    assert [(b.first, b.last, b.replay) for b in batcher.take()] == [
        (18, 19, False),
        (20, 22, True),
    ]


def test_ranges_below_the_first_offset_read_are_skipped():
    batcher = Batcher()
    batcher.set_plan(("clean.x", 0), [(0, 4), (5, 9)])
    feed(batcher, range(5, 12))
    assert [(b.first, b.last, b.replay) for b in batcher.take()] == [
        (5, 9, True),
        (10, 11, False),
    ]


def test_a_range_whose_last_offset_never_comes_ends_at_the_next_record_after_it():
    batcher = Batcher()
    batcher.set_plan(("clean.x", 0), [(0, 4)])
    feed(batcher, [0, 1, 2, 6, 7])  # 3 and 4 gone (compaction, retention)
    assert [(b.first, b.last) for b in batcher.take()] == [(0, 2), (6, 7)]


def test_dropping_revoked_partitions_forgets_their_records_and_plans():
    batcher = Batcher()
    batcher.set_plan(("clean.x", 1), [(0, 9)])
    feed(batcher, range(3))
    feed(batcher, range(3), partition=1)
    assert batcher.drop([("clean.x", 1)]) == 3
    assert batcher.planned(("clean.x", 1)) == []
    assert [b.partition for b in batcher.take()] == [0]
    assert batcher.rows == 0
