"""Every Prometheus metric of govpulse, declared once and shared by all processes.

Labels are small fixed sets (event type, topic, reason, outcome, a schema's field name) —
never an event id or a pseudonym, which would make a series per record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, Info

# -- producer (AgencyProducer, simulator) -----------------------------------------------------
PRODUCER_SENT = Counter(
    "govpulse_producer_sent_total", "Records handed to the Kafka producer.", ["event_type"]
)
PRODUCER_DELIVERED = Counter(
    "govpulse_producer_delivered_total", "Records acknowledged by the broker.", ["event_type"]
)
PRODUCER_FAILED = Counter(
    "govpulse_producer_failed_total",
    "Records the broker never acknowledged (reported, not dropped silently).",
    ["event_type"],
)
PRODUCER_INVALID = Counter(
    "govpulse_producer_invalid_total",
    "Records refused before sending because they do not match their schema.",
    ["event_type"],
)
PRODUCER_QUEUED = Gauge(
    "govpulse_producer_queued", "Records waiting in the local buffer for acknowledgement."
)

# -- buckets ----------------------------------------------------------------------------------
# The pipeline works in milliseconds to seconds: 1 ms … 30 s covers a batch, an insert and an
# API request; record age also needs the minutes a backlog can reach.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
AGE_BUCKETS = (*LATENCY_BUCKETS, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0)
BATCH_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 50000, 100000)  # sink max

# -- process --------------------------------------------------------------------------------
BUILD_INFO = Info(
    "govpulse_build",
    "Version of the govpulse code a process runs; one series per component it serves.",
    ["component"],
)

# -- streams (Faust workers) -----------------------------------------------------------------
STREAMS_CONSUMED = Counter(
    "govpulse_streams_consumed_total", "Records read from raw.<type>.", ["event_type"]
)
STREAMS_CLEAN = Counter(
    "govpulse_streams_clean_total", "Records written to clean.<type>.", ["event_type"]
)
STREAMS_DEAD_LETTERED = Counter(
    "govpulse_streams_dead_lettered_total",
    "Records written to dlq.<type>, by reason code (the fixed set of govpulse.producers.defects).",
    ["event_type", "reason"],
)
STREAMS_DUPLICATES = Counter(
    "govpulse_streams_duplicates_total",
    "Records dropped because their event_id was seen within the de-duplication window.",
    ["event_type"],
)
STREAMS_RESUME_SKIPPED = Counter(
    "govpulse_streams_resume_skipped_total",
    "Raw records not routed again on taking a partition over: the previous owner had written "
    "their outcome already (read back from the output partitions; streams/resume.py).",
    ["event_type"],
)
STREAMS_IDS_MASKED = Counter(
    "govpulse_streams_ids_masked_total",
    "ID-shaped numbers (13 digits in any spelling, valid national ID or not; govpulse.streams.pii) "
    "masked in a non-PII text field of a clean record, by field (a schema field's name).",
    ["event_type", "field"],
)
STREAMS_BATCH_SECONDS = Histogram(
    "govpulse_streams_batch_seconds",
    "Time to process one batch taken from a raw topic, decode to send.",
    buckets=LATENCY_BUCKETS,
)
STREAMS_BATCH_SIZE = Histogram(
    "govpulse_streams_batch_size", "Records in one processed batch.", buckets=BATCH_BUCKETS
)
STREAMS_CONSUMER_LAG = Gauge(
    "govpulse_streams_consumer_lag",
    "Records in a raw partition this worker owns not yet committed (end offset - committed; "
    "on the embedded broker the end is its last batch's first offset + 1, so up to one "
    "producer batch low). A partition's series goes when the worker stops owning it.",
    ["topic", "partition"],
)
STREAMS_RECORD_AGE_SECONDS = Histogram(
    "govpulse_streams_record_age_seconds",
    "now - produced_at when the stream processor handles a record.",
    ["event_type"],
    buckets=AGE_BUCKETS,
)

# -- sink (ClickHouse) ---------------------------------------------------------------------
SINK_ROWS_INSERTED = Counter(
    "govpulse_sink_rows_inserted_total",
    "Rows ClickHouse acknowledged, by table (events_* and dead_letters).",
    ["table"],
)
SINK_INSERT_SECONDS = Histogram(
    "govpulse_sink_insert_seconds",
    "Time of one acknowledged ClickHouse insert.",
    buckets=LATENCY_BUCKETS,
)
SINK_INSERT_RETRIES = Counter(
    "govpulse_sink_insert_retries_total", "Inserts retried after a transient error."
)
SINK_ROWS_REFUSED = Counter(
    "govpulse_sink_rows_refused_total",
    "Rows ClickHouse refused for what they hold (a parse or range error), found by splitting "
    "their insert and dead-lettered as store_rejected; the rest of the insert was stored.",
    ["table"],
)
SINK_INSERT_FAILURES = Counter(
    "govpulse_sink_insert_failures_total",
    "Inserts given up (at a revoke or close), or failing through another 8 attempts in a row; "
    "offsets stay uncommitted and the batch is replayed.",
)
SINK_DUPLICATES_DROPPED = Counter(
    "govpulse_sink_duplicates_dropped_total",
    "Clean records left out of an acknowledged insert because their event_id was already in "
    "events_<type> or earlier in the same insert (an agency's copy that reached another raw "
    "partition); a replayed insert leaves out, and counts, the same records again.",
    ["event_type"],
)
SINK_BATCH_ROWS = Histogram(
    "govpulse_sink_batch_rows", "Rows in one insert batch.", buckets=BATCH_BUCKETS
)
SINK_CONSUMER_LAG = Gauge(
    "govpulse_sink_consumer_lag",
    "Records in a clean/dlq partition not yet committed by the sink (end offset - committed). "
    "Remove a partition's series when it is revoked.",
    ["topic", "partition"],
)
SINK_FRESHNESS_SECONDS = Gauge(
    "govpulse_sink_freshness_seconds",
    "Stall clock of PipelineStalled: now - the later of the sink's start and the newest "
    "produced_at it stored, computed at scrape time; see FRESHNESS. Not the data's age after "
    "a restart (govpulse_sink_data_age_seconds is).",
)
SINK_DATA_AGE_SECONDS = Gauge(
    "govpulse_sink_data_age_seconds",
    "How far behind the stored data is: now - the newest produced_at of the event type this "
    "sink stored in ClickHouse, computed at scrape time; a type's series appears with its "
    "first stored record (NaN again after a restart in the same process). See DATA_AGE.",
    ["event_type"],
)
SINK_PAUSED = Gauge(
    "govpulse_sink_paused", "1 while the sink pauses consumption (backpressure), else 0."
)
TIER_COMPLETE_UNTIL = Gauge(
    "govpulse_tier_complete_until_seconds",
    "Unix time before which the tier job (sinks/tiers.py) has merged every hour of the minute "
    "tier into the hour and day tiers; normally 1-2 hours behind the clock.",
)
TIER_RUN_SECONDS = Histogram(
    "govpulse_tier_run_seconds",
    "Wall time of one tier job run (merging the hours that closed or late events reached).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
TIER_RUN_FAILURES = Counter(
    "govpulse_tier_run_failures_total",
    "Tier job runs that failed (ClickHouse away, …); the next run redoes their work.",
)

# -- dashboard (JSON API) ----------------------------------------------------------------
DASHBOARD_REQUEST_SECONDS = Histogram(
    "govpulse_dashboard_request_seconds",
    "Time to answer one API request, by route template (never the raw path).",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
DASHBOARD_REQUESTS = Counter(
    "govpulse_dashboard_requests_total",
    "API requests answered, by route template and HTTP status code.",
    ["endpoint", "status"],
)
DASHBOARD_QUERIES = Counter(
    "govpulse_dashboard_queries_total",
    "SQL statements the dashboard sent to ClickHouse: what the engine pays, whatever the viewers.",
)
DASHBOARD_SHED = Counter(
    "govpulse_dashboard_shed_total",
    "Requests refused (503 + Retry-After) rather than queued: `queue_full` when the bounded "
    "query queue was full, `waited_too_long` when a queued query was dropped before it started, "
    "`subscribers` when the push stream had no room for another page.",
    ["reason"],
)
DASHBOARD_STALE = Counter(
    "govpulse_dashboard_stale_total",
    "Answers served from the last computed tick while a newer one was not ready (marked stale).",
)
DASHBOARD_SUBSCRIBERS = Gauge(
    "govpulse_dashboard_subscribers",
    "Pages connected to the push stream (/api/stream).",
)
DASHBOARD_TICK_SECONDS = Histogram(
    "govpulse_dashboard_tick_seconds",
    "Time to compute one panel for every province at once (one refresh tick of that panel).",
    ["panel"],
    buckets=LATENCY_BUCKETS,
)


class Freshness:
    """Feeds govpulse_sink_freshness_seconds, PipelineStalled's clock, computed at scrape.

    The data's age capped at the time since the sink started: after a restart over a backlog
    it says how long the sink has had to store something, not how old the data is (`DataAge`
    does; DataBehind alerts on it).

    The sink calls `start()` once, then `stored(newest_produced_at)` after each insert
    ClickHouse acknowledged. Computing at scrape time means a sink whose loop hangs still shows
    its data ageing. Until the first insert after start the clock runs from the start, so a
    restart over an old ClickHouse directory does not look stalled before data had a chance to
    flow. Processes that never call `start()` export NaN, which PromQL's min/max ignore.
    """

    def __init__(self, gauge: Gauge, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._newest: float | None = None
        gauge.set_function(self.seconds)

    def start(self) -> None:
        self._newest = self._clock()

    def stored(self, newest_produced_at: float) -> None:
        """Record a batch now in ClickHouse; `newest_produced_at` in seconds since the epoch."""
        if self._newest is None or newest_produced_at > self._newest:
            self._newest = newest_produced_at

    def seconds(self) -> float:
        return math.nan if self._newest is None else max(0.0, self._clock() - self._newest)


FRESHNESS = Freshness(SINK_FRESHNESS_SECONDS)


class DataAge:
    """Feeds govpulse_sink_data_age_seconds{event_type}: now - the newest produced_at stored
    of that type, computed at scrape.

    `produced_at` is when the agency published the event, so the figure holds every delay
    ahead of ClickHouse: the raw backlog before the stream workers, the clean backlog before
    the sink, the insert. The time since the last insert does not: while a backlog of older
    events is being stored it stays near zero (issue 18: 0.2 s shown, 7 s behind). Per event
    type, because a backlog in one raw topic hides behind the other types' fresh data in a
    figure over all of them. Unlike `Freshness` nothing clamps it to the sink's start, so a
    restart that resumes from a backlog shows how old the data is, not how long ago the sink
    started; a type's series appears with the first record of that type this sink stores.
    One dictionary look-up per insert.
    """

    def __init__(self, gauge: Gauge, clock: Callable[[], float] = time.time) -> None:
        self._gauge = gauge
        self._clock = clock
        self._newest: dict[str, float] = {}

    def start(self) -> None:
        """A sink starts: nothing stored by it yet (NaN until its first insert of a type)."""
        self._newest.clear()

    def stored(self, event_type: str, newest_produced_at: float) -> None:
        """Record a batch now in ClickHouse; `newest_produced_at` in seconds since the epoch.
        An older batch stored later (a replay, a slower partition) does not make data older."""
        known = self._newest.get(event_type)
        if known is None:
            self._gauge.labels(event_type).set_function(lambda: self.seconds(event_type))
        if known is None or newest_produced_at > known:
            self._newest[event_type] = newest_produced_at

    def seconds(self, event_type: str) -> float:
        newest = self._newest.get(event_type)
        return math.nan if newest is None else data_age_seconds(self._clock(), newest)


def data_age_seconds(now: float, newest_produced_at: float) -> float:
    """now - the newest produced_at stored, in seconds; never negative (a producer whose clock
    runs ahead would otherwise show data from the future)."""
    return max(0.0, now - newest_produced_at)


DATA_AGE = DataAge(SINK_DATA_AGE_SECONDS)
