"""Avro timestamp-millis values: the one epoch and the one conversion each way.

The contracts hold instants as epoch milliseconds (`timestamp-millis`). The stream processor
keeps them as ints; fastavro, where it applies logical types, gives aware datetimes. These are
exact (timedelta arithmetic, no float rounding).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def epoch_millis(value: Any) -> int:
    """Epoch milliseconds of a decoded timestamp-millis: an aware datetime, or already an int."""
    return (value - EPOCH) // MILLISECOND if isinstance(value, datetime) else int(value)


def from_epoch_millis(millis: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds; OverflowError outside datetime's range."""
    return EPOCH + timedelta(milliseconds=millis)
