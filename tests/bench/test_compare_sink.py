"""How bench.compare_sink cuts one type's records into govpulse-like insert cycles."""

from bench.compare_sink import cycles


def test_each_cycle_takes_an_equal_share_of_every_partition_in_offset_order() -> None:
    records = [(p, o, f"{p}:{o}".encode()) for p in (1, 0) for o in (12, 10, 11)]

    cut = cycles(records, rows_per_insert=4)

    assert cut == [
        [(0, 10, [b"0:10", b"0:11"]), (1, 10, [b"1:10", b"1:11"])],
        [(0, 12, [b"0:12"]), (1, 12, [b"1:12"])],
    ]


def test_every_record_is_in_exactly_one_cycle_when_partitions_differ_in_length() -> None:
    records = [(0, o, b"a%d" % o) for o in range(7)] + [(3, o, b"b%d" % o) for o in range(2)]

    cut = cycles(records, rows_per_insert=5)

    assert [len(cycle) for cycle in cut] == [2, 1, 1]  # partition 3 runs out after one cycle
    values = [v for cycle in cut for _, _, batch in cycle for v in batch]
    assert sorted(values) == sorted(r[2] for r in records)


def test_no_records_no_cycles() -> None:
    assert cycles([], rows_per_insert=100) == []
