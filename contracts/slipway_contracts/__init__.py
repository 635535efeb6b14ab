"""Slipway's shared contracts: the event envelope, topics, payloads and their registry.

Services share only this package (and the mechanisms in ``slipway_libs``); they never import
each other's code.
"""

from slipway_contracts.envelope import Envelope, EventPayload, new_event
from slipway_contracts.registry import REGISTRY, EventRegistry, UnknownEventType
from slipway_contracts.topics import TOPICS, TopicSpec, dead_letter_topic

__all__ = [
    "REGISTRY",
    "TOPICS",
    "Envelope",
    "EventPayload",
    "EventRegistry",
    "TopicSpec",
    "UnknownEventType",
    "dead_letter_topic",
    "new_event",
]
