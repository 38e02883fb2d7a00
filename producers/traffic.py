"""Realistic agency traffic: which agency sends what, where, when — and the dirt they send.

`TrafficGenerator.next_event()` returns one raw record at a time with the defect it carries
(at most one), so the simulator's report is exact ground truth: a record without a defect or
with a repairable one reaches `clean.<type>`, a record with a dead-letter defect reaches
`dlq.<type>` with that reason, a duplicate is dropped. Clean-bound records are therefore
valid in every respect the stream processor checks (known codes, checksummed IDs, a district
inside its province, a village in a subdistrict of that district, a timestamp that is not in
the future).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any

from govpulse.producers.defects import Defect, Outcome
from govpulse.schemas import catalog
from govpulse.schemas.reference import agencies, districts, provinces, subdistricts
from govpulse.streams.rules.buddhist_era import BE_OFFSET
from govpulse.streams.rules.national_id import check_digit
from govpulse.streams.rules.thai_digits import THAI_DIGITS

BANGKOK = timedelta(hours=7)
UNKNOWN_PROVINCE_CODES = ("00", "29", "59", "68", "69", "79", "87", "97", "98", "99")
ZWSP = "\u200b"
_TO_THAI = str.maketrans("0123456789", THAI_DIGITS)
# The free-text field of each type that zero-width characters are smuggled into.
TEXT_FIELD = {
    "service_request": "service_name",
    "complaint": "subject",
    "net_pracharat_usage": "village_name",
    "digital_center_activity": "title",
    "dataset_update": "title",
}
NATIONAL_ID_FIELD = {
    event_type: name
    for event_type in catalog.EVENT_TYPES
    for name, kind in catalog.pii_fields(catalog.raw_schema(event_type)).items()
    if kind == "national_id"
}
RECENT_KEPT = 2_000  # clean-bound records remembered per type, to be resent as duplicates


@cache
def profile() -> dict[str, Any]:
    """The traffic profile (`traffic_profile.json`): mixes, names, weights."""
    return json.loads(
        files("govpulse.producers").joinpath("traffic_profile.json").read_text("utf-8")
    )


class Weighted:
    """Draw from a {value: weight} mapping with cumulative weights computed once."""

    def __init__(self, weights: dict[str, float] | Sequence[tuple[Any, float]]) -> None:
        pairs = list(weights.items()) if isinstance(weights, dict) else list(weights)
        self.values = [value for value, _ in pairs]
        self.cumulative: list[float] = []
        total = 0.0
        for _, weight in pairs:
            total += weight
            self.cumulative.append(total)

    def draw(self, rng: random.Random) -> Any:
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


def valid_national_id(rng: random.Random) -> str:
    """A random 13-digit ID with a correct check digit (first digit 1-8 as issued)."""
    first = str(rng.randint(1, 8)) + "".join(rng.choices("0123456789", k=11))
    return first + str(check_digit(first))


def corrupt_check_digit(national_id: str, rng: random.Random) -> str:
    """The same ID with a wrong check digit: always fails the checksum."""
    wrong = rng.choice([d for d in "0123456789" if d != national_id[12]])
    return national_id[:12] + wrong


def to_thai_digits(text: str) -> str:
    return text.translate(_TO_THAI)


def add_buddhist_era(moment: datetime) -> datetime:
    """The same wall-clock moment written with a BE year (29 Feb becomes 28 Feb)."""
    try:
        return moment.replace(year=moment.year + BE_OFFSET)
    except ValueError:
        return moment.replace(year=moment.year + BE_OFFSET, day=28)


class TrafficGenerator:
    """Random but reproducible (seeded) traffic with a share of dirty records."""

    def __init__(
        self,
        *,
        dirty_share: float = 0.05,
        seed: int | None = None,
        event_types: Sequence[str] = catalog.EVENT_TYPES,
        daily_rhythm: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 0.0 <= dirty_share <= 1.0:
            raise ValueError(f"dirty_share must be within 0-1, got {dirty_share}")
        unknown = set(event_types) - set(catalog.EVENT_TYPES)
        if unknown or not event_types:
            raise ValueError(
                f"unknown event types {sorted(unknown)}; expected some of {catalog.EVENT_TYPES}"
            )
        self.rng = random.Random(seed)
        self.dirty_share = dirty_share
        self.daily_rhythm = daily_rhythm
        self.clock = clock
        data = profile()
        self.event_types = tuple(event_types)
        self.types = Weighted({t: data["type_mix"][t] for t in event_types})
        self.provinces = Weighted(
            {code: data["province_weights"].get(code, 1) for code in provinces()}
        )
        self.districts_of: dict[str, list[str]] = {}
        for district in districts().values():
            self.districts_of.setdefault(district.province_code, []).append(district.code)
        self.subdistricts_of: dict[str, list[str]] = {}  # district and province → subdistricts
        for district_code, codes in subdistricts().items():
            self.subdistricts_of[district_code] = list(codes)
            self.subdistricts_of.setdefault(district_code[:2], []).extend(codes)
        self.recent: dict[str, deque[dict[str, Any]]] = {
            t: deque(maxlen=RECENT_KEPT) for t in event_types
        }
        self._build = {
            "service_request": self._service_request,
            "complaint": self._complaint,
            "net_pracharat_usage": self._net_pracharat_usage,
            "digital_center_activity": self._digital_center_activity,
            "dataset_update": self._dataset_update,
        }
        self._weighted: dict[str, Weighted] = {}
        named = {row[0] for row in data["service_request"]["services"]}
        for section in ("complaint", "net_pracharat_usage", "digital_center_activity"):
            named |= set(data[section]["agencies"])
        if missing := named - set(agencies()):
            raise ValueError(f"traffic_profile.json names unknown agency codes {sorted(missing)}")

    # -- rhythm ------------------------------------------------------------------------------
    def rhythm_factor(self) -> float:
        """Activity at this hour in Bangkok relative to the daily mean (1.0 when flat)."""
        if not self.daily_rhythm:
            return 1.0
        curve = profile()["daily_rhythm"]
        hour = (self.clock() + BANGKOK).hour
        return curve[hour] / (sum(curve) / len(curve))

    # -- events ------------------------------------------------------------------------------
    def next_event(self) -> tuple[str, dict[str, Any], str | None]:
        """(event_type, raw record, defect kind or None). At most one defect per record."""
        event_type = self.types.draw(self.rng)
        defect = self._pick_defect(event_type)
        if defect is Defect.DUPLICATE:
            return event_type, self.rng.choice(self.recent[event_type]), defect.value
        record = self._build[event_type]()
        if defect is not None:
            self._inject(event_type, record, defect)
        if defect is None or defect.outcome is Outcome.CLEAN:
            self.recent[event_type].append(record)
        return event_type, record, defect.value if defect else None

    def _pick_defect(self, event_type: str) -> Defect | None:
        if self.dirty_share == 0 or self.rng.random() >= self.dirty_share:
            return None
        choices = [
            d
            for d in Defect
            if (d is not Defect.INVALID_NATIONAL_ID or event_type in NATIONAL_ID_FIELD)
            and (d is not Defect.DUPLICATE or self.recent[event_type])
        ]
        return self.rng.choice(choices)

    def _inject(self, event_type: str, record: dict[str, Any], defect: Defect) -> None:
        rng = self.rng
        if defect is Defect.THAI_DIGITS:
            record["province_code"] = to_thai_digits(record["province_code"])
            if record.get("district_code"):
                record["district_code"] = to_thai_digits(record["district_code"])
        elif defect is Defect.BUDDHIST_ERA:
            record["occurred_at"] = add_buddhist_era(record["occurred_at"])
            if event_type == "dataset_update":
                record["data_year"] += BE_OFFSET
        elif defect is Defect.ZERO_WIDTH:
            name = TEXT_FIELD[event_type]
            text = record[name]
            cut = rng.randint(1, max(1, len(text) - 1))
            record[name] = text[:cut] + ZWSP + text[cut:] + " \u200d"
        elif defect is Defect.LATE:
            record["occurred_at"] = self.clock() - timedelta(minutes=rng.randint(120, 72 * 60))
        elif defect is Defect.INVALID_NATIONAL_ID:
            name = NATIONAL_ID_FIELD[event_type]
            record[name] = corrupt_check_digit(record.get(name) or valid_national_id(rng), rng)
        elif defect is Defect.UNKNOWN_PROVINCE:
            record["province_code"] = rng.choice(UNKNOWN_PROVINCE_CODES)
            record["district_code"] = None
        elif defect is Defect.FUTURE:
            record["occurred_at"] = self.clock() + timedelta(hours=rng.randint(2, 30 * 24))

    # -- per-type builders -------------------------------------------------------------------
    def _pick(self, key: str, weights: dict[str, float]) -> str:
        weighted = self._weighted.get(key)
        if weighted is None:
            weighted = self._weighted[key] = Weighted(weights)
        return weighted.draw(self.rng)

    def _envelope(self, event_type: str, agency: str, channel: str) -> dict[str, Any]:
        province = self.provinces.draw(self.rng)
        candidates = self.districts_of.get(province)
        district = self.rng.choice(candidates) if candidates and self.rng.random() < 0.85 else None
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "agency_code": agency,
            "occurred_at": self.clock() - timedelta(milliseconds=self.rng.randint(0, 20_000)),
            "province_code": province,
            "district_code": district,
            "channel": channel,
            "source_system": f"{agency.lower()}-{self.rng.choice(('core', 'eservice', 'api'))}",
        }

    def _phone(self) -> str:
        return self.rng.choice(("08", "09", "06")) + "".join(self.rng.choices("0123456789", k=8))

    def _service_request(self) -> dict[str, Any]:
        rng, spec = self.rng, profile()["service_request"]
        agency, code, name, fee, typical_s = rng.choice(spec["services"])
        status = self._pick("sr.status", spec["status"])
        applicant = self._pick("sr.applicant", spec["applicant_type"])
        finished = status in ("COMPLETED", "APPROVED", "REJECTED")
        record = self._envelope("service_request", agency, self._pick("sr.ch", spec["channels"]))
        year_be = record["occurred_at"].year + BE_OFFSET
        record |= {
            "service_code": code,
            "service_name": name,
            "reference_no": f"{year_be}/{rng.randint(1, 99999):05d}",
            "status": status,
            "applicant_type": applicant,
            "citizen_id": valid_national_id(rng) if applicant == "CITIZEN" else None,
            "applicant_phone": self._phone() if rng.random() < 0.7 else None,
            "fee_thb": Decimal(fee).quantize(Decimal("0.01")),
            "processing_seconds": int(rng.expovariate(1 / typical_s)) + 30 if finished else None,
            "satisfaction_score": rng.choices((1, 2, 3, 4, 5), (3, 5, 15, 37, 40))[0]
            if finished and rng.random() < 0.4
            else None,
        }
        return record

    def _complaint(self) -> dict[str, Any]:
        rng, spec = self.rng, profile()["complaint"]
        agency = self._pick("c.agency", spec["agencies"])
        category, subject = rng.choice(spec["subjects"])
        status = self._pick("c.status", spec["status"])
        record = self._envelope("complaint", agency, self._pick("c.ch", spec["channels"]))
        record |= {
            "complaint_no": f"{rng.randint(1000, 9999)}-{rng.randint(1, 999999):06d}",
            "category": category,
            "subject": subject,
            "severity": self._pick("c.sev", spec["severity"]),
            "status": status,
            "via_1111": agency == "OPM-1111" or rng.random() < 0.2,
            "complainant_id": valid_national_id(rng) if rng.random() < 0.6 else None,
            "complainant_phone": self._phone() if rng.random() < 0.8 else None,
            "resolution_days": rng.randint(1, 60) if status in ("RESOLVED", "CLOSED") else None,
        }
        return record

    def _net_pracharat_usage(self) -> dict[str, Any]:
        rng, spec = self.rng, profile()["net_pracharat_usage"]
        record = self._envelope(
            "net_pracharat_usage", self._pick("n.agency", spec["agencies"]), "OTHER"
        )
        province, minutes = record["province_code"], 15
        sessions = max(1, int(rng.gammavariate(2.0, 12)))
        end = record["occurred_at"].replace(second=0, microsecond=0)
        record |= {
            "access_point_id": f"NPR-{province}-{rng.randint(1, 2500):06d}",
            "village_code": rng.choice(self.subdistricts_of[record["district_code"] or province])
            + f"{rng.randint(1, 15):02d}",
            "village_name": rng.choice(spec["villages"]),
            "interval_start": end - timedelta(minutes=minutes),
            "interval_minutes": minutes,
            "sessions": sessions,
            "unique_devices": max(1, int(sessions * rng.uniform(0.5, 0.9))),
            "bytes_down": int(sessions * rng.lognormvariate(17, 1.0)),
            "bytes_up": int(sessions * rng.lognormvariate(15, 1.0)),
            "avg_latency_ms": round(rng.uniform(12, 160), 1) if rng.random() < 0.9 else None,
        }
        return record

    def _digital_center_activity(self) -> dict[str, Any]:
        rng, spec = self.rng, profile()["digital_center_activity"]
        activity = self._pick("d.activity", spec["activities"])
        record = self._envelope(
            "digital_center_activity",
            self._pick("d.agency", spec["agencies"]),
            "WEB" if activity == "ONLINE_ORDER" else "COUNTER",
        )
        order = activity == "ONLINE_ORDER"
        if order:
            category, title, low, high = rng.choice(spec["products"])
            amount = Decimal(rng.randint(low * 100, high * 100)) / 100
        else:
            category, title, amount = None, rng.choice(spec["trainings"]), None
        record |= {
            "center_id": f"DCC-{record['province_code']}-{rng.randint(1, 60):04d}",
            "activity": activity,
            "title": title,
            "participants": 1 if order else rng.randint(3, 40),
            "order_amount_thb": amount,
            "product_category": category,
            "participant_id": valid_national_id(rng) if not order and rng.random() < 0.3 else None,
            "buyer_province_code": self.provinces.draw(rng) if order else None,
        }
        return record

    def _dataset_update(self) -> dict[str, Any]:
        rng, spec = self.rng, profile()["dataset_update"]
        agency = self._pick("u.agency", spec["agencies"])
        slug, title = rng.choice(spec["datasets"])
        record = self._envelope("dataset_update", agency, "API")
        year = record["occurred_at"].year - rng.randint(0, 3)
        dataset_id = f"{agency.lower()}-{slug}-{year + BE_OFFSET}"
        record |= {
            "dataset_id": dataset_id,
            "title": title,
            "action": rng.choices(("CREATED", "UPDATED", "REFRESHED", "DELETED"), (5, 60, 33, 2))[
                0
            ],
            "record_count": int(rng.lognormvariate(9, 2)),
            "format": self._pick("u.format", spec["formats"]),
            "licence": "Open Data Common",
            "data_year": year,
            "catalog_url": f"https://data.go.th/dataset/{dataset_id}",
        }
        return record
