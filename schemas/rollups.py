"""The rollup spec: what the dashboard's aggregate tables hold, declared once.

The storage of every rollup is generated from these declarations (`sinks/rollup_ddl.py`
writes the tier tables, their migration and the tier job's statements; the dashboard's table
map comes from here too), so the cube {family} × {grain} × {scope} is written out by no hand.

- A **family** is one rollup's dimensions and metrics (activity, service requests, …), with
  how each event type feeding it fills every metric at the minute grain.
- A **grain** is a time bucket: `minute` is filled on every insert by materialized views
  reading the events tables; `hour` is merged from the minute tier and `day` from the hour
  tier by the tier job (sinks/tiers.py), so their cost grows with the number of groups, and
  none of it is on the sink's insert path. One aggregate-state type per metric across tiers:
  a coarser tier is the `-MergeState` of the finer one.
- A **scope** drops dimensions: `national` rows have no province (nor its region), ~50 times
  fewer rows per hour for the panels without a province filter.

The citizen metric of a family is the uniq state of the pseudonym of the field the event's
schema tags `"pii": "national_id"`: read from the contract, never named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from govpulse.schemas.catalog import EVENT_TYPES, PSEUDONYM_SUFFIX, pii_fields, raw_schema

PROGRESS_TABLE = "tier_progress"  # where the tier job is (sinks/tiers.py)
NATIONAL_ID = "national_id"  # the PII kind whose pseudonyms a citizen count is a uniq of
TEXT = "LowCardinality(String)"


@dataclass(frozen=True)
class Metric:
    """One aggregate column: how it is stored, and merged into a coarser tier.

    `kind` is one of count (rows), sum, uniq, quantile (`sketch`: TDigest) or max;
    `value_type` the type aggregated (UInt64 for counts); `minute_only` metrics serve live
    health figures and are not carried into the hour and day tiers.
    """

    name: str
    kind: str
    value_type: str = "UInt64"
    sketch: str = ""
    minute_only: bool = False

    @property
    def column_type(self) -> str:
        if self.kind in ("count", "sum"):
            return f"SimpleAggregateFunction(sum, {self.value_type})"
        if self.kind == "max":
            return f"SimpleAggregateFunction(max, {self.value_type})"
        if self.kind == "uniq":
            return f"AggregateFunction(uniq, {self.value_type})"
        return f"AggregateFunction(quantile{self.sketch}, {self.value_type})"

    def merged(self, column: str) -> str:
        """The expression merging this metric's finer-tier rows into one coarser state."""
        if self.kind in ("count", "sum"):
            return f"sum({column})"
        if self.kind == "max":
            return f"max({column})"
        if self.kind == "uniq":
            return f"uniqMergeState({column})"
        return f"quantile{self.sketch}MergeState({column})"


@dataclass(frozen=True)
class Dimension:
    name: str
    type: str = TEXT
    source: str = ""  # the expression over an events table (default: the column itself)

    @property
    def expression(self) -> str:
        return f"{self.source} AS {self.name}" if self.source else self.name


@dataclass(frozen=True)
class Family:
    """One rollup: dimensions (in sort order after the time column) and metrics.

    `sources` maps each event type feeding the family to its metrics' minute-grain
    expressions over its events table (a metric an event type lacks is left out: its
    default state); `counts` names the metric counting events (what the audit compares);
    `national` whether the family has a national scope; `from_events` a family filled by the
    tier job straight from the events tables (no minute tier, counts only).
    """

    name: str
    dimensions: tuple[Dimension, ...]
    metrics: tuple[Metric, ...]
    sources: dict[str, dict[str, str]]
    counts: str
    national: bool = False
    by_event_type: bool = False  # `event_type` is a dimension, set per source
    from_events: bool = False
    province_first: bool = False  # sort by province before time (a province's rows together)

    def tier_metrics(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if not m.minute_only)

    def dimension_names(self, scope: str = "province") -> tuple[str, ...]:
        dropped = SCOPES[scope]
        return tuple(d.name for d in self.dimensions if d.name not in dropped)

    def dimensions_of(self, scope: str = "province") -> tuple[Dimension, ...]:
        dropped = SCOPES[scope]
        return tuple(d for d in self.dimensions if d.name not in dropped)


@dataclass(frozen=True)
class Grain:
    """A time bucket: its column name, the function of a timestamp it is, its length."""

    name: str
    function: str
    seconds: int


MINUTE = Grain("minute", "toStartOfMinute", 60)
HOUR = Grain("hour", "toStartOfHour", 3_600)
DAY = Grain("day", "toStartOfDay", 86_400)
TIER_GRAINS = (HOUR, DAY)  # the grains the tier job fills
# Each scope's dropped dimensions. region_code is a function of province_code: without the
# province it would only split the national rows by region.
SCOPES: dict[str, frozenset[str]] = {
    "province": frozenset(),
    "national": frozenset({"province_code", "region_code"}),
}

