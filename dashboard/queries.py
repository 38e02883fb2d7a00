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
  7 d ranges the hourly ones (`activity_hour`, `*_hour`, sinks/ddl/0007_activity_hour.sql),
  in whole-hour buckets. A rollup holds at most one row per minute (hour) and dimension
  combination, so a refresh costs the same whatever the event rate; the hourly tables hold
  up to 60× fewer rows than a day or a week of minutes, whose uniq and t-digest state merges
  took up to a second at 10M events (see dashboard/README.md). Totals over a window's whole
  UTC days read the daily twins (`*_day`) and only the partial days' hourly rows
  (`whole_days`); without a province filter the day and week read national twins without
  the province dimension (`reads_national`); both from sinks/ddl/0008_long_range_rollups.sql.
- One exception, the district drill-down of a province in the 15 min and 1 h views: the
  rollups deliberately have no district dimension (it would multiply their rows ~12×, see
  sinks/ddl/0003_activity_minute.sql), so district counts read `events_*`, constrained by the
  leading primary-key column (`province_code`, then `agency_code` when an agency is picked)
  and the time range, which reads one province's range of each table. It runs only in the
  provincial view. The day and week read `district_hour` instead (events only, keyed by
  province first, sinks/ddl/0008_long_range_rollups.sql).
- Timestamps leave ClickHouse as Unix seconds (`toUnixTimestamp`): chdb may drop the zone of
  a `DateTime('UTC')` column in its output, an integer cannot be misread.

Each public method is blocking (clickhouse-connect is synchronous); `dashboard.app` runs them
in a thread executor.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from string import Template
from typing import Any

from clickhouse_connect.driver.client import Client

from govpulse.dashboard.params import BREAKDOWN_DIMENSIONS, Query, TimeRange, Window
from govpulse.monitoring.metrics import data_age_seconds
from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.schemas.reference import agencies, districts, provinces, region_of

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Filter clauses a request can switch on, by parameter name. Text fixed here; values bound.
_FILTERS = {
    "province": "province_code = {province:String}",
    "agency": "agency_code = {agency:String}",
}
_IN_WINDOW = (
    "$time >= toDateTime({start:UInt32}, 'UTC') AND $time < toDateTime({end:UInt32}, 'UTC')"
)
_BUCKET = "intDiv(toUnixTimestamp($time), {step:UInt32}) * {step:UInt32}"
# The whole days of a window in the daily rollups, and the hours around them in the hourly ones.
_DAYS = "day >= toDateTime({day_start:UInt32}, 'UTC') AND day < toDateTime({day_end:UInt32}, 'UTC')"
_PARTIAL_DAYS = (
    "(hour >= toDateTime({start:UInt32}, 'UTC') AND hour < toDateTime({day_start:UInt32}, 'UTC') "
    "OR hour >= toDateTime({day_end:UInt32}, 'UTC') AND hour < toDateTime({end:UInt32}, 'UTC'))"
)
_KINDS = ("activity", "service_request", "complaint", "net_pracharat", "digital_center")
# Events per type as columns of one row: the per-type sums of a GROUP BY without event_type
# in its key, which is 2-3 times cheaper than grouping by event_type too.
_PER_TYPE = ", ".join(f"sumIf(events, event_type = '{t}')" for t in EVENT_TYPES)
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


