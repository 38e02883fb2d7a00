"""The dashboard's SQL: constant text, bound parameters, answers shaped for JSON.

Rules every query here follows:

- The text is constant. The only parts chosen at run time are the database name (validated
  as an identifier when the app is built, from configuration, never from a request), filter
  clauses picked from the fixed `_FILTERS` table, a breakdown column picked from
  `params.BREAKDOWN_DIMENSIONS`, and the rollup tables of the range's grain (the fixed
  `MINUTE`, `HOUR` and `DAY` below, and the fixed national twin names). Values always travel
  as ClickHouse query parameters (`{name:Type}` bound by clickhouse-connect), so request text
  is never parsed as SQL.
- Live charts read the rollups, never the raw `events_*` tables: the 15 min and 1 h ranges
  the per-minute ones (`activity_minute` and the per-type `*_minute` tables), the 24 h and
  7 d ranges the hourly tiers (`activity_hour`, `*_hour`), in whole-hour buckets. A rollup
  holds at most one row per minute (hour) and dimension combination, so a refresh costs the
  same whatever the event rate. Totals over a window's whole UTC days read the daily tiers
  (`*_day`) and only the partial days' hourly rows (`whole_days`); without a province filter
  the day and week read national twins without the province dimension (`reads_national`).
- The hour and day tiers are merged from the minute tier by the tier job (sinks/tiers.py;
  tables generated from schemas/rollups.py) once an hour has closed, and again for buckets
  late events reach. So an hourly table is read FINAL (a recomputed bucket replaces its rows)
  and only before the job's `complete_until` (`{tier_until}`, `tier_until()`); the hours from
  there on — the open hour, or more while the job catches up — come from the minute tier in
  hourly buckets, in the same statement (`_source`). Days likewise: only whole days before
  `{tier_day_until}` from the daily tier, the rest from the hourly source (`_PARTIAL_DAYS`).
- One exception, the district drill-down of a province in the 15 min and 1 h views: the
  rollups deliberately have no district dimension (it would multiply their rows ~12×, see
  sinks/ddl/0003_activity_minute.sql), so district counts read `events_*`, constrained by the
  leading primary-key column (`province_code`, then `agency_code` when an agency is picked)
  and the time range, which reads one province's range of each table. It runs only in the
  provincial view. The day and week read `district_hour` (events only, keyed by province
  first; the tier job counts it from `events_*` per closed hour) and `events_*` for the hours
  after the tier job's.
- Timestamps leave ClickHouse as Unix seconds (`toUnixTimestamp`): chdb may drop the zone of
  a `DateTime('UTC')` column in its output, an integer cannot be misread.
- Every panel a screen asks with its own province (`GROUPED_PANELS`) is a builder of its
  statements and a shaper of an answer from their rows. `all_provinces` sends the same
  statements once without a province filter, `province_code` leading their SELECT and GROUP
  BY, and shapes each province's answer from its rows: 77 wall screens cost one query set
  per refresh, not 77. (The district drill-down then scans the window of `events_*` for all
  provinces at once: the one grouped statement that reads raw events.)
- Every statement goes out through `_rows`, counted (`statements`, DASHBOARD_QUERIES) and
  with `max_threads` (one engine thread by default: the dashboard's reads are small, the
  sink and the stream workers keep the other cores); see `engine_settings` for a read-only
  user, who may not send settings.

Each public method is blocking (clickhouse-connect is synchronous); `dashboard.app` runs them
in a thread executor.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from string import Template
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from govpulse.dashboard.params import BREAKDOWN_DIMENSIONS, Query, TimeRange, Window
from govpulse.monitoring.metrics import DASHBOARD_QUERIES, data_age_seconds
from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.schemas.reference import agencies, districts, provinces, region_of
from govpulse.schemas.rollups import (
    PROGRESS_TABLE,
    TierTable,
    district_counts,
    minute_table,
    tier_of,
)

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Filter clauses a request can switch on, by parameter name. Text fixed here; values bound.
_FILTERS = {
    "province": "province_code = {province:String}",
    "agency": "agency_code = {agency:String}",
}
_BOTH = ("province", "agency")
_IN_WINDOW = (
    "$time >= toDateTime({start:UInt32}, 'UTC') AND $time < toDateTime({end:UInt32}, 'UTC')"
)
_BUCKET = "intDiv(toUnixTimestamp($time), {step:UInt32}) * {step:UInt32}"
# The whole days of a window in the daily rollups (those the tier job has completed), and the
# hours around them (and of the whole days it has not) in the hourly ones.
_DAYS = (
    "day >= toDateTime({day_start:UInt32}, 'UTC') AND day < toDateTime({day_end:UInt32}, 'UTC') "
    "AND day < toDateTime({tier_day_until:UInt32}, 'UTC')"
)
_PARTIAL_DAYS = (
    "(hour >= toDateTime({start:UInt32}, 'UTC') AND hour < toDateTime({day_start:UInt32}, 'UTC') "
    "OR hour >= toDateTime({day_end:UInt32}, 'UTC') AND hour < toDateTime({end:UInt32}, 'UTC') "
    "OR hour >= toDateTime(greatest({day_start:UInt32}, {tier_day_until:UInt32}), 'UTC') "
    "AND hour < toDateTime({day_end:UInt32}, 'UTC'))"
)
# Where the tier job is (sinks/tiers.py): hours before it are read from the hour tier, the
# rest (the open hour, and any the job has not merged yet) from the minute tier. Read at most
# this often: an older value only moves more hours to the minute tier, never loses one.
TIER_PROGRESS_TTL_SECONDS = 5.0
_TIER_UNTIL = "toDateTime({tier_until:UInt32}, 'UTC')"
_KINDS = ("activity", "service_request", "complaint", "net_pracharat", "digital_center")


def _per_type(condition: str = "") -> str:
    """Events per type as columns of one row (of the rows that meet `condition`): the
    per-type sums of a GROUP BY without event_type in its key, which is 2-3 times cheaper
    than grouping by event_type too."""
    extra = f" AND {condition}" if condition else ""
    return ", ".join(f"sumIf(events, event_type = '{t}'{extra})" for t in EVENT_TYPES)


_PER_TYPE = _per_type()
TOP_AGENCIES = 10
TOP_SERVICES = 8
# The data age looks for the newest produced_at among the rows of the last two hours of
# produced minutes, then of the last day: bounded, so the query stays cheap however much
# history is kept.
FRESHNESS_FIRST_LOOKBACK_SECONDS = 2 * 3600
FRESHNESS_LOOKBACK_SECONDS = 24 * 3600
# The dead-letter rate is taken over the current minute and the four before it.
DEAD_LETTER_WINDOW_MINUTES = 5
# Service names are not in the rollup (service_code is); they are looked up from the raw
# table now and then, since a service's name changes rarely.
SERVICE_NAMES_TTL_SECONDS = 300.0
# Panels `DashboardQueries.all_provinces` computes for every province at once: those a wall
# screen asks with its own `province=` filter (`province` is the drill-down of one province).
GROUPED_PANELS = (
    "overview",
    "timeseries",
    "ministries",
    "service_requests",
    "complaints",
    "net_pracharat",
    "digital_centers",
    "breakdown",
    "province",
)
# The engine threads one dashboard query may use by default: the dashboard answers from
# small rollups, the sink and the stream workers on the same host keep the other cores.
DEFAULT_MAX_THREADS = 1
# The niceness of the engine threads running a dashboard query (ClickHouse's
# os_thread_priority; a no-op where the engine lacks CAP_SYS_NICE): off by default. Measured
# with both cores busy, a query of 0.73 s at 0 took 34-44 s at 19; in bench.viewers at 10
# (2026-12-08) the dashboard ran 4 statements/s instead of 10.7, shed 800-960 requests and
# pushed panels 3.5 s old (p50), while the pipeline's end-to-end p99 rose as much as without.
DEFAULT_NICE: int | None = None


@dataclass(frozen=True)
class Grain:
    """The rollup tables of one time grain; `time` is both the grain's name and their column.

    `sketch` names the quantile states of processing_seconds and latency_ms: t-digest in
    every tier (a coarser tier is a merge of the finer one's states: schemas/rollups.py).
    """

    time: str
    seconds: int
    activity: str
    service_request: str
    complaint: str
    net_pracharat: str
    digital_center: str
    sketch: str

    @property
    def tables(self) -> tuple[str, ...]:
        return (
            self.activity,
            self.service_request,
            self.complaint,
            self.net_pracharat,
            self.digital_center,
        )


MINUTE = Grain(
    "minute",
    60,
    "activity_minute",
    "service_request_minute",
    "complaint_minute",
    "net_pracharat_minute",
    "digital_center_minute",
    "TDigest",
)
HOUR = Grain(
    "hour",
    3600,
    "activity_hour",
    "service_request_hour",
    "complaint_hour",
    "net_pracharat_hour",
    "digital_center_hour",
    "TDigest",
)
# The whole UTC days of an hourly window (the tier job's, sinks/ddl/0011_tiers_from_minute.sql):
# same columns and state types as HOUR, so their rows and the hourly rows of the partial days are
# merged in one UNION ALL. Never a chart bucket: only totals and groupings read it.
DAY = Grain(
    "day",
    86400,
    "activity_day",
    "service_request_day",
    "complaint_day",
    "net_pracharat_day",
    "digital_center_day",
    "TDigest",
)
# Rollups with national twins per hour and per day (`<kind>_national_<grain>`: no province or
# region dimension, sinks/ddl/0011_tiers_from_minute.sql), read by hourly ranges
# without a province filter.
NATIONAL_KINDS = ("activity", "service_request", "complaint", "net_pracharat")
NATIONAL_TABLES = tuple(
    f"{kind}_national_{grain.time}" for grain in (HOUR, DAY) for kind in NATIONAL_KINDS
)
# Ranges at least this long read the hourly rollups (24 h and 7 d); shorter ones per minute.
HOURLY_FROM_SECONDS = 24 * 3600
REQUIRED_TABLES = (
    *dict.fromkeys((*MINUTE.tables, *HOUR.tables, *DAY.tables, *NATIONAL_TABLES)),
    "district_hour",
    PROGRESS_TABLE,
    "dead_letters_minute",
    "produced_minute",
    *(f"events_{event_type}" for event_type in EVENT_TYPES),
)


def grain_of(time_range: TimeRange) -> Grain:
    """The rollups a time range reads."""
    return HOUR if time_range.seconds >= HOURLY_FROM_SECONDS else MINUTE


def reads_national(query: Query) -> bool:
    """Whether a query reads the national twins: an hourly range without a province filter.

    The twins hold the same events without the province dimension, ~50 times fewer rows per
    hour, so the national day and week panels merge far fewer rows and states.
    """
    return query.province is None and grain_of(query.range) is HOUR


def whole_days(time_range: TimeRange, window: Window) -> tuple[int, int] | None:
    """[first, last) Unix seconds of the whole UTC days in an hourly window; None if none.

    Those days are read from the daily rollups, the hours before `first` and from `last` on
    (the partial first and last day, 24 hours together in a 7 d window) from the hourly
    ones: every hour of the window exactly once.
    """
    if grain_of(time_range) is not HOUR:
        return None
    first = -(-window.start // DAY.seconds) * DAY.seconds
    last = window.end // DAY.seconds * DAY.seconds
    return (first, last) if last > first else None


def bucket_seconds(time_range: TimeRange) -> int:
    """Chart bucket width: the range's step, never narrower than the rows it sums."""
    return max(time_range.step, grain_of(time_range).seconds)


def window_of(time_range: TimeRange, now: float | None = None) -> Window:
    """The buckets a request covers, aligned to whole rows of the rollups it reads.

    An hourly range starts and ends on the hour, so its totals are exactly the hourly rows
    it sums, and its first bucket holds a whole hour, not part of one.
    """
    return Window.of(replace(time_range, step=bucket_seconds(time_range)), now)


def age_seconds(now_ms: int, then_ms: int) -> float:
    """Seconds from `then_ms` to `now_ms` (epoch milliseconds), to 0.1 s; never negative."""
    return round(data_age_seconds(now_ms / 1000, then_ms / 1000), 1)


def _number(value: Any) -> float | int | None:
    """A JSON-friendly number: Decimals to float, NaN (empty quantile) to None."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _names(code: str, table: dict[str, Any]) -> dict[str, str]:
    item = table.get(code)
    if item is None:  # a code the rollup holds but reference data no longer has
        return {"name_th": code, "name_en": code}
    return {"name_th": item.name_th, "name_en": item.name_en}


def engine_settings(
    client: Client, max_threads: int | None, nice: int | None = None
) -> dict[str, Any]:
    """The settings every dashboard query carries: `max_threads` and the niceness of its
    threads (`os_thread_priority`, 1-19: under load the kernel runs the sink's and the stream
    workers' threads first), each unless None or the user may not change it.

    A `readonly = 1` user (the dashboard's in server mode, see dashboard/README.md) may change
    no setting: the server refuses a query carrying one (Code 164, READONLY), and
    clickhouse-connect, which reads at connect time from system.settings that the setting is
    read-only for this user, raises ProgrammingError before sending it (its default
    `invalid_setting_action`, "error"). So it is left out, with a warning unless the user's
    settings profile already holds that very value (then there is nothing to change).
    """
    wanted = {"max_threads": max_threads, "os_thread_priority": nice}
    chosen: dict[str, Any] = {}
    for name, value in wanted.items():
        if value is None:
            continue
        current = client.server_settings.get(name)
        if current is not None and current.readonly:
            if current.value != str(value):
                log.warning(
                    "dashboard queries run without %s=%d: this ClickHouse user may not change "
                    "settings (readonly); set %s = %d in its settings profile",
                    name,
                    value,
                    name,
                    value,
                )
            continue
        chosen[name] = value
    return chosen


def _refused_as_readonly(error: DatabaseError) -> bool:
    """Whether the server refused a query's settings because the user is read-only."""
    return "READONLY" in str(error) or "Code: 164" in str(error)


Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Statements:
    """The SQL one panel sends, in order, all with the same bound parameters."""

    sql: tuple[str, ...]
    params: dict[str, Any]


# A panel is a builder of its statements (`grouped`: keyed and grouped by province, for
# every province at once) and a shaper of one answer from their rows.
Build = Callable[[Query, Window, bool], Statements]
Shape = Callable[[Query, Window, Sequence[Rows]], dict[str, Any]]


class DashboardQueries:
    """Every read the dashboard makes, against one database.

    `max_threads` bounds the engine threads of each query (None: the server's default), so
    the dashboard's queries leave the sink and the stream workers their cores; see
    `engine_settings` for a read-only user. `statements` counts the SQL statements sent.
    """

    def __init__(
        self,
        client: Client,
        database: str | None = None,
        *,
        max_threads: int | None = DEFAULT_MAX_THREADS,
        nice: int | None = DEFAULT_NICE,
    ) -> None:
        database = database or client.database or "default"
        if not _IDENTIFIER.fullmatch(database):
            raise ValueError(
                f"dashboard database {database!r}: expected a plain identifier "
                "(letters, digits, underscore; not starting with a digit)"
            )
        if max_threads is not None and max_threads < 1:
            raise ValueError(f"max_threads={max_threads}: expected at least 1, or None")
        if nice is not None and not 1 <= nice <= 19:
            raise ValueError(f"nice={nice}: expected 1-19, or None")
        self.client = client
        self.database = database
        self.settings = engine_settings(client, max_threads, nice)
        self.statements = 0
        self._statements_lock = threading.Lock()
        self._service_names: dict[str, str] = {}
        self._service_names_at = -SERVICE_NAMES_TTL_SECONDS
        self._service_names_lock = threading.Lock()
        self._tier_until = 0
        self._tier_read_at = -TIER_PROGRESS_TTL_SECONDS
        self._tier_lock = threading.Lock()

    def missing_tables(self) -> list[str]:
        """Tables the dashboard reads that the database lacks (empty: ready to serve).

        The dashboard never creates tables (in server mode it is a read-only user), so a
        missing one means `govpulse migrate` has not run against this database.
        """
        rows = self._rows(
            "SELECT name FROM system.tables "
            "WHERE database = {db:String} AND name IN {names:Array(String)}",
            {"db": self.database, "names": list(REQUIRED_TABLES)},
        )
        present = {name for (name,) in rows}
        return [name for name in REQUIRED_TABLES if name not in present]

    # -- helpers ---------------------------------------------------------------------------
    def _sql(
        self,
        text: str,
        query: Query | None = None,
        allow: Sequence[str] = (),
        window: Window | None = None,
        by_province: bool = False,
        grouped: bool = False,
    ) -> str:
        """Fill in `$db`, `$filters` (the switched-on clauses of `_FILTERS`) and the grain.

        The grain of the query's range names the rollup tables (`$activity`,
        `$service_request`, `$complaint`, `$net_pracharat`, `$digital_center`), their time
        column (`$time`) and quantile sketch (`${sketch}`, as in `quantiles${sketch}Merge`);
        without a query (freshness), the per-minute ones; their national twins where
        `reads_national`, unless the query groups `by_province` (or region), which they
        lack. `${activity_rows}` (and so on for each table) is the window's
        filtered rows as a subquery, for totals and groupings: with a window holding whole
        days, their daily rows UNION ALL the hourly rows of the rest (see `whole_days`; the
        `_params` of that window bind the day bounds).

        `grouped` answers every province at once (`all_provinces`): `$key` becomes
        `province_code,` (the leading column of the SELECT and of its GROUP BY) and `$group`
        `GROUP BY province_code` (for a SELECT with no GROUP BY of its own); without it both
        are empty. A grouped statement has no province filter and reads the tables a
        province-filtered one reads: never the national twins.
        """
        clauses = []
        if query is not None:
            for name in allow:
                if getattr(query, name) is not None and not (grouped and name == "province"):
                    clauses.append(_FILTERS[name])
        filters = "".join(f" AND {clause}" for clause in clauses)
        grain = MINUTE if query is None else grain_of(query.range)
        days = None if query is None or window is None else whole_days(query.range, window)
        national = query is not None and not (by_province or grouped) and reads_national(query)
        tables = {
            kind: f"{kind}_national_{grain.time}"
            if national and kind in NATIONAL_KINDS
            else getattr(grain, kind)
            for kind in _KINDS
        }
        rows = {
            f"{kind}_rows": self._window_rows(table, grain, filters, days)
            for kind, table in tables.items()
        }
        return Template(text).substitute(
            db=self.database,
            filters=filters,
            time=grain.time,
            sketch=grain.sketch,
            key="province_code," if grouped else "",
            group="GROUP BY province_code" if grouped else "",
            district=self._source("district_hour"),
            **{kind: self._source(table) for kind, table in tables.items()},
            **rows,
        )

    def _source(self, table: str) -> str:
        """What a query reads for `table`: a minute rollup itself; an hour tier's rows the tier
        job has completed (before `{tier_until}`) UNION ALL the minute tier's after them, in
        hourly buckets (the open hour, and any the job has not merged yet); a day tier's rows,
        whole days before `{tier_day_until}` only (`_DAYS`). Tier rows are read FINAL: a
        recomputed bucket replaces its rows, and FINAL keeps the newest."""
        db = self.database
        try:
            tier = tier_of(table)
        except KeyError:
            return f"{db}.{table}"
        columns = ", ".join(tier.columns)
        if tier.grain.name == DAY.time:
            return f"(SELECT {columns} FROM {db}.{table} FINAL)"
        settled = f"SELECT {columns} FROM {db}.{table} FINAL WHERE hour < {_TIER_UNTIL}"
        return f"({settled} UNION ALL {self._open_hours(tier)})"

    def _open_hours(self, tier: TierTable) -> str:
        """The hours from `{tier_until}` on, in `tier`'s columns, from the minute tier (or,
        for district counts, from the events tables)."""
        db = self.database
        if not tier.family.from_events:
            rest = ", ".join(tier.columns[1:])
            return (
                f"SELECT toStartOfHour(minute) AS hour, {rest} "
                f"FROM {db}.{minute_table(tier.family)} WHERE minute >= {_TIER_UNTIL}"
            )
        where = "occurred_at >= toDateTime64({tier_until:UInt32}, 3, 'UTC')"
        return " UNION ALL ".join(
            district_counts(db, event_type, where)
            for event_type in tier.family.sources  # constant names from the catalogue
        )

    def _window_rows(
        self, table: str, grain: Grain, filters: str, days: tuple[int, int] | None
    ) -> str:
        """One rollup's rows of the window (and filters), as a subquery; see `_sql`."""
        if days is None:
            window = _IN_WINDOW.replace("$time", grain.time)
            return f"(SELECT * FROM {self._source(table)} WHERE {window}{filters})"
        day_table = table.removesuffix(f"_{grain.time}") + f"_{DAY.time}"
        return (
            f"(SELECT * FROM {self._source(day_table)} WHERE {_DAYS}{filters} "
            f"UNION ALL SELECT * FROM {self._source(table)} WHERE {_PARTIAL_DAYS}{filters})"
        )

    def tier_until(self) -> int:
        """Unix seconds before which the tier job has merged every hour (0: never ran),
        read at most every TIER_PROGRESS_TTL_SECONDS."""
        with self._tier_lock:
            if time.monotonic() - self._tier_read_at >= TIER_PROGRESS_TTL_SECONDS:
                # not one of the panels' statements (`_rows`): a one-row read every few seconds
                rows = self.client.query(
                    "SELECT toUnixTimestamp(max(complete_until)) "
                    f"FROM {self.database}.{PROGRESS_TABLE} FINAL"
                ).result_rows
                self._tier_until = int(rows[0][0]) if rows else 0
                self._tier_read_at = time.monotonic()
            return self._tier_until

    def _params(self, query: Query, window: Window, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"start": window.start, "end": window.end, "step": window.step}
        if grain_of(query.range) is HOUR:
            params["tier_until"] = self.tier_until()
            params["tier_day_until"] = params["tier_until"] // DAY.seconds * DAY.seconds
        days = whole_days(query.range, window)
        if days is not None:
            params["day_start"], params["day_end"] = days
        if query.province is not None:
            params["province"] = query.province
        if query.agency is not None:
            params["agency"] = query.agency
        params.update(extra)
        return params

    def _windowed_statements(
        self, query: Query, window: Window, grouped: bool, *texts: str
    ) -> Statements:
        """Statements over the window's rows, filtered by province and agency (or grouped)."""
        return Statements(
            tuple(self._sql(text, query, _BOTH, window, grouped=grouped) for text in texts),
            self._params(query, window),
        )

    def _rows(self, sql: str, params: dict[str, Any]) -> Rows:
        """Send one statement: the single place the dashboard's queries go out, counted here."""
        with self._statements_lock:
            self.statements += 1
        DASHBOARD_QUERIES.inc()
        settings = self.settings
        try:
            result = self.client.query(sql, parameters=params, settings=settings or None)
        except DatabaseError as error:
            # A user made read-only after the client connected: its system.settings said
            # otherwise, so the setting was sent. Drop it for good and send the query again.
            if not settings or not _refused_as_readonly(error):
                raise
            log.warning(
                "ClickHouse refused the dashboard's settings %s (read-only user); "
                "sending its queries without them from now on",
                sorted(settings),
            )
            self.settings = {}
            return self._rows(sql, params)
        return [tuple(row) for row in result.result_rows]

    @staticmethod
    def _window_info(query: Query, window: Window) -> dict[str, Any]:
        return {
            "range": query.range.name,
            "start": window.start,
            "end": window.end,
            "step_seconds": window.step,
            "province": query.province,
            "agency": query.agency,
        }

    # -- panels: one answer, or one per province ------------------------------------------
    def _panel(self, name: str) -> tuple[Build, Shape]:
        """The statement builder and the answer shaper of a panel of GROUPED_PANELS."""
        panels: dict[str, tuple[Build, Shape]] = {
            "overview": (self._overview_sql, self._overview_shape),
            "timeseries": (self._timeseries_sql, self._timeseries_shape),
            "ministries": (self._ministries_sql, self._ministries_shape),
            "service_requests": (self._service_requests_sql, self._service_requests_shape),
            "complaints": (self._complaints_sql, self._complaints_shape),
            "net_pracharat": (self._net_pracharat_sql, self._net_pracharat_shape),
            "digital_centers": (self._digital_centers_sql, self._digital_centers_shape),
            "breakdown": (self._breakdown_sql, self._breakdown_shape),
            "province": (self._province_sql, self._province_shape),
        }
        return panels[name]

    def _answer(self, name: str, query: Query, window: Window) -> dict[str, Any]:
        """One answer of a panel: its statements as the query filters them, then shaped."""
        build, shape = self._panel(name)
        statements = build(query, window, False)
        return shape(query, window, [self._rows(sql, statements.params) for sql in statements.sql])

    def all_provinces(self, name: str, query: Query, window: Window) -> dict[str, dict[str, Any]]:
        """Panel `name` for every province at once: province code → the very answer
        `getattr(self, name)` gives for that province (same range, agency and `by`).

        Why: 77 wall screens ask the same panels, each for its province, every refresh. The
        panel's statements run once, grouped by `province_code` over all provinces (as many
        statements as one province's answer takes), and each province's answer is shaped
        from its rows by the code that shapes a single answer. A province without rows gets
        what its own query would give: its shaper takes no rows as an aggregate over none.
        """
        if name not in GROUPED_PANELS:
            raise ValueError(f"panel {name!r}: expected one of {', '.join(GROUPED_PANELS)}")
        if query.province is not None:
            raise ValueError("all_provinces: the query must not filter by province")
        build, shape = self._panel(name)
        statements = build(query, window, True)
        split: list[dict[str, Rows]] = []
        for sql in statements.sql:
            by_province: dict[str, Rows] = defaultdict(list)
            for province, *rest in self._rows(sql, statements.params):
                by_province[province].append(tuple(rest))
            split.append(by_province)
        return {
            code: shape(replace(query, province=code), window, [s.get(code, []) for s in split])
            for code in provinces()
        }

    # -- endpoints -------------------------------------------------------------------------
    def overview(self, query: Query, window: Window) -> dict[str, Any]:
        """Headline figures: events by type, citizens, baht, events in the last full minute.

        One pass without GROUP BY: per-type counts are sumIf columns, so the costly state merge
        (uniqMerge of citizens) runs once, not once per type and again for a total. Pipeline
        latency is a live-health figure and comes with /api/freshness (last five minutes).
        """
        return self._answer("overview", query, window)

    def _overview_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        """The last full minute (before the window's `now`) is a column of the same pass:
        over the per-minute rollup directly; the hourly and daily rollups have no minutes,
        so for a day or a week the pass reads that minute's per-minute rows as well, tagged
        `last` (UNION ALL: a province whose only rows are of that minute still gets a row)."""
        if grain_of(query.range) is MINUTE:
            sql = f"""
                SELECT $key {_PER_TYPE}, uniqMerge(citizens), sum(amount_thb),
                       sumIf(events, minute = toDateTime({{last_minute:UInt32}}, 'UTC'))
                FROM $activity_rows
                $group
                """
        else:
            sql = f"""
                SELECT $key {_per_type("NOT last")}, uniqMergeIf(citizens, NOT last),
                       sumIf(amount_thb, NOT last), sumIf(events, last)
                FROM (
                    SELECT $key false AS last, event_type, events, citizens, amount_thb
                    FROM $activity_rows
                    UNION ALL
                    SELECT $key true AS last, event_type, events, citizens, amount_thb
                    FROM $db.activity_minute
                    WHERE minute = toDateTime({{last_minute:UInt32}}, 'UTC')$filters
                )
                $group
                """
        now = time.time() if window.now is None else window.now
        last_minute = (int(now) // 60 - 1) * 60  # the last complete minute
        return Statements(
            (self._sql(sql, query, _BOTH, window, grouped=grouped),),
            self._params(query, window, last_minute=last_minute),
        )

    def _overview_shape(self, query: Query, window: Window, rows: Sequence[Rows]) -> dict[str, Any]:
        # No row (a province without events, grouped): what an aggregate over no rows gives.
        row = rows[0][0] if rows[0] else (0,) * (len(EVENT_TYPES) + 3)
        by_type = {t: int(n) for t, n in zip(EVENT_TYPES, row, strict=False)}
        citizens, amount, last = row[len(EVENT_TYPES) :]
        return {
            **self._window_info(query, window),
            "events": sum(by_type.values()),
            "events_by_type": by_type,
            "citizens": int(citizens),
            "amount_thb": _number(amount) or 0.0,
            "events_last_minute": int(last),
        }

    def timeseries(self, query: Query, window: Window) -> dict[str, Any]:
        """Events per bucket and type, zero-filled, as events per minute of event time."""
        return self._answer("timeseries", query, window)

    def _timeseries_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        sql = f"""
            SELECT $key {_BUCKET} AS t, {_PER_TYPE}
            FROM $activity
            WHERE {_IN_WINDOW}$filters
            GROUP BY $key t
            """
        return Statements(
            (self._sql(sql, query, _BOTH, grouped=grouped),), self._params(query, window)
        )

    def _timeseries_shape(
        self, query: Query, window: Window, rows: Sequence[Rows]
    ) -> dict[str, Any]:
        buckets = window.buckets
        index = {t: i for i, t in enumerate(buckets)}
        series = {t: [0] * len(buckets) for t in EVENT_TYPES}
        for t, *per_type in rows[0]:
            if t in index:
                for event_type, events in zip(EVENT_TYPES, per_type, strict=True):
                    series[event_type][index[t]] = int(events)
        # Per-minute rates: a bucket is divided by its minutes — those that have passed, for
        # the bucket in progress (by its full width it would read as a sudden drop).
        minutes = [window.seconds_in(t) / 60 for t in buckets]
        return {
            **self._window_info(query, window),
            "t": buckets,
            "last_bucket_seconds": round(minutes[-1] * 60, 1) if minutes else 0.0,
            "events_per_minute": {
                t: [round(v / m, 2) for v, m in zip(values, minutes, strict=True)]
                for t, values in series.items()
            },
        }

    def ministries(self, query: Query, window: Window) -> dict[str, Any]:
        """Events by ministry (split by type) and the most active departments."""
        return self._answer("ministries", query, window)

    def _ministries_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        sql = f"""
            SELECT $key agency_code, ministry_code, {_PER_TYPE}
            FROM $activity_rows
            GROUP BY $key agency_code, ministry_code
            """
        return self._windowed_statements(query, window, grouped, sql)

    def _ministries_shape(
        self, query: Query, window: Window, rows: Sequence[Rows]
    ) -> dict[str, Any]:
        by_ministry: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(EVENT_TYPES, 0))
        by_agency: dict[str, int] = defaultdict(int)
        for agency, ministry, *per_type in rows[0]:
            for event_type, events in zip(EVENT_TYPES, per_type, strict=True):
                by_ministry[ministry][event_type] += int(events)
                by_agency[agency] += int(events)
        table = agencies()
        ministries: list[dict[str, Any]] = [
            {
                "code": code,
                **_names(code, table),
                "events": sum(types.values()),
                "events_by_type": types,
            }
            for code, types in by_ministry.items()
        ]
        ministries.sort(key=lambda m: (-m["events"], m["code"]))
        top = sorted(by_agency.items(), key=lambda item: (-item[1], item[0]))[:TOP_AGENCIES]
        departments = [
            {
                "code": code,
                **_names(code, table),
                "ministry_code": table[code].ministry_code if code in table else None,
                "events": events,
            }
            for code, events in top
        ]
        return {
            **self._window_info(query, window),
            "ministries": ministries,
            "departments": departments,
        }

    def provinces(self, query: Query, window: Window) -> dict[str, Any]:
        """Events per province and type, every province listed (zero when quiet)."""
        sql = self._sql(
            f"""
            SELECT province_code, {_PER_TYPE}
            FROM $activity_rows
            GROUP BY province_code
            """,
            query,
            ("agency",),
            window,
            by_province=True,
        )
        counts: dict[str, dict[str, int]] = {
            code: dict.fromkeys(EVENT_TYPES, 0) for code in provinces()
        }
        for province, *per_type in self._rows(sql, self._params(query, window)):
            if province in counts:
                counts[province] = {t: int(n) for t, n in zip(EVENT_TYPES, per_type, strict=True)}
        rows: list[dict[str, Any]] = [
            {"code": code, "events": sum(types.values()), "events_by_type": types}
            for code, types in counts.items()
        ]
        return {
            **self._window_info(query, window),
            "max_events": max((r["events"] for r in rows), default=0),
            "provinces": rows,
        }

    def province(self, query: Query, window: Window) -> dict[str, Any]:
        """One province: its agencies (rollup) and its districts (raw tables, by key prefix)."""
        assert query.province is not None
        return self._answer("province", query, window)

    def _province_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        """Agencies from the rollup; the district drill-down per hour from district_hour, per
        minute from the raw tables (see the module docstring for why)."""
        agency_sql = f"""
            SELECT $key agency_code, {_PER_TYPE}
            FROM $activity_rows
            GROUP BY $key agency_code
            """
        if grain_of(query.range) is HOUR:
            district_sql = self._sql(
                f"""
                SELECT $key event_type, district_code, sum(events)
                FROM $district
                WHERE {_IN_WINDOW}$filters
                GROUP BY $key event_type, district_code
                """,
                query,
                _BOTH,
                grouped=grouped,
            )
        else:
            district_sql = "\nUNION ALL\n".join(
                self._sql(
                    f"""
                    SELECT $key '{event_type}' AS event_type, district_code, count() AS n
                    FROM $db.events_{event_type}
                    WHERE occurred_at >= toDateTime64({{start:UInt32}}, 3, 'UTC')
                      AND occurred_at < toDateTime64({{end:UInt32}}, 3, 'UTC')$filters
                    GROUP BY $key district_code
                    """,
                    query,
                    _BOTH,
                    grouped=grouped,
                )
                for event_type in EVENT_TYPES  # constant names from the catalogue
            )
        return Statements(
            (self._sql(agency_sql, query, _BOTH, window, grouped=grouped), district_sql),
            self._params(query, window),
        )

    def _province_shape(self, query: Query, window: Window, rows: Sequence[Rows]) -> dict[str, Any]:
        assert query.province is not None
        code = query.province
        agency_rows_in, district_rows_in = rows
        by_agency: dict[str, dict[str, int]] = {}
        for agency, *per_type in agency_rows_in:
            by_agency[agency] = {t: int(n) for t, n in zip(EVENT_TYPES, per_type, strict=True)}
        table = agencies()
        agency_rows: list[dict[str, Any]] = [
            {"code": a, **_names(a, table), "events": sum(t.values()), "events_by_type": t}
            for a, t in by_agency.items()
        ]
        agency_rows.sort(key=lambda r: (-r["events"], r["code"]))
        own = {d.code: d for d in districts().values() if d.province_code == code}
        counts: dict[str | None, dict[str, int]] = {
            d: dict.fromkeys(EVENT_TYPES, 0) for d in sorted(own)
        }
        for event_type, district, n in district_rows_in:
            key = district if district in own else None
            counts.setdefault(key, dict.fromkeys(EVENT_TYPES, 0))[event_type] += int(n)
        district_rows: list[dict[str, Any]] = [
            {
                "code": d,
                **(_names(d, own) if d else {"name_th": "ไม่ระบุอำเภอ", "name_en": "No district"}),
                "events": sum(t.values()),
                "events_by_type": t,
            }
            for d, t in counts.items()
        ]
        district_rows.sort(key=lambda r: (-r["events"], r["code"] or "~"))
        region = region_of(code)
        return {
            **self._window_info(query, window),
            "code": code,
            **_names(code, provinces()),
            "region": {"code": region.code, "name_th": region.name_th, "name_en": region.name_en},
            "events": sum(r["events"] for r in agency_rows),
            "agencies": agency_rows,
            "districts": district_rows,
        }

    def service_requests(self, query: Query, window: Window) -> dict[str, Any]:
        """Outcomes by status, top services with completion share, processing time."""
        return self._answer("service_requests", query, window)

    def _service_requests_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        outcomes_sql = """
            SELECT $key service_code, agency_code, status, sum(requests),
                   sum(satisfaction_sum), sum(satisfaction_count)
            FROM $service_request_rows
            GROUP BY $key service_code, agency_code, status
            """
        timing_sql = """
            SELECT $key quantiles${sketch}Merge(0.5, 0.9)(processing_seconds)
            FROM $activity_rows
            WHERE event_type = 'service_request'
            $group
            """
        return self._windowed_statements(query, window, grouped, outcomes_sql, timing_sql)

    def _service_requests_shape(
        self, query: Query, window: Window, rows: Sequence[Rows]
    ) -> dict[str, Any]:
        outcomes, timing = rows
        by_status: dict[str, int] = defaultdict(int)
        services: dict[str, dict[str, Any]] = {}
        score_sum = score_count = 0
        for service, agency, status, requests, s_sum, s_count in outcomes:
            by_status[status] += int(requests)
            entry = services.setdefault(
                service, {"code": service, "agency_code": agency, "requests": 0, "by_status": {}}
            )
            entry["requests"] += int(requests)
            entry["by_status"][status] = entry["by_status"].get(status, 0) + int(requests)
            score_sum += int(s_sum)
            score_count += int(s_count)
        # no timing row (grouped, no requests) reads as the empty quantiles of no rows
        p50, p90 = timing[0][0] if timing and timing[0][0] else (None, None)
        names = self.service_names()
        top = sorted(services.values(), key=lambda s: (-s["requests"], s["code"]))[:TOP_SERVICES]
        for entry in top:
            entry["name"] = names.get(entry["code"], entry["code"])
        total = sum(by_status.values())
        return {
            **self._window_info(query, window),
            "requests": total,
            "by_status": dict(sorted(by_status.items(), key=lambda kv: -kv[1])),
            "processing_seconds_p50": _number(p50),
            "processing_seconds_p90": _number(p90),
            "satisfaction_avg": round(score_sum / score_count, 2) if score_count else None,
            "top_services": top,
        }

    def service_names(self) -> dict[str, str]:
        """service_code → service_name, refreshed every few minutes from the raw table.

        Bounded to the last day of events (partition min/max pruning); a code not seen then
        is shown as its code. Read outside any request's critical path most of the time.
        """
        with self._service_names_lock:
            if time.monotonic() - self._service_names_at < SERVICE_NAMES_TTL_SECONDS:
                return self._service_names
            rows = self._rows(
                self._sql(
                    """
                    SELECT service_code, any(service_name)
                    FROM $db.events_service_request
                    WHERE occurred_at >= now() - INTERVAL 1 DAY
                    GROUP BY service_code
                    """
                ),
                {},
            )
            self._service_names = {code: name for code, name in rows}
            self._service_names_at = time.monotonic()
            return self._service_names

    def complaints(self, query: Query, window: Window) -> dict[str, Any]:
        """Complaints by category, severity and status; 1111 share; median resolution."""
        return self._answer("complaints", query, window)

    def _complaints_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        counts_sql = """
            SELECT $key category, severity, status, via_1111, sum(complaints)
            FROM $complaint_rows
            GROUP BY $key category, severity, status, via_1111
            """
        resolution_sql = """
            SELECT $key quantileTDigestMerge(0.5)(resolution_days)
            FROM $complaint_rows
            $group
            """
        return self._windowed_statements(query, window, grouped, counts_sql, resolution_sql)

    def _complaints_shape(
        self, query: Query, window: Window, rows: Sequence[Rows]
    ) -> dict[str, Any]:
        counts, resolution = rows
        by_category: dict[str, int] = defaultdict(int)
        by_severity: dict[str, int] = defaultdict(int)
        by_status: dict[str, int] = defaultdict(int)
        via_1111 = 0
        for category, severity, status, hotline, n in counts:
            by_category[category] += int(n)
            by_severity[severity] += int(n)
            by_status[status] += int(n)
            via_1111 += int(n) if hotline else 0
        total = sum(by_category.values())

        def ranked(counts: dict[str, int]) -> dict[str, int]:
            return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

        return {
            **self._window_info(query, window),
            "complaints": total,
            "by_category": ranked(by_category),
            "by_severity": ranked(by_severity),
            "by_status": ranked(by_status),
            "via_1111": via_1111,
            # no row (grouped, no complaints) reads as the NaN median of no rows
            "resolution_days_p50": _number(resolution[0][0]) if resolution else None,
        }

    def net_pracharat(self, query: Query, window: Window) -> dict[str, Any]:
        """Village Wi-Fi: totals for the range and sessions per bucket.

        Two queries rather than GROUP BY ROLLUP: the series needs only sums, and the state
        merges (distinct access points, latency t-digest) then run once, for the total.
        """
        return self._answer("net_pracharat", query, window)

    def _net_pracharat_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        totals_sql = self._sql(
            """
            SELECT $key sum(reports), uniqMerge(access_points), sum(sessions), sum(devices_sum),
                   sum(bytes_down), sum(bytes_up), quantile${sketch}Merge(0.5)(latency_ms)
            FROM $net_pracharat_rows
            $group
            """,
            query,
            _BOTH,
            window,
            grouped=grouped,
        )
        series_sql = self._sql(
            f"""
            SELECT $key {_BUCKET} AS t, sum(sessions)
            FROM $net_pracharat
            WHERE {_IN_WINDOW}$filters
            GROUP BY $key t
            """,
            query,
            _BOTH,
            grouped=grouped,
        )
        return Statements((totals_sql, series_sql), self._params(query, window))

    def _net_pracharat_shape(
        self, query: Query, window: Window, rows: Sequence[Rows]
    ) -> dict[str, Any]:
        totals, series = rows
        # no row (grouped, no reports): the sums of no rows and their NaN median
        total = totals[0] if totals else (0, 0, 0, 0, 0, 0, None)
        buckets = window.buckets
        index = {t: i for i, t in enumerate(buckets)}
        sessions = [0] * len(buckets)
        for t, n in series:
            if t in index:
                sessions[index[t]] = int(n)
        return {
            **self._window_info(query, window),
            "reports": int(total[0]),
            "access_points": int(total[1]),
            "sessions": int(total[2]),
            "devices_upper_bound": int(total[3]),
            "bytes_down": int(total[4]),
            "bytes_up": int(total[5]),
            "latency_ms_p50": _number(total[6]),
            "t": buckets,
            "sessions_series": sessions,
        }

    def digital_centers(self, query: Query, window: Window) -> dict[str, Any]:
        """Community digital centres: activities, participants, online-order sales by product."""
        return self._answer("digital_centers", query, window)

    def _digital_centers_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        sql = """
            SELECT $key activity, product_category, sum(activities), sum(participants),
                   sum(order_amount_thb)
            FROM $digital_center_rows
            GROUP BY $key activity, product_category
            """
        return self._windowed_statements(query, window, grouped, sql)

    def _digital_centers_shape(
        self, query: Query, window: Window, rows: Sequence[Rows]
    ) -> dict[str, Any]:
        by_activity: dict[str, dict[str, int]] = {}
        by_product: dict[str, dict[str, Any]] = {}
        sales = Decimal(0)
        for activity, product, n, participants, amount in rows[0]:
            entry = by_activity.setdefault(activity, {"activities": 0, "participants": 0})
            entry["activities"] += int(n)
            entry["participants"] += int(participants)
            if activity == "ONLINE_ORDER":
                sales += amount
                item = by_product.setdefault(product or "", {"orders": 0, "amount_thb": Decimal(0)})
                item["orders"] += int(n)
                item["amount_thb"] += amount
        products = sorted(
            (
                {"code": code, "orders": v["orders"], "amount_thb": float(v["amount_thb"])}
                for code, v in by_product.items()
            ),
            key=lambda p: -p["amount_thb"],
        )
        return {
            **self._window_info(query, window),
            "activities": sum(a["activities"] for a in by_activity.values()),
            "participants": sum(a["participants"] for a in by_activity.values()),
            "orders": by_activity.get("ONLINE_ORDER", {}).get("activities", 0),
            "sales_thb": float(sales),
            "by_activity": dict(sorted(by_activity.items(), key=lambda kv: -kv[1]["activities"])),
            "by_product": products,
        }

    def breakdown(self, query: Query, window: Window) -> dict[str, Any]:
        """Events grouped by one whitelisted dimension of the activity rollup."""
        return self._answer("breakdown", query, window)

    def _breakdown_sql(self, query: Query, window: Window, grouped: bool) -> Statements:
        assert query.by is not None
        column = BREAKDOWN_DIMENSIONS[query.by]  # KeyError is impossible after validation
        sql = self._sql(
            f"""
            SELECT $key {column} AS k, sum(events) AS n
            FROM $activity_rows
            GROUP BY $key k
            ORDER BY n DESC, k
            """,
            query,
            _BOTH,
            window,
            by_province=column in ("province_code", "region_code"),
            grouped=grouped,
        )
        return Statements((sql,), self._params(query, window))

    def _breakdown_shape(
        self, query: Query, window: Window, rows: Sequence[Rows]
    ) -> dict[str, Any]:
        # Grouped, each province's rows keep the statement's order (n DESC, k).
        return {
            **self._window_info(query, window),
            "by": query.by,
            "rows": [{"key": key, "events": int(n)} for key, n in rows[0]],
        }

    def freshness(self) -> dict[str, Any]:
        """How old the stored data is; dead letters of the last five minutes.

        Data age = now - the newest `produced_at` stored (when its agency published it), from
        `produced_minute` (0010): every delay ahead of ClickHouse is in it, a raw backlog
        before the stream workers included. `seconds_since_last_insert` (now - the newest
        `inserted_at`) only says the sink still writes: it stays near zero while a backlog of
        older events is stored. Both use ClickHouse's clock, the one that stamped
        inserted_at; produced_at is the producer's, so the age also holds the skew between
        the two. `data_age_by_type` is the same per event type (the types stored in the
        window the figure came from): a backlog of one type hides behind the others' fresh
        data in the figure over all. The newest row is looked for among the last two hours of
        produced minutes first (a row per type and minute once merged, whatever the history),
        and only when those are empty among the last day; minutes after the current one (a
        producer whose clock runs ahead) are left out, so a bad clock cannot make everything
        look fresh.
        """
        newest_sql = self._sql(
            """
            SELECT toUnixTimestamp64Milli(now64(3)),
                   toUnixTimestamp64Milli(max(produced)),
                   toUnixTimestamp64Milli(max(inserted)),
                   count() > 0,
                   groupArray((event_type, toUnixTimestamp64Milli(produced)))
            FROM (
                SELECT event_type,
                       max(last_produced_at) AS produced,
                       max(last_inserted_at) AS inserted
                FROM $db.produced_minute
                WHERE minute >= now() - toIntervalSecond({lookback:UInt32})
                  AND minute <= now()
                GROUP BY event_type
            )
            """
        )
        for lookback in (FRESHNESS_FIRST_LOOKBACK_SECONDS, FRESHNESS_LOOKBACK_SECONDS):
            now_ms, produced_ms, inserted_ms, any_rows, per_type = self._rows(
                newest_sql, {"lookback": lookback}
            )[0]
            if any_rows:
                break
        window = DEAD_LETTER_WINDOW_MINUTES - 1
        # Dead letters are counted by when the processor saw them, so the rate's events are too
        # (by when they were stored, which is seconds later): counted by when they happened, a
        # backlog of older events would leave the window empty and the rate at 100 %. Rows whose
        # newest insert is in the window; the scan is bounded to minutes of the last 2 hours.
        recent_sql = self._sql(
            """
            WITH toStartOfMinute(now()) - toIntervalMinute({dl:UInt32}) AS since
            SELECT
                sumIf(events, minute >= since),
                sumIf(events, last_inserted_at >= since),
                quantileTDigestMergeIf(0.5)(pipeline_latency_ms, minute >= since)
            FROM $db.activity_minute
            WHERE minute >= now() - toIntervalHour(2)
            """
        )
        recent_events, stored_events, latency = self._rows(recent_sql, {"dl": window})[0]
        dead_sql = self._sql(
            """
            SELECT event_type, reason, sum(dead_letters)
            FROM $db.dead_letters_minute
            WHERE minute >= toStartOfMinute(now()) - toIntervalMinute({dl:UInt32})
            GROUP BY event_type, reason
            ORDER BY 3 DESC
            """
        )
        dead_rows = self._rows(dead_sql, {"dl": window})
        dead = sum(int(n) for _, _, n in dead_rows)
        recent = int(recent_events)
        seen = int(stored_events) + dead
        return {
            "now_ms": int(now_ms),
            "newest_produced_ms": int(produced_ms) if any_rows else None,
            "data_age_seconds": age_seconds(now_ms, produced_ms) if any_rows else None,
            "newest_inserted_ms": int(inserted_ms) if any_rows else None,
            "seconds_since_last_insert": age_seconds(now_ms, inserted_ms) if any_rows else None,
            "data_age_by_type": {t: age_seconds(now_ms, ms) for t, ms in sorted(per_type)},
            "pipeline_latency_ms_p50": _number(latency),
            "window_minutes": DEAD_LETTER_WINDOW_MINUTES,
            "events": recent,
            "events_stored": int(stored_events),
            "dead_letters": dead,
            "dead_letter_rate": round(dead / seen, 4) if seen else 0.0,
            "dead_letters_by_reason": [
                {"event_type": t, "reason": r, "dead_letters": int(n)} for t, r, n in dead_rows
            ],
        }
