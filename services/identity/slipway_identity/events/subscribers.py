"""Kafka subscribers of the identity service: the audit log consumes every producer's records."""

from __future__ import annotations

from slipway_contracts.events.audit import AUDIT_PAYLOADS
from slipway_identity.usecases import audit_log
from slipway_libs.bus import ConsumerSpec

AUDIT_GROUP = "identity.audit-log"


def consumers() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=AUDIT_GROUP,
            topics=[p.topic for p in AUDIT_PAYLOADS.values()],
            handlers={p.event_type: audit_log.store for p in AUDIT_PAYLOADS.values()},
        )
    ]
