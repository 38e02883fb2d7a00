"""A batch's event ids reach the dedup changelog only when the worker says its output is safe."""

from __future__ import annotations

from govpulse.streams.app import TableDedup


class _Table:
    """What TableDedup uses of a Faust table: its data and its changelog."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: list[tuple[int, bytes, bytes | None]] = []

    def send_changelog(self, partition, key, value, **_) -> str:
        self.changelog.append((partition, key, value))
        return f"send of {key!r}"  # Faust returns a future the worker awaits before committing


def test_sealed_ids_are_seen_at_once_but_written_only_when_persisted():
    table = _Table()
    dedup = TableDedup(table, window_ms=60_000)
    dedup.remember("a", partition=1, offset=10, now_ms=1_000)
    dedup.remember("b", partition=1, offset=11, now_ms=1_000)
    persist = dedup.flush(1_000)
    assert dedup.seen("a") and dedup.seen("b")  # later records of the same run are dropped
    assert table.changelog == [] and table.data == {}  # not durable before the output is

    assert persist() == ["send of b'1:10:0'"]
    assert table.changelog == [(1, b"1:10:0", b"1000\na\nb")]
    assert table.data == {b"1:10:0": b"1000\na\nb"}


def test_two_batches_in_flight_are_persisted_separately():
    table = _Table()
    dedup = TableDedup(table, window_ms=60_000)
    dedup.remember("a", partition=0, offset=1, now_ms=5)
    first = dedup.flush(5)
    dedup.remember("b", partition=0, offset=2, now_ms=6)
    second = dedup.flush(6)
    first()
    assert [key for _, key, _ in table.changelog] == [b"0:1:0"]  # b's output is not safe yet
    second()
    assert [key for _, key, _ in table.changelog] == [b"0:1:0", b"0:2:0"]


def test_ids_of_a_batch_in_flight_survive_a_recovery_that_rebuilds_the_index():
    """A rebalance's recovery rebuilds the index from the table, which does not hold the ids
    of a batch still waiting for its acks: persisting it must put them back."""
    table = _Table()
    dedup = TableDedup(table, window_ms=60_000)
    dedup.remember("a", partition=3, offset=7, now_ms=9)
    persist = dedup.flush(9)
    dedup.rebuild()  # Faust's on_recover, while the batch is in flight
    assert not dedup.seen("a")
    persist()
    assert dedup.seen("a")


def test_ids_remembered_before_the_index_is_rebuilt_stay_seen():
    """Faust ends a recovery before it calls `rebuild`: the ids a worker remembered meanwhile
    (those its predecessor wrote past the commit, read back) must not be dropped by it."""
    table = _Table()
    table.data[b"2:0:0"] = b"5\nold"
    dedup = TableDedup(table, window_ms=60_000)
    dedup.remember("written-by-predecessor", partition=2, offset=40, now_ms=9)
    dedup.rebuild()
    assert dedup.seen("old") and dedup.seen("written-by-predecessor")
