"""Every Prometheus metric of govpulse, declared once and shared by all processes.

Labels are small fixed sets (event type, topic, reason, outcome) — never an event id or a
pseudonym, which would make a series per record.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
