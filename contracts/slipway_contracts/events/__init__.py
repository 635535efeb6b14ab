"""Event payloads, one module per producing service (audit records: one module for all)."""

from slipway_contracts.envelope import EventPayload
from slipway_contracts.events import audit, catalog, identity, logs

ALL_PAYLOADS: tuple[type[EventPayload], ...] = (
    *identity.PAYLOADS,
    *catalog.PAYLOADS,
    *logs.PAYLOADS,
    *audit.PAYLOADS,
)

__all__ = ["ALL_PAYLOADS"]