_GEO = (Dimension("province_code"), Dimension("agency_code"))
_FUNCTIONAL = (Dimension("ministry_code"), Dimension("region_code"))
_LATENCY = "quantileTDigestState(toFloat32(dateDiff('millisecond', produced_at, processed_at)))"


def citizen_field(event_type: str) -> str | None:
    """The clean column holding the pseudonym of the field tagged `"pii": "national_id"`."""
    tagged = [f for f, kind in pii_fields(_raw_schema(event_type)).items() if kind == NATIONAL_ID]
    if len(tagged) > 1:
        raise ValueError(f"{event_type}: more than one field tagged pii={NATIONAL_ID}: {tagged}")
    return tagged[0] + PSEUDONYM_SUFFIX if tagged else None


@cache
def _raw_schema(event_type: str) -> dict[str, Any]:
    return raw_schema(event_type)


def citizens_state(event_type: str) -> str | None:
    """The uniq state of an event type's citizens, or None when its schema tags no one."""
    column = citizen_field(event_type)
    if column is None:
        return None
    return f"uniqStateIf(assumeNotNull({column}), isNotNull({column}))"


def _activity_source(event_type: str, extra: dict[str, str]) -> dict[str, str]:
    source = {"events": "count()"}
    citizens = citizens_state(event_type)
    if citizens:
        source["citizens"] = citizens
    source.update(extra)
    source["pipeline_latency_ms"] = _LATENCY
    source["last_inserted_at"] = "max(inserted_at)"
    return source


ACTIVITY = Family(
    "activity",
    dimensions=(Dimension("event_type"), *_GEO, Dimension("channel"), *_FUNCTIONAL),
    metrics=(
        Metric("events", "count"),
        Metric("citizens", "uniq", "String"),
        Metric("amount_thb", "sum", "Decimal(38, 2)"),
        Metric("pipeline_latency_ms", "quantile", "Float32", "TDigest", minute_only=True),
        Metric("processing_seconds", "quantile", "Float32", "TDigest"),
        Metric("last_inserted_at", "max", "DateTime64(3, 'UTC')", minute_only=True),
    ),
    sources={
        "service_request": {
            "amount_thb": "sum(fee_thb)",
            "processing_seconds": "quantileTDigestStateIf(toFloat32(assumeNotNull("
            "processing_seconds)), isNotNull(processing_seconds))",
        },
        "complaint": {},
        "net_pracharat_usage": {},
        "digital_center_activity": {"amount_thb": "sum(ifNull(order_amount_thb, 0))"},
        "dataset_update": {},
    },
    counts="events",
    national=True,
    by_event_type=True,
)
SERVICE_REQUEST = Family(
    "service_request",
    dimensions=(*_GEO, Dimension("service_code"), Dimension("status"), *_FUNCTIONAL),
    metrics=(
        Metric("requests", "count"),
        Metric("satisfaction_sum", "sum", "Int64"),
        Metric("satisfaction_count", "sum", "UInt64"),
    ),
    sources={
        "service_request": {
            "requests": "count()",
            "satisfaction_sum": "sum(ifNull(satisfaction_score, 0))",
            "satisfaction_count": "count(satisfaction_score)",
        }
    },
    counts="requests",
    national=True,
)
COMPLAINT = Family(
    "complaint",
    dimensions=(
        *_GEO,
        Dimension("category"),
        Dimension("severity"),
        Dimension("status"),
        Dimension("via_1111", "Bool"),
        *_FUNCTIONAL,
    ),
    metrics=(
        Metric("complaints", "count"),
        Metric("resolution_days", "quantile", "Float32", "TDigest"),
    ),
    sources={
        "complaint": {
            "complaints": "count()",
            "resolution_days": "quantileTDigestStateIf(toFloat32(assumeNotNull("
            "resolution_days)), isNotNull(resolution_days))",
        }
    },
    counts="complaints",
    national=True,
)
NET_PRACHARAT = Family(
    "net_pracharat",
    dimensions=(*_GEO, *_FUNCTIONAL),
    metrics=(
        Metric("reports", "count"),
        Metric("access_points", "uniq", "String"),
        Metric("sessions", "sum", "Int64"),
        Metric("devices_sum", "sum", "Int64"),
        Metric("bytes_down", "sum", "Int64"),
        Metric("bytes_up", "sum", "Int64"),
        Metric("latency_ms", "quantile", "Float32", "TDigest"),
    ),
    sources={
        "net_pracharat_usage": {
            "reports": "count()",
            "access_points": "uniqState(access_point_id)",
            "sessions": "sum(sessions)",
            "devices_sum": "sum(unique_devices)",
            "bytes_down": "sum(bytes_down)",
            "bytes_up": "sum(bytes_up)",
            "latency_ms": "quantileTDigestStateIf(assumeNotNull(avg_latency_ms), "
            "isNotNull(avg_latency_ms))",
        }
    },
    counts="reports",
    national=True,
)
DIGITAL_CENTER = Family(
    "digital_center",
    dimensions=(
        *_GEO,
        Dimension("activity"),
        Dimension("product_category", source="ifNull(product_category, '')"),
        *_FUNCTIONAL,
    ),
    metrics=(
        Metric("activities", "count"),
        Metric("participants", "sum", "Int64"),
        Metric("order_amount_thb", "sum", "Decimal(38, 2)"),
    ),
    sources={
        "digital_center_activity": {
            "activities": "count()",
            "participants": "sum(participants)",
            "order_amount_thb": "sum(ifNull(order_amount_thb, 0))",
        }
    },
    counts="activities",
)
# Events per district for the province view's day and week: the minute tier has no district
# (it would multiply its rows ~12×), so the tier job counts it from the events tables, once
# per closed hour; keyed by province first, so a province's rows are one range of each part.
DISTRICT = Family(
    "district",
    dimensions=(
        *_GEO,
        Dimension("district_code", source="ifNull(district_code, '')"),
        Dimension("event_type"),
    ),
    metrics=(Metric("events", "count"),),
    sources={event_type: {"events": "count()"} for event_type in EVENT_TYPES},
    counts="events",
    by_event_type=True,
    from_events=True,
    province_first=True,
)
FAMILIES = (ACTIVITY, SERVICE_REQUEST, COMPLAINT, NET_PRACHARAT, DIGITAL_CENTER, DISTRICT)
MINUTE_FAMILIES = tuple(f for f in FAMILIES if not f.from_events)


