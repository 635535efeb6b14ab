"""Event payloads, one module per producing service."""

from slipway_contracts.envelope import EventPayload
from slipway_contracts.events import identity, logs

ALL_PAYLOADS: tuple[type[EventPayload], ...] = (*identity.PAYLOADS, *logs.PAYLOADS)

__all__ = ["ALL_PAYLOADS"]
