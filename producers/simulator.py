"""`govpulse simulate`: live traffic from many agencies, paced to a rate, with ground truth.

The report it prints (per type: sent, and per defect kind) is what every later stage is
checked against: cleaned, dead-lettered and de-duplicated counts must add up to it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from govpulse.producers.agency_producer import AgencyProducer
from govpulse.producers.traffic import TrafficGenerator

PROGRESS_EVERY_S = 2.0
TICK_S = 0.01  # pacing granularity: at 2,000 events/s that is 20 records a tick


@dataclass
class SimulationReport:
    """Ground truth of one run: what was sent, by type and by defect kind."""

    sent: Counter[str] = field(default_factory=Counter)
    defects: dict[str, Counter[str]] = field(default_factory=dict)
    delivered: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    error: str = ""  # why the run ended early, if it did

    def count(self, event_type: str, defect: str | None) -> None:
        self.sent[event_type] += 1
        if defect is not None:
            self.defects.setdefault(event_type, Counter())[defect] += 1

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def as_dict(self) -> dict:
        return {
            "sent": self.total,
            "delivered": self.delivered,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "error": self.error,
            "rate_per_s": round(self.total / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "by_type": {
                event_type: {"sent": sent, "defects": dict(self.defects.get(event_type, {}))}
                for event_type, sent in sorted(self.sent.items())
            },
        }

    def table(self) -> str:
        kinds = sorted({kind for counts in self.defects.values() for kind in counts})
        header = ["event_type", "sent", *kinds]
        rows = [header]
        for event_type, sent in sorted(self.sent.items()):
            counts = self.defects.get(event_type, Counter())
            rows.append([event_type, str(sent), *(str(counts[k]) for k in kinds)])
        totals = Counter[str]()
        for counts in self.defects.values():
            totals.update(counts)
        rows.append(["total", str(self.total), *(str(totals[k]) for k in kinds)])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        return "\n".join(
            "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        )


def simulate(
    producer: AgencyProducer,
    generator: TrafficGenerator,
    rate: float,
    duration_s: float,
    progress: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> SimulationReport:
    """Send `rate` × rhythm events per second for `duration_s` seconds; flush; report."""
    report = SimulationReport()
    try:
        _paced(producer, generator, rate, duration_s, report, progress, should_stop)
    except Exception as error:  # registry or broker unreachable, buffer full: keep the count
        report.error = str(error)
    stats = producer.close()  # what was queued before an error is still delivered or reported
    report.delivered, report.failed = stats.delivered, stats.failed
    return report


def _paced(
    producer: AgencyProducer,
    generator: TrafficGenerator,
    rate: float,
    duration_s: float,
    report: SimulationReport,
    progress: Callable[[str], None] | None,
    should_stop: Callable[[], bool],
) -> None:
    producer.bind(generator.event_types)  # registry look-ups before the clock starts
    start = time.monotonic()
    next_progress = start + PROGRESS_EVERY_S
    owed = 0.0
    last = start

    def over() -> bool:
        return should_stop() or time.monotonic() - start >= duration_s

    try:
        while not over():
            now = time.monotonic()
            # at most a second behind: a broker slower than the rate lowers the rate reached
            # instead of piling up a backlog that outlives --duration and Ctrl-C
            rate_now = rate * generator.rhythm_factor()
            owed = min(owed + (now - last) * rate_now, max(1.0, rate_now))
            last = now
            for sent in range(int(owed)):
                if sent % 256 == 255 and over():
                    break
                event_type, record, defect = generator.next_event()
                producer.send(event_type, record)
                report.count(event_type, defect)
                owed -= 1
            if progress and now >= next_progress:
                stats = producer.stats
                progress(
                    f"  {now - start:6.1f} s  sent {report.total:>9,}  "
                    f"delivered {stats.delivered:>9,}  failed {stats.failed:,}  "
                    f"({report.total / (now - start):,.0f}/s)"
                )
                next_progress += PROGRESS_EVERY_S
            time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
    finally:
        report.elapsed_s = time.monotonic() - start


def report_json(report: SimulationReport) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False, sort_keys=True)
