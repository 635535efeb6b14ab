"""The AsyncAPI 3.0 document of Slipway's topics and events, generated from the contracts.

Outside subscribers read it to know what each topic carries; ``contracts/asyncapi.json`` is the
committed copy, kept equal to what this module generates by a test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slipway_contracts.envelope import Envelope
from slipway_contracts.registry import REGISTRY, EventRegistry
from slipway_contracts.schemas import schema_of
from slipway_contracts.topics import TOPICS

DOCUMENT_PATH = Path(__file__).parent.parent / "asyncapi.json"


def _message_name(event_type: str, version: int) -> str:
    return f"{event_type.replace('.', '_')}_v{version}"


def build_document(registry: EventRegistry = REGISTRY) -> dict[str, Any]:
    envelope = Envelope.model_json_schema()
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        refs = {}
        for payload in registry:
            if payload.topic != topic.name:
                continue
            name = _message_name(payload.event_type, payload.event_version)
            data = schema_of(payload)
            body = json.loads(json.dumps(envelope))
            body["properties"]["data"] = data
            messages[name] = {
                "name": payload.event_type,
                "title": f"{payload.event_type} v{payload.event_version}",
                "summary": (payload.__doc__ or "").strip().split("\n")[0],
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {"traceparent": {"type": "string"}},
                },
                "payload": body,
            }
            refs[name] = {"$ref": f"#/components/messages/{name}"}
        channels[topic.name] = {
            "address": topic.name,
            "description": topic.description,
            "messages": refs,
            "bindings": {
                "kafka": {
                    "partitions": topic.partitions,
                    "topicConfiguration": {"cleanup.policy": [topic.config()["cleanup.policy"]]},
                }
            },
        }
        operations[f"receive_{topic.name.replace('.', '_')}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{topic.name}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Slipway events",
            "version": "1.0.0",
            "description": "Events published by Slipway's services. Keys are aggregate ids; "
            "the W3C traceparent travels in the Kafka headers.",
        },
        "defaultContentType": "application/json",
        "servers": {"devstack": {"host": "127.0.0.1:19092", "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


def write(path: Path = DOCUMENT_PATH) -> Path:
    path.write_text(render())
    return path
