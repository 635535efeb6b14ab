"""JSON Schema snapshots of every event, and the compatibility rule between two of them.

Inside one major version a payload may only gain optional fields. ``breaking_changes`` compares
a committed snapshot with the schema the code produces now and lists every change that would
break a consumer or a producer written against the snapshot: a field removed, its type changed,
a field made required or no longer required, a new required field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slipway_contracts.envelope import EventPayload
from slipway_contracts.registry import REGISTRY, EventRegistry

SNAPSHOT_DIR = Path(__file__).parent / "schemas"

Schema = dict[str, Any]


def snapshot_name(payload: type[EventPayload]) -> str:
    return f"{payload.event_type}.v{payload.event_version}.json"


def schema_of(payload: type[EventPayload]) -> Schema:
    return payload.model_json_schema(mode="serialization")


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_snapshots(
    registry: EventRegistry = REGISTRY, directory: Path = SNAPSHOT_DIR
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for payload in registry:
        path = directory / snapshot_name(payload)
        path.write_text(render(schema_of(payload)))
        written.append(path)
    return written


def _resolve(node: Schema, root: Schema) -> Schema:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(target, root)


def _shape(node: Schema, root: Schema) -> Any:
    """A comparable form of a property's type, with references inlined."""
    node = _resolve(node, root)
    ignored = {"title", "description", "default", "examples"}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ignored:
            continue
        if key == "properties":
            out[key] = {k: _shape(v, root) for k, v in value.items()}
        elif isinstance(value, dict):
            out[key] = _shape(value, root)
        elif isinstance(value, list):
            out[key] = [_shape(v, root) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def breaking_changes(
    old: Schema,
    new: Schema,
    *,
    path: str = "",
    old_root: Schema | None = None,
    new_root: Schema | None = None,
) -> list[str]:
    old_root = old_root if old_root is not None else old
    new_root = new_root if new_root is not None else new
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems: list[str] = []
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name, old_prop in old_props.items():
        where = f"{path}.{name}" if path else name
        if name not in new_props:
            problems.append(f"{where}: removed")
            continue
        if (name in old_req) != (name in new_req):
            problems.append(f"{where}: required changed")
        new_prop = new_props[name]
        old_shape, new_shape = _resolve(old_prop, old_root), _resolve(new_prop, new_root)
        if "properties" in old_shape and "properties" in new_shape:
            problems += breaking_changes(
                old_shape, new_shape, path=where, old_root=old_root, new_root=new_root
            )
        elif _shape(old_prop, old_root) != _shape(new_prop, new_root):
            problems.append(f"{where}: type changed")
    for name in new_props.keys() - old_props.keys():
        if name in new_req:
            problems.append(f"{path + '.' if path else ''}{name}: new field is required")
    return problems
