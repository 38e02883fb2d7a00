"""Validation of the dashboard API's query parameters, before anything reaches ClickHouse.

Every value a request may carry is checked against a whitelist or a strict pattern and then
against the reference data, so a query only ever receives known province codes, known agency
codes and one of four time ranges, always as bound parameters. A malformed value (wrong
shape, too long, an unknown parameter name, a repeated parameter) is the caller's mistake:
400. A well-formed code that names no province or agency: 404, as for an unknown resource.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from multidict import MultiMapping

from govpulse.schemas.reference import agencies, provinces

# Longer values are rejected before any pattern runs: no code or option is this long.
MAX_VALUE_LENGTH = 32
PROVINCE_PATTERN = re.compile(r"[0-9]{2}")
AGENCY_PATTERN = re.compile(r"[A-Z][A-Z0-9]{1,15}(-[A-Z0-9]{1,15})?")


@dataclass(frozen=True)
class TimeRange:
    """A selectable time range: its length and the width of one chart bucket, in seconds.

    Buckets keep charts at 15-168 points: per minute for the live ranges (read from the
    per-minute rollups), per hour for a day or a week (read from the hourly rollups).
    `max_age` is how old a shared answer may be: a second for the live ranges; for a day or
    a week, a small fraction of a bucket (see ResponseCache in dashboard/app.py).
    """

    name: str
    seconds: int
    step: int
    max_age: float


RANGES: dict[str, TimeRange] = {
    r.name: r
    for r in (
        TimeRange("15m", 15 * 60, 60, 1.0),
        TimeRange("1h", 60 * 60, 60, 1.0),
        TimeRange("24h", 24 * 3600, 3600, 10.0),
        TimeRange("7d", 7 * 24 * 3600, 3600, 60.0),
    )
}
DEFAULT_RANGE = "1h"

# Dimensions /api/breakdown may group by: request word → activity_minute column. The column
# text comes from this table, never from the request.
BREAKDOWN_DIMENSIONS: dict[str, str] = {
    "channel": "channel",
    "region": "region_code",
    "ministry": "ministry_code",
    "agency": "agency_code",
    "province": "province_code",
    "event_type": "event_type",
}


class ParameterError(ValueError):
    """A request the API cannot answer; carries the HTTP status and what was expected."""

    def __init__(
        self, status: int, message: str, parameter: str | None = None, expected: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter
        self.expected = expected

    def body(self) -> dict[str, Any]:
        """The JSON error body: what was wrong and, where useful, what would be right."""
        body: dict[str, Any] = {"error": self.message, "status": self.status}
        if self.parameter is not None:
            body["parameter"] = self.parameter
        if self.expected is not None:
            body["expected"] = self.expected
        return body


@dataclass(frozen=True)
class Window:
    """The buckets a request covers: [start, end) in epoch seconds, aligned to `step`.

    `end` is the end of the bucket holding `now`, so the bucket in progress is shown and
    grows; `start` is `end` minus the range, so a chart always has the same number of points.
    """

    start: int
    end: int
    step: int
    now: float | None = None  # when it was taken: how much of the last bucket has passed

    @property
    def buckets(self) -> list[int]:
        return list(range(self.start, self.end, self.step))

    def seconds_in(self, bucket: int) -> float:
        """Seconds of `bucket` that have passed: its width, less for the one in progress (at
        least 10 s, so a bucket's first seconds do not turn a few events into a spike)."""
        if self.now is None or bucket + self.step <= self.now:
            return float(self.step)
        return min(float(self.step), max(10.0, self.now - bucket))

    @classmethod
    def of(cls, time_range: TimeRange, now: float | None = None) -> Window:
        now = time.time() if now is None else now
        end = (int(now) // time_range.step + 1) * time_range.step
        return cls(end - time_range.seconds, end, time_range.step, now)


@dataclass(frozen=True)
class Query:
    """The validated parameters of one request (None: not given)."""

    range: TimeRange
    province: str | None = None
    agency: str | None = None
    by: str | None = None

    def key(self) -> tuple[str, str | None, str | None, str | None]:
        """Identity for the response cache."""
        return (self.range.name, self.province, self.agency, self.by)


def _single(params: MultiMapping[str], name: str) -> str | None:
    values = params.getall(name, [])
    if len(values) > 1:
        raise ParameterError(400, f"parameter {name!r} given {len(values)} times", name)
    if not values:
        return None
    value = values[0]
    if len(value) > MAX_VALUE_LENGTH:
        raise ParameterError(
            400,
            f"parameter {name!r} is {len(value)} characters long",
            name,
            f"at most {MAX_VALUE_LENGTH} characters",
        )
    return value


def province_code(value: str, parameter: str = "province") -> str:
    """A known DOPA province code, or ParameterError (400 malformed, 404 unknown)."""
    if len(value) > MAX_VALUE_LENGTH or not PROVINCE_PATTERN.fullmatch(value):
        raise ParameterError(
            400,
            f"{parameter} must be a 2-digit DOPA province code",
            parameter,
            "two ASCII digits, e.g. 76",
        )
    if value not in provinces():
        raise ParameterError(404, f"no province with code {value}", parameter)
    return value


def agency_code(value: str) -> str:
    """A known agency code from schemas/reference/agencies.json, or ParameterError."""
    if not AGENCY_PATTERN.fullmatch(value):
        raise ParameterError(
            400,
            "agency must be an agency code",
            "agency",
            "a code such as MOI or MOI-DOPA (capital letters, digits, one hyphen)",
        )
    if value not in agencies():
        raise ParameterError(404, f"no agency with code {value}", "agency")
    return value


def parse(params: MultiMapping[str], allowed: frozenset[str]) -> Query:
    """Validate a request's query string against the parameters its endpoint accepts.

    `params` is a multi-mapping (aiohttp's `request.query`), so a repeated parameter is seen
    and refused instead of one of its values being picked silently.
    """
    unknown = sorted(set(params) - allowed)
    if unknown:
        name = unknown[0][:MAX_VALUE_LENGTH]
        raise ParameterError(
            400,
            f"unknown parameter {name!r}",
            name,
            "one of " + ", ".join(sorted(allowed)) if allowed else "no parameters",
        )
    range_name = _single(params, "range")
    range_name = DEFAULT_RANGE if range_name is None else range_name
    if range_name not in RANGES:
        raise ParameterError(400, "unknown time range", "range", "one of " + ", ".join(RANGES))
    province = _single(params, "province")
    agency = _single(params, "agency")
    by = _single(params, "by")
    if "by" in allowed and by is None:
        raise ParameterError(
            400, "parameter 'by' is required", "by", "one of " + ", ".join(BREAKDOWN_DIMENSIONS)
        )
    if by is not None and by not in BREAKDOWN_DIMENSIONS:
        raise ParameterError(
            400, "unknown dimension", "by", "one of " + ", ".join(BREAKDOWN_DIMENSIONS)
        )
    return Query(
        RANGES[range_name],
        province_code(province) if province is not None else None,
        agency_code(agency) if agency is not None else None,
        by,
    )
