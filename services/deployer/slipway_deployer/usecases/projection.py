"""The deployer's projection of the catalog, from the catalog's full-state events.

Handlers run in the inbox transaction of the ``deployer.catalog`` consumer group. Each event
carries an entity's whole state and version; the row is replaced only by a newer version, so
the projection converges whatever the redeliveries (and a tombstone stays a tombstone). The
project's ``revision`` an event carries is recorded in the same transaction: a request that
names a revision is served once the projection has reached it (read-your-writes).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import catalog as ev
from slipway_deployer.adapters import catalog_revisions
from slipway_deployer.db import queries as q
from slipway_deployer.usecases import previews

# event type -> (table, how the event's fields map onto the table's columns)
_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    ev.ClusterChanged.event_type: ("catalog_clusters", {"id": "cluster_id"}),
    ev.ProjectChanged.event_type: ("catalog_projects", {"id": "project_id"}),
    ev.EnvironmentChanged.event_type: ("catalog_environments", {"id": "environment_id"}),
    ev.ServiceChanged.event_type: ("catalog_services", {"id": "service_id"}),
    ev.StageChanged.event_type: ("catalog_stages", {"id": "stage_id"}),
    ev.VariableChanged.event_type: ("catalog_variables", {"id": "variable_id"}),
}
# what the deployer.catalog consumer hands to ``apply``
EVENT_TYPES = (*_TABLES, ev.DeploymentRuleChanged.event_type, ev.PreviewChanged.event_type)


async def apply(conn: asyncpg.Connection, envelope: Envelope) -> None:
    if envelope.type == ev.PreviewChanged.event_type:
        await previews.on_preview_changed(conn, envelope)  # not state: a deploy to queue
    else:
        await _project(conn, envelope)
    revision = envelope.data.get("revision")
    if isinstance(revision, int) and envelope.organization_id is not None:
        # the project's events are keyed by the project: the subject names it
        project_id = uuid.UUID(envelope.subject)
        await catalog_revisions.record(conn, project_id, envelope.organization_id, revision)


async def _project(conn: asyncpg.Connection, envelope: Envelope) -> None:
    if envelope.type == ev.DeploymentRuleChanged.event_type:
        rule = ev.DeploymentRuleChanged.model_validate(envelope.data)
        state = {
            "environment_id": rule.environment_id,
            "organization_id": rule.organization_id,
            "version": rule.version,
            "rule": rule.model_dump(
                mode="json",
                exclude={"environment_id", "organization_id", "version", "revision"},
            ),
        }
        await q.project(conn, "catalog_rules", state)
        return
    table, renames = _TABLES[envelope.type]
    await q.project(conn, table, _state(envelope, renames))


def _state(envelope: Envelope, renames: dict[str, str]) -> dict[str, Any]:
    payload = REGISTRY.parse(envelope).model_dump()  # typed: uuids as UUID, values validated
    for column, field in renames.items():
        payload[column] = payload[field]
    return payload