@dataclass(frozen=True)
class TierTable:
    """One table the tier job fills: a family at a grain and scope, and where it reads from."""

    family: Family
    grain: Grain
    scope: str = "province"
    name: str = field(init=False)

    def __post_init__(self) -> None:
        scope = "" if self.scope == "province" else f"_{self.scope}"
        object.__setattr__(self, "name", f"{self.family.name}{scope}_{self.grain.name}")

    @property
    def dimensions(self) -> tuple[str, ...]:
        return self.family.dimension_names(self.scope)

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self.family.tier_metrics()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns a reader selects (the bucket, dimensions, metrics: not the version)."""
        return (self.grain.name, *self.dimensions, *(m.name for m in self.metrics))

    @property
    def source(self) -> str:
        """The table this tier is merged from, so each merge reads the fewest rows: a
        province hour the minute tier; a national hour the province hours; a day the hours
        of its scope. (`from_events` families read the events tables instead.)"""
        if self.grain is HOUR and self.scope == "province":
            return minute_table(self.family)
        if self.grain is HOUR:
            return TierTable(self.family, HOUR).name
        return TierTable(self.family, HOUR, self.scope).name

    @property
    def source_grain(self) -> Grain:
        return MINUTE if self.source == minute_table(self.family) else HOUR


def tier_tables() -> tuple[TierTable, ...]:
    """Every table the tier job fills, in the order it fills them (finer tiers first)."""
    tables = []
    for grain in TIER_GRAINS:
        for family in FAMILIES:
            if family.from_events and grain is not HOUR:
                continue
            tables.append(TierTable(family, grain))
        for family in FAMILIES:
            if family.national:
                tables.append(TierTable(family, grain, "national"))
    return tuple(tables)


def minute_table(family: Family) -> str:
    return f"{family.name}_minute"


def tier_of(name: str) -> TierTable:
    """The tier table called `name` (KeyError if the spec has none)."""
    for table in tier_tables():
        if table.name == name:
            return table
    raise KeyError(name)


def district_counts(database: str, event_type: str, where: str, extra: str = "") -> str:
    """The SELECT of one event type's events per hour and district, in `district_hour`'s
    columns (then `extra`, e.g. the tier job's version), over the rows meeting `where`: what
    the tier job writes for a closed hour and the dashboard reads for the open one."""
    dims = [d for d in DISTRICT.dimensions if d.name != "event_type"]
    return (
        f"SELECT toStartOfHour(occurred_at) AS hour, {', '.join(d.expression for d in dims)}, "
        f"'{event_type}' AS event_type, count() AS events{extra} "
        f"FROM {database}.events_{event_type} WHERE {where} "
        f"GROUP BY hour, {', '.join(d.name for d in dims)}"
    )
