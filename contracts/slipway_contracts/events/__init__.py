"""Event payloads, one module per producing service (audit records: one module for all)."""

from slipway_contracts.envelope import EventPayload
from slipway_contracts.events import (
    audit,
    builder,
    catalog,
    deployer,
    identity,
    logs,
    scheduler,
)

ALL_PAYLOADS: tuple[type[EventPayload], ...] = (
    *identity.PAYLOADS,
    *catalog.PAYLOADS,
    *deployer.PAYLOADS,
    *builder.PAYLOADS,
    *logs.PAYLOADS,
    *scheduler.PAYLOADS,
    *audit.PAYLOADS,
)

__all__ = ["ALL_PAYLOADS"]
