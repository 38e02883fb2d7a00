"""The simulator's pacing and its end: by --duration even when the broker is slower than the
rate, and with a report (not a traceback) when sending fails part-way."""

from __future__ import annotations

import time

from govpulse.producers.agency_producer import DeliveryStats, ProducerBufferFull
from govpulse.producers.simulator import simulate
from govpulse.producers.traffic import TrafficGenerator


class SlowProducer:
    """Stands in for `AgencyProducer` where only pacing is under test: a send takes 1 ms, as
    with a broker slower than the rate asked for; the n-th send fails if `fail_at` is set."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.stats = DeliveryStats()
        self.fail_at = fail_at
        self.closed = False

    def bind(self, event_types) -> None:
        pass

    def send(self, event_type: str, record: dict) -> None:
        if self.stats.sent == self.fail_at:
            raise ProducerBufferFull("local buffer full for 30 s")
        time.sleep(0.001)
        self.stats.sent += 1
        self.stats.delivered += 1

    def close(self) -> DeliveryStats:
        self.closed = True
        return self.stats


def test_a_rate_the_broker_cannot_take_still_ends_at_the_duration() -> None:
    producer = SlowProducer()
    generator = TrafficGenerator(seed=1, daily_rhythm=False)
    started = time.monotonic()
    report = simulate(producer, generator, rate=50_000, duration_s=1.0)  # type: ignore[arg-type]
    assert time.monotonic() - started < 3.0  # was 10×: the backlog grew without bound
    assert 0 < report.total == producer.stats.sent < 50_000
    assert not report.error


def test_a_send_that_fails_part_way_ends_with_a_partial_report_and_a_flush() -> None:
    producer = SlowProducer(fail_at=120)
    report = simulate(producer, TrafficGenerator(seed=1), rate=1_000, duration_s=30)  # type: ignore[arg-type]
    assert report.total == 120 and report.delivered == 120
    assert "buffer full" in report.error and producer.closed
