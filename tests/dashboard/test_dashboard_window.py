"""Chart buckets: the one in progress counts only the seconds that have passed."""

from govpulse.dashboard.params import RANGES, Window


def test_the_bucket_in_progress_counts_the_seconds_it_has_run():
    window = Window.of(RANGES["24h"], now=36_000 + 6 * 60)  # 10:06 UTC, hourly buckets
    *done, current = window.buckets
    assert current == 36_000
    assert window.seconds_in(current) == 360
    assert {window.seconds_in(b) for b in done} == {3600}


def test_its_first_seconds_count_as_ten_so_a_few_events_make_no_spike():
    window = Window.of(RANGES["15m"], now=600 + 2)
    assert window.seconds_in(window.buckets[-1]) == 10
