"""The tier job: the hour and day rollups merged from the minute tier, off the insert path.

Why a job and not materialized views: a view runs on every sink insert (39 of them cost 60 %
of a live 5k/s cycle, bench/RESULTS.md) and, at live rates, writes a state per event; the
job merges each closed hour once, from the minute tier's states, in one statement per table.
Why not ClickHouse's refreshable views: they run only where a server (or a long-lived chdb
session) keeps them, their APPEND mode has no notion of which rows are new, and a crash test
needs a step to stop at. Readers see closed hours from the tiers and the open one straight
from the minute tier (dashboard/queries.py), so the tiers never need to be fresher than an
hour.

One run:

1. `complete_until` (C) and `scanned_from` (S) from `tier_progress`; the hours to merge are
   the closed hours since C that hold data (an hour closes MARGIN_SECONDS after its end, so its
   stragglers land first) and the hours before C that rows were inserted into since
   S − INSERT_SKEW_SECONDS (an insert in flight while the last run read is seen by this one):
   late events (an agency's backlog, a digital centre syncing), found through a skip index
   on the minute tier's newest insert time.
2. Every hour is recomputed whole from its source tier (province hours from the minute tier,
   national hours from province hours, district counts from the events tables), then every
   day holding one of them, under one new `version`. The tables are ReplacingMergeTree: a
   recomputed bucket replaces its rows.
3. Progress is written last. A crash anywhere before leaves the old progress: the next run
   recomputes the same buckets (and any newer), replacing what the crashed run wrote —
   nothing is counted twice or lost. Two jobs racing write the same rows; the newer read wins.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from govpulse.monitoring.metrics import TIER_COMPLETE_UNTIL, TIER_RUN_FAILURES, TIER_RUN_SECONDS
from govpulse.schemas.rollups import (
    ACTIVITY,
    DAY,
    HOUR,
    PROGRESS_TABLE,
    TierTable,
    minute_table,
    tier_tables,
)
from govpulse.sinks.rollup_ddl import district_statement, merge_statement

log = logging.getLogger(__name__)

JOB = "tiers"
MARGIN_SECONDS = 60  # an hour closes this long after its end: its stragglers land first
# Longer than any sink insert takes: rows an insert made visible after a run read the minute
# tier have an insert time at most this much before that run began (the late scan's overlap).
INSERT_SKEW_SECONDS = 30
BATCH_BUCKETS = 24  # hours per statement in a backfill (a day of the source tier)
CRASH_AT_ENV = "GOVPULSE_TIER_CRASH_AT"
STEPS = ("hours", "national", "days", "progress")  # where a test can make a run die
_SETTINGS = {"distributed_foreground_insert": 1}  # a cluster's tier rows stored on return
_SOURCE = minute_table(ACTIVITY)  # every event is in it: its buckets are every family's


@dataclass
class TierRun:
    """What one run did: the buckets it recomputed and where the tiers now are."""

    hours: list[int] = field(default_factory=list)  # Unix seconds of each hour recomputed
    days: list[int] = field(default_factory=list)
    late_hours: int = 0  # of `hours`, those before complete_until (late events)
    complete_until: int = 0
    statements: int = 0
    seconds: float = 0.0


def _floor(seconds: float, step: int) -> int:
    return int(seconds) // step * step


def _chunks(buckets: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(buckets), size):
        yield list(buckets[start : start + size])


class TierJob:
    """Merges closed and late-touched hours (and their days) into the tier tables."""

    def __init__(
        self,
        client: Any,
        database: str | None = None,
        *,
        clock: Callable[[], float] | None = None,
        crash_at: str | None = None,
        die: Callable[[], None] | None = None,
    ) -> None:
        """`crash_at` (default: GOVPULSE_TIER_CRASH_AT) names a step of `STEPS` after which the
        run dies: `die()` (default: the process exits 137, as kill -9)."""
        self.client = client
        self.db = database or client.database or "default"
        self.clock = clock
        self.crash_at = crash_at if crash_at is not None else os.environ.get(CRASH_AT_ENV, "")
        self.die = die or (lambda: os._exit(137))
        if self.crash_at and self.crash_at not in STEPS:
            raise ValueError(f"{CRASH_AT_ENV}={self.crash_at!r}: expected one of {STEPS}")
        tables = tier_tables()
        self.province_hours = [t for t in tables if t.grain is HOUR and t.scope == "province"]
        self.national_hours = [t for t in tables if t.grain is HOUR and t.scope != "province"]
        self.days = [t for t in tables if t.grain is DAY]

    # -- state ---------------------------------------------------------------------------
    def progress(self) -> tuple[int, float, int] | None:
        """(complete_until, scanned_from, version) of the last finished run; None: never ran."""
        rows = self.client.query(
            "SELECT toUnixTimestamp(complete_until), toUnixTimestamp64Milli(scanned_from), "
            f"version FROM {self.db}.{PROGRESS_TABLE} FINAL WHERE job = {{job:String}}",
            parameters={"job": JOB},
        ).result_rows
        if not rows:
            return None
        until, scanned_ms, version = rows[0]
        return int(until), scanned_ms / 1000, int(version)

    def _now(self) -> float:
        """The run's time: the engine's clock (it stamps `inserted_at`, which the late scan
        compares with), unless a test gives a clock."""
        if self.clock is not None:
            return self.clock()
        return (
            float(self.client.query("SELECT toUnixTimestamp64Milli(now64(3))").result_rows[0][0])
            / 1000
        )

    def _hours(self, where: str, params: dict[str, Any]) -> list[int]:
        rows = self.client.query(
            f"SELECT DISTINCT toUnixTimestamp(toStartOfHour(minute)) AS h "
            f"FROM {self.db}.{_SOURCE} WHERE {where} ORDER BY h",
            parameters=params,
        ).result_rows
        return [int(h) for (h,) in rows]

    # -- one run -------------------------------------------------------------------------
    def run_once(self, on_progress: Callable[[str], None] | None = None) -> TierRun:
        """Recompute what is due; see the module docstring for the steps."""
        started = time.monotonic()
        now = self._now()
        previous = self.progress()
        until = _floor(now - MARGIN_SECONDS, HOUR.seconds)
        version = int(now * 1000)
        if previous is None:
            closed = self._hours("minute < toDateTime({until:UInt32})", {"until": until})
            late: list[int] = []
        else:
            complete_until, scanned_from, last_version = previous
            version = max(version, last_version + 1)
            until = max(until, complete_until)  # never move backwards (a clock set back)
            closed = self._hours(
                "minute >= toDateTime({c:UInt32}) AND minute < toDateTime({until:UInt32})",
                {"c": complete_until, "until": until},
            )
            late = self._hours(
                "minute < toDateTime({c:UInt32}) "
                "AND last_inserted_at >= fromUnixTimestamp64Milli({s:Int64})",
                # never later than now: a scan from a clock that ran ahead would skip rows
                {
                    "c": complete_until,
                    "s": int((min(scanned_from, now) - INSERT_SKEW_SECONDS) * 1000),
                },
            )
        run = TierRun(hours=sorted(set(closed) | set(late)), late_hours=len(late))
        run.complete_until = until
        chunks = list(_chunks(run.hours, BATCH_BUCKETS))
        for number, hours in enumerate(chunks, start=1):
            self._recompute_hours(hours, version, run)
            if on_progress and len(chunks) > 1:
                on_progress(f"tiers: {number}/{len(chunks)} days of hours merged")
        self._maybe_crash("hours")
        for hours in chunks:
            self._recompute(self.national_hours, hours, HOUR.seconds, version, run)
        self._maybe_crash("national")
        run.days = sorted({_floor(h, DAY.seconds) for h in run.hours})
        for days in _chunks(run.days, BATCH_BUCKETS):
            self._recompute(self.days, days, DAY.seconds, version, run)
        self._maybe_crash("days")
        self.client.command(
            f"INSERT INTO {self.db}.{PROGRESS_TABLE} (job, complete_until, scanned_from, version) "
            "SELECT {job:String}, toDateTime({until:UInt32}), "
            "fromUnixTimestamp64Milli({scanned:Int64}), {version:UInt64}",
            parameters={"job": JOB, "until": until, "scanned": int(now * 1000), "version": version},
        )
        self._maybe_crash("progress")
        run.seconds = time.monotonic() - started
        return run

    def _recompute_hours(self, hours: list[int], version: int, run: TierRun) -> None:
        minute_tiers = [t for t in self.province_hours if not t.family.from_events]
        self._recompute(minute_tiers, hours, HOUR.seconds, version, run)
        for table in self.province_hours:
            if table.family.from_events:
                for event_type in table.family.sources:
                    sql = district_statement(table, event_type, self.db)
                    self._command(sql, hours, HOUR.seconds, version, run)

    def _recompute(
        self, tables: list[TierTable], buckets: list[int], step: int, version: int, run: TierRun
    ) -> None:
        for table in tables:
            self._command(merge_statement(table, self.db), buckets, step, version, run)

    def _command(self, sql: str, buckets: list[int], step: int, version: int, run: TierRun) -> None:
        self.client.command(
            sql,
            parameters={
                "buckets": buckets,
                "first": buckets[0],
                "end": buckets[-1] + step,
                "version": version,
            },
            settings=_SETTINGS,
        )
        run.statements += 1

    def _maybe_crash(self, step: str) -> None:
        if self.crash_at == step:
            log.error("%s=%s: the tier job dies here, as kill -9 would", CRASH_AT_ENV, step)
            self.die()


class TierLoop:
    """Runs a `TierJob` every `interval` seconds on its own thread (the sink process's)."""

    def __init__(self, job: TierJob, interval: float) -> None:
        self.job = job
        self.interval = interval
        self.runs = 0
        self.last: TierRun | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tiers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with TIER_RUN_SECONDS.time():
                    self.last = self.job.run_once()
                self.runs += 1
                TIER_COMPLETE_UNTIL.set(self.last.complete_until)
                if self.last.hours:
                    log.info(
                        "tiers: %d hours (%d late) and %d days merged in %.2f s",
                        len(self.last.hours),
                        self.last.late_hours,
                        len(self.last.days),
                        self.last.seconds,
                    )
            except Exception:  # ClickHouse away: the next run redoes it (nothing half-counted)
                TIER_RUN_FAILURES.inc()
                log.exception("tiers: run failed; retrying in %.0f s", self.interval)
            self._stop.wait(self.interval)
