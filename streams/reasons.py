"""Dead-letter reason codes: why a raw event went to `dlq.<type>` instead of `clean.<type>`.

The values are a contract with the traffic simulator (`producers.defects.Defect.reason`), the
DLQ headers and the audit, so they are strings that never change once released.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """One code per check; `Transformer.process` reports the first check that fails."""

    UNDECODABLE = "undecodable"  # not Confluent framing, or the Avro body does not decode
    UNKNOWN_SCHEMA = "unknown_schema"  # the schema id is unknown, or not this event type's schema
    INVALID_VALUE = "invalid_value"  # e.g. event_type differs from the topic's type
    UNKNOWN_AGENCY = "unknown_agency"  # agency_code not in schemas/reference/agencies.json
    UNKNOWN_PROVINCE = "unknown_province"  # not a DOPA province code
    UNKNOWN_DISTRICT = "unknown_district"  # not a DOPA district, or in another province
    # village_code: not 6-digit DOPA subdistrict + 2-digit village number, or the subdistrict
    # lies outside the record's district_code / province_code
    UNKNOWN_SUBDISTRICT = "unknown_subdistrict"
    FUTURE_TIMESTAMP = "future_timestamp"  # occurred_at later than now + tolerance
    OUTSIDE_RETENTION = "outside_retention"  # occurred_at older than GOVPULSE_RAW_TTL_DAYS
    INVALID_NATIONAL_ID = "invalid_national_id"  # not 13 digits, or the check digit is wrong
    # reported by the router (govpulse.streams.batch), not the transform: the clean record is over
    # the output producer's size limit
    TOO_LARGE = "too_large"