@dataclass(frozen=True)
class Grain:
    """The rollup tables of one time grain; `time` is both the grain's name and their column.

    `sketch` names the quantile states of processing_seconds and latency_ms: t-digest per
    minute, bfloat16 per hour (merged 2-3× faster over a week; see 0007_activity_hour.sql).
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
    "BFloat16",
)
# The whole UTC days of an hourly window (sinks/ddl/0008_long_range_rollups.sql): same
# columns and state types as HOUR, so their rows and the hourly rows of the partial days are
# merged in one UNION ALL. Never a chart bucket: only totals and groupings read it.
DAY = Grain(
    "day",
    86400,
    "activity_day",
    "service_request_day",
    "complaint_day",
    "net_pracharat_day",
    "digital_center_day",
    "BFloat16",
)
# Rollups with national twins per hour and per day (`<kind>_national_<grain>`: no province or
# region dimension, sinks/ddl/0008_long_range_rollups.sql), read by hourly ranges
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


class DashboardQueries:
    """Every read the dashboard makes, against one database."""

    def __init__(self, client: Client, database: str | None = None) -> None:
        database = database or client.database or "default"
        if not _IDENTIFIER.fullmatch(database):
            raise ValueError(
                f"dashboard database {database!r}: expected a plain identifier "
                "(letters, digits, underscore; not starting with a digit)"
            )
        self.client = client
        self.database = database
        self._service_names: dict[str, str] = {}
        self._service_names_at = -SERVICE_NAMES_TTL_SECONDS
        self._service_names_lock = threading.Lock()

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
        """
        clauses = []
        if query is not None:
            for name in allow:
                if getattr(query, name) is not None:
                    clauses.append(_FILTERS[name])
        filters = "".join(f" AND {clause}" for clause in clauses)
        grain = MINUTE if query is None else grain_of(query.range)
        days = None if query is None or window is None else whole_days(query.range, window)
        national = query is not None and not by_province and reads_national(query)
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
            **tables,
            **rows,
        )

    def _window_rows(
        self, table: str, grain: Grain, filters: str, days: tuple[int, int] | None
    ) -> str:
        """One rollup's rows of the window (and filters), as a subquery; see `_sql`."""
        db = self.database
        if days is None:
            window = _IN_WINDOW.replace("$time", grain.time)
            return f"(SELECT * FROM {db}.{table} WHERE {window}{filters})"
        day_table = table.removesuffix(f"_{grain.time}") + f"_{DAY.time}"
        return (
            f"(SELECT * FROM {db}.{day_table} WHERE {_DAYS}{filters} "
            f"UNION ALL SELECT * FROM {db}.{table} WHERE {_PARTIAL_DAYS}{filters})"
        )

    @staticmethod
    def _params(query: Query, window: Window, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"start": window.start, "end": window.end, "step": window.step}
        days = whole_days(query.range, window)
        if days is not None:
            params["day_start"], params["day_end"] = days
        if query.province is not None:
            params["province"] = query.province
        if query.agency is not None:
            params["agency"] = query.agency
        params.update(extra)
        return params

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.client.query(sql, parameters=params).result_rows]

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

    # -- endpoints -------------------------------------------------------------------------
    def overview(self, query: Query, window: Window) -> dict[str, Any]:
        """Headline figures: events by type, citizens, baht, events in the last full minute.

        One pass without GROUP BY: per-type counts are sumIf columns, so the costly state merge
        (uniqMerge of citizens) runs once, not once per type and again for a total. Pipeline
        latency is a live-health figure and comes with /api/freshness (last five minutes).
        The last full minute is a column of the same pass over the per-minute rollup; the
        hourly and daily rollups have no minutes, so for a day or a week it is a scalar
        subquery of the same query, a one-minute read of the per-minute rollup.
        """
        per_minute = grain_of(query.range) is MINUTE
        last_column = (
            "sumIf(events, minute = toDateTime({last_minute:UInt32}, 'UTC'))"
            if per_minute
            else "(SELECT sum(events) FROM $db.activity_minute "
            "WHERE minute = toDateTime({last_minute:UInt32}, 'UTC')$filters)"
        )
        sql = self._sql(
            f"""
            SELECT {_PER_TYPE},
                   uniqMerge(citizens),
                   sum(amount_thb),
                   {last_column}
            FROM $activity_rows
            """,
            query,
            ("province", "agency"),
            window,
        )
        last_minute = (int(time.time()) // 60 - 1) * 60  # the last complete minute
        params = self._params(query, window, last_minute=last_minute)
        row = self._rows(sql, params)[0]
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
        sql = self._sql(
            f"""
            SELECT {_BUCKET} AS t, {_PER_TYPE}
            FROM $db.$activity
            WHERE {_IN_WINDOW}$filters
            GROUP BY t
            """,
            query,
            ("province", "agency"),
        )
        buckets = window.buckets
        index = {t: i for i, t in enumerate(buckets)}
        series = {t: [0] * len(buckets) for t in EVENT_TYPES}
        for t, *per_type in self._rows(sql, self._params(query, window)):
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
        sql = self._sql(
            f"""
            SELECT agency_code, ministry_code, {_PER_TYPE}
            FROM $activity_rows
            GROUP BY agency_code, ministry_code
            """,
            query,
            ("province", "agency"),
            window,
        )
        by_ministry: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(EVENT_TYPES, 0))
        by_agency: dict[str, int] = defaultdict(int)
        for agency, ministry, *per_type in self._rows(sql, self._params(query, window)):
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
        code = query.province
        agency_sql = self._sql(
            f"""
            SELECT agency_code, {_PER_TYPE}
            FROM $activity_rows
            GROUP BY agency_code
            """,
            query,
            ("province", "agency"),
            window,
        )
        params = self._params(query, window)
        by_agency: dict[str, dict[str, int]] = {}
        for agency, *per_type in self._rows(agency_sql, params):
            by_agency[agency] = {t: int(n) for t, n in zip(EVENT_TYPES, per_type, strict=True)}
        table = agencies()
        agency_rows: list[dict[str, Any]] = [
            {"code": a, **_names(a, table), "events": sum(t.values()), "events_by_type": t}
            for a, t in by_agency.items()
        ]
        agency_rows.sort(key=lambda r: (-r["events"], r["code"]))
        # District drill-down: per hour from district_hour, per minute from the raw tables (see
        # the module docstring for why).
        if grain_of(query.range) is HOUR:
            district_sql = self._sql(
                f"""
                SELECT event_type, district_code, sum(events)
                FROM $db.district_hour
                WHERE province_code = {{province:String}} AND {_IN_WINDOW}$filters
                GROUP BY event_type, district_code
                """,
                query,
                ("agency",),
            )
        else:
            district_sql = "\nUNION ALL\n".join(
                self._sql(
                    f"""
                    SELECT '{event_type}' AS event_type, district_code, count() AS n
                    FROM $db.events_{event_type}
                    WHERE province_code = {{province:String}}
                      AND occurred_at >= toDateTime64({{start:UInt32}}, 3, 'UTC')
                      AND occurred_at < toDateTime64({{end:UInt32}}, 3, 'UTC')$filters
                    GROUP BY district_code
                    """,
                    query,
                    ("agency",),
                )
                for event_type in EVENT_TYPES  # constant names from the catalogue
            )
        own = {d.code: d for d in districts().values() if d.province_code == code}
        counts: dict[str | None, dict[str, int]] = {
            d: dict.fromkeys(EVENT_TYPES, 0) for d in sorted(own)
        }
        for event_type, district, n in self._rows(district_sql, params):
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
        sql = self._sql(
            """
            SELECT service_code, agency_code, status, sum(requests),
                   sum(satisfaction_sum), sum(satisfaction_count)
            FROM $service_request_rows
            GROUP BY service_code, agency_code, status
            """,
            query,
            ("province", "agency"),
            window,
        )
        params = self._params(query, window)
        by_status: dict[str, int] = defaultdict(int)
        services: dict[str, dict[str, Any]] = {}
        score_sum = score_count = 0
        for service, agency, status, requests, s_sum, s_count in self._rows(sql, params):
            by_status[status] += int(requests)
            entry = services.setdefault(
                service, {"code": service, "agency_code": agency, "requests": 0, "by_status": {}}
            )
            entry["requests"] += int(requests)
            entry["by_status"][status] = entry["by_status"].get(status, 0) + int(requests)
            score_sum += int(s_sum)
            score_count += int(s_count)
        timing_sql = self._sql(
            """
            SELECT quantiles${sketch}Merge(0.5, 0.9)(processing_seconds)
            FROM $activity_rows
            WHERE event_type = 'service_request'
            """,
            query,
            ("province", "agency"),
            window,
        )
        timing = self._rows(timing_sql, params)
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
        sql = self._sql(
            """
            SELECT category, severity, status, via_1111, sum(complaints)
            FROM $complaint_rows
            GROUP BY category, severity, status, via_1111
            """,
            query,
            ("province", "agency"),
            window,
        )
        params = self._params(query, window)
        by_category: dict[str, int] = defaultdict(int)
        by_severity: dict[str, int] = defaultdict(int)
        by_status: dict[str, int] = defaultdict(int)
        via_1111 = 0
        for category, severity, status, hotline, n in self._rows(sql, params):
            by_category[category] += int(n)
            by_severity[severity] += int(n)
            by_status[status] += int(n)
            via_1111 += int(n) if hotline else 0
        resolution_sql = self._sql(
            """
            SELECT quantileTDigestMerge(0.5)(resolution_days)
            FROM $complaint_rows
            """,
            query,
            ("province", "agency"),
            window,
        )
        resolution = self._rows(resolution_sql, params)
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
            "resolution_days_p50": _number(resolution[0][0]) if resolution else None,
        }

    def net_pracharat(self, query: Query, window: Window) -> dict[str, Any]:
        """Village Wi-Fi: totals for the range and sessions per bucket.

        Two queries rather than GROUP BY ROLLUP: the series needs only sums, and the state
        merges (distinct access points, latency t-digest) then run once, for the total.
        """
        totals_sql = self._sql(
            """
            SELECT sum(reports), uniqMerge(access_points), sum(sessions), sum(devices_sum),
                   sum(bytes_down), sum(bytes_up), quantile${sketch}Merge(0.5)(latency_ms)
            FROM $net_pracharat_rows
            """,
            query,
            ("province", "agency"),
            window,
        )
        series_sql = self._sql(
            f"""
            SELECT {_BUCKET} AS t, sum(sessions)
            FROM $db.$net_pracharat
            WHERE {_IN_WINDOW}$filters
            GROUP BY t
            """,
            query,
            ("province", "agency"),
        )
        params = self._params(query, window)
        total = self._rows(totals_sql, params)[0]
        buckets = window.buckets
        index = {t: i for i, t in enumerate(buckets)}
        sessions = [0] * len(buckets)
        for t, n in self._rows(series_sql, params):
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
        sql = self._sql(
            """
            SELECT activity, product_category, sum(activities), sum(participants),
                   sum(order_amount_thb)
            FROM $digital_center_rows
            GROUP BY activity, product_category
            """,
            query,
            ("province", "agency"),
            window,
        )
        by_activity: dict[str, dict[str, int]] = {}
        by_product: dict[str, dict[str, Any]] = {}
        sales = Decimal(0)
        for activity, product, n, participants, amount in self._rows(
            sql, self._params(query, window)
        ):
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
        assert query.by is not None
        column = BREAKDOWN_DIMENSIONS[query.by]  # KeyError is impossible after validation
        sql = self._sql(
            f"""
            SELECT {column} AS k, sum(events) AS n
            FROM $activity_rows
            GROUP BY k
            ORDER BY n DESC, k
            """,
            query,
            ("province", "agency"),
            window,
            by_province=column in ("province_code", "region_code"),
        )
        rows = self._rows(sql, self._params(query, window))
        return {
            **self._window_info(query, window),
            "by": query.by,
            "rows": [{"key": key, "events": int(n)} for key, n in rows],
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
