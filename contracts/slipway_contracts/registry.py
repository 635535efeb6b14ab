"""The event-type registry: from an envelope's ``type`` and ``version`` to its payload model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from slipway_contracts.envelope import Envelope, EventPayload


class UnknownEventType(LookupError):
    """An envelope names a type/version no payload model is registered for."""


class EventRegistry:
    def __init__(self, payloads: Iterable[type[EventPayload]] = ()) -> None:
        self._by_key: dict[tuple[str, int], type[EventPayload]] = {}
        for payload in payloads:
            self.register(payload)

    def register(self, payload: type[EventPayload]) -> type[EventPayload]:
        key = (payload.event_type, payload.event_version)
        if key in self._by_key and self._by_key[key] is not payload:
            raise ValueError(f"event type {key} registered twice")
        self._by_key[key] = payload
        return payload

    def model_for(self, event_type: str, version: int) -> type[EventPayload]:
        try:
            return self._by_key[(event_type, version)]
        except KeyError:
            raise UnknownEventType(f"{event_type} v{version}") from None

    def parse(self, envelope: Envelope) -> EventPayload:
        """The typed payload of an envelope (raises pydantic ValidationError on bad data)."""
        return self.model_for(envelope.type, envelope.version).model_validate(envelope.data)

    def __iter__(self) -> Iterator[type[EventPayload]]:
        return iter(sorted(self._by_key.values(), key=lambda p: (p.event_type, p.event_version)))

    def __len__(self) -> int:
        return len(self._by_key)


def _build_default() -> EventRegistry:
    from slipway_contracts.events import ALL_PAYLOADS

    return EventRegistry(ALL_PAYLOADS)


REGISTRY = _build_default()
