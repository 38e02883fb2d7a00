"""A batch's event ids reach the dedup changelog only when the worker says its output is safe."""

from __future__ import annotations

from streams.app import TableDedup


class _Table:
    """What TableDedup uses of a Faust table: its data and its changelog."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: list[tuple[int, bytes, bytes | None]] = []

    def send_changelog(self, partition, key, value, **_) -> None:
        self.changelog.append((partition, key, value))


def test_sealed_ids_are_seen_at_once_but_written_only_when_persisted():
    table = _Table()
    dedup = TableDedup(table, window_ms=60_000)
    dedup.remember("a", partition=1, offset=10, now_ms=1_000)
    dedup.remember("b", partition=1, offset=11, now_ms=1_000)
    persist = dedup.flush(1_000)
    assert dedup.seen("a") and dedup.seen("b")  # later records of the same run are dropped
    assert table.changelog == [] and table.data == {}  # not durable before the output is

    persist()
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
