"""One valid raw record per event type: documentation by example, and test fixtures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

_AT = datetime(2024, 6, 14, 3, 30, tzinfo=UTC)  # 10:30 in Bangkok


def _envelope(
    event_type: str, event_id: str, agency: str, province: str, district: str | None, channel: str
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "agency_code": agency,
        "occurred_at": _AT,
        "produced_at": _AT,
        "province_code": province,
        "district_code": district,
        "channel": channel,
        "source_system": f"{agency.lower()}-backoffice",
    }


def example(event_type: str) -> dict[str, Any]:
    """A fresh copy of the example record of `event_type` (latest raw schema)."""
    return _EXAMPLES[event_type]()


_EXAMPLES = {
    "service_request": lambda: {
        **_envelope(
            "service_request",
            "0b7c6a1e-6a53-4c9e-9a43-3f0d6f6f5e01",
            "MOI-DOPA",
            "76",
            "7601",
            "WEB",
        ),
        "service_code": "DOPA-IDCARD-RENEW",
        "service_name": "ต่ออายุบัตรประจำตัวประชาชน",
        "reference_no": "2567/0041",
        "status": "COMPLETED",
        "applicant_type": "CITIZEN",
        "citizen_id": "1101700203450",
        "applicant_phone": "0812345678",
        "fee_thb": Decimal("100.00"),
        "processing_seconds": 1260,
        "satisfaction_score": 5,
    },
    "complaint": lambda: {
        **_envelope(
            "complaint",
            "5d1f3e0a-2b7c-4f5e-8a1d-9c2b3a4d5e02",
            "OPM-1111",
            "10",
            "1001",
            "CALL_CENTER",
        ),
        "complaint_no": "1111-670614-0007",
        "category": "INFRASTRUCTURE",
        "subject": "ไฟฟ้าส่องสว่างริมถนนดับหลายจุด",
        "severity": "MEDIUM",
        "status": "FORWARDED",
        "via_1111": True,
        "complainant_id": None,
        "complainant_phone": "0898765432",
        "resolution_days": None,
    },
    "net_pracharat_usage": lambda: {
        **_envelope(
            "net_pracharat_usage",
            "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c03",
            "MDES-NT",
            "57",
            "5701",
            "OTHER",
        ),
        "access_point_id": "NPR-57-000123",
        "village_code": "57010305",
        "village_name": "บ้านดอยสะเก็ด",
        "interval_start": _AT,
        "interval_minutes": 15,
        "sessions": 42,
        "unique_devices": 31,
        "bytes_down": 1_834_221_901,
        "bytes_up": 210_118_443,
        "avg_latency_ms": 38.5,
    },
    "digital_center_activity": lambda: {
        **_envelope(
            "digital_center_activity",
            "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e04",
            "MOI-CDD",
            "34",
            None,
            "WEB",
        ),
        "center_id": "DCC-34-0017",
        "activity": "ONLINE_ORDER",
        "title": "ผ้าไหมทอมือลายลูกแก้ว",
        "participants": 1,
        "order_amount_thb": Decimal("1250.00"),
        "product_category": "textile",
        "participant_id": None,
        "buyer_province_code": "10",
    },
    "dataset_update": lambda: {
        **_envelope(
            "dataset_update", "7e6d5c4b-3a2f-4e1d-9c8b-7a6f5e4d3c05", "MDES-NSO", "10", None, "API"
        ),
        "dataset_id": "nso-household-survey-2567",
        "title": "สำรวจภาวะเศรษฐกิจและสังคมของครัวเรือน",
        "action": "UPDATED",
        "record_count": 52_000,
        "format": "CSV",
        "licence": "Open Data Common",
        "data_year": 2024,
        "catalog_url": "https://data.go.th/dataset/nso-household-survey-2567",
    },
}
