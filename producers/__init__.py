"""The agency side: the `AgencyProducer` SDK and the traffic simulator."""

from govpulse.producers.agency_producer import (
    AgencyProducer,
    AsyncAgencyProducer,
    DeliveryStats,
    ProducerBufferFull,
    ProducerDeliveryFailed,
)

__all__ = [
    "AgencyProducer",
    "AsyncAgencyProducer",
    "DeliveryStats",
    "ProducerBufferFull",
    "ProducerDeliveryFailed",
]
