"""Variables and secrets: write-only secrets sealed at rest, checked against the set each
service sees before saving, and the resolved view of a service (built-ins included)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.variables import Variable
from slipway_catalog.usecases import connections, environments, projects, publish
from slipway_catalog.usecases import services as services_uc
from slipway_catalog.usecases.deps import Deps
from slipway_contracts.variables import VariableIn
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import InvalidInput, Missing
from slipway_resolver import (
    ResolutionError,
    built_ins,
    check_can_delete,
    check_can_save,
    masked,
    resolve,
    validate_key,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Parent:
    """Where a variable hangs: its scope's entity and the project/environment/service above
    (``service`` is the service itself when the scope is one)."""

    scope: str
    org_id: uuid.UUID
    project_id: uuid.UUID
    env_id: uuid.UUID | None
    service_id: uuid.UUID | None
    service: Service | None


async def parent(conn: asyncpg.Connection, scope: str, parent_id: uuid.UUID) -> Parent:
    if scope == "project":
        project = await projects.get(conn, parent_id)
        return Parent(
            scope=scope,
            org_id=project.organization_id,
            project_id=project.id,
            env_id=None,
            service_id=None,
            service=None,
        )
    if scope == "environment":
        env = await environments.get(conn, parent_id)
        return Parent(
            scope=scope,
            org_id=env.organization_id,
            project_id=env.project_id,
            env_id=env.id,
            service_id=None,
            service=None,
        )
    if scope == "service":
        service = await services_uc.get(conn, parent_id)
        return Parent(
            scope=scope,
            org_id=service.organization_id,
            project_id=service.project_id,
            env_id=service.environment_id,
            service_id=service.id,
            service=service,
        )
    raise InvalidInput(
        "INVALID_SCOPE", "Scope must be project, environment or service.", field="scope"
    )


def _invalid(exc: ResolutionError) -> InvalidInput:
    error = InvalidInput(exc.code, exc.message, field="key")
    error.details = exc.details
    return error


def _domain(deps: Deps, row: Variable) -> VariableIn:
    value = row.value
    if row.is_secret:
        value = deps.at_rest.open(row.sealed(), aad=row.id.bytes).decode()
    return VariableIn(
        id=row.id,
        scope=row.scope,
        key=row.key,
        kind=row.kind,
        value=value or "",
        is_secret=row.is_secret,
        mount_path=row.mount_path,
    )


async def view(conn: asyncpg.Connection, deps: Deps, where: Parent) -> list[VariableIn]:
    """Everything visible from ``where`` (plus the built-ins when it is a service)."""
    rows = await q.variables_visible(
        conn, project_id=where.project_id, env_id=where.env_id, service_id=where.service_id
    )
    found = [_domain(deps, r) for r in rows]
    if where.service is not None and where.env_id is not None:
        env = await environments.get(conn, where.env_id)
        found += built_ins(
            project_id=where.project_id,
            environment={"id": env.id, "name": env.name},
            services=[s.reachable() for s in await q.services(conn, where.env_id)],
            service=where.service.reachable(),
            connections=await connections.of_environment(conn, deps, where.env_id),
        )
    return found


async def create(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, body: dict[str, Any]
) -> Variable:
    where = await parent(conn, body["scope"], body["parent_id"])
    candidate = VariableIn(
        id=uuid.uuid4(),
        scope=body["scope"],
        key=body["key"],
        kind=body["kind"],
        value=body["value"],
        is_secret=body["is_secret"],
        mount_path=body.get("mount_path"),
    )
    try:
        validate_key(candidate.key)
        check_can_save(existing=await view(conn, deps, where), candidate=candidate)
    except ResolutionError as exc:
        raise _invalid(exc) from None
    sealed = (
        deps.at_rest.seal(candidate.value.encode(), aad=candidate.id.bytes)
        if candidate.is_secret
        else None
    )
    row = await q.insert_variable(
        conn,
        variable_id=candidate.id,
        org_id=where.org_id,
        project_id=where.project_id,
        env_id=where.env_id,
        service_id=where.service_id,
        scope=candidate.scope,
        parent_id=body["parent_id"],
        key=candidate.key,
        kind=candidate.kind,
        value=None if candidate.is_secret else candidate.value,
        sealed=sealed,
        is_secret=candidate.is_secret,
        mount_path=candidate.mount_path,
        description=body.get("description", ""),
    )
    await publish.variable(conn, row, transport=deps.transport, at_rest=deps.at_rest)
    await _audit(conn, actor, row, "CREATE")
    return row


async def get(conn: asyncpg.Connection, variable_id: uuid.UUID) -> Variable:
    row = await q.variable(conn, variable_id)
    if row is None:
        raise Missing("VARIABLE_NOT_FOUND", "No such variable.")
    return row


async def update(
    conn: asyncpg.Connection,
    deps: Deps,
    actor: Actor,
    variable_id: uuid.UUID,
    patch: dict[str, Any],
) -> Variable:
    current = await get(conn, variable_id)
    where = await parent(conn, current.scope, current.parent_id)
    old = _domain(deps, current)
    candidate = old.model_copy(
        update={k: patch[k] for k in ("value", "mount_path") if patch.get(k) is not None}
    )
    try:
        check_can_save(existing=await view(conn, deps, where), candidate=candidate)
    except ResolutionError as exc:
        raise _invalid(exc) from None
    sealed = (
        deps.at_rest.seal(candidate.value.encode(), aad=variable_id.bytes)
        if candidate.is_secret
        else None
    )
    row = await q.update_variable(
        conn,
        variable_id,
        value=None if candidate.is_secret else candidate.value,
        sealed=sealed,
        mount_path=candidate.mount_path,
        description=patch.get("description") or current.description,
    )
    await publish.variable(conn, row, transport=deps.transport, at_rest=deps.at_rest)
    await _audit(conn, actor, row, "UPDATE")
    return row


async def delete(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, variable_id: uuid.UUID
) -> None:
    current = await get(conn, variable_id)
    where = await parent(conn, current.scope, current.parent_id)
    try:
        check_can_delete(existing=await view(conn, deps, where), variable_id=variable_id)
    except ResolutionError as exc:
        raise _invalid(exc) from None
    row = await q.delete_variable(conn, variable_id)
    await publish.variable(conn, row, transport=deps.transport, at_rest=deps.at_rest)
    await _audit(conn, actor, row, "DELETE")


async def resolved(
    conn: asyncpg.Connection, deps: Deps, service_id: uuid.UUID
) -> list[dict[str, Any]]:
    where = await parent(conn, "service", service_id)
    try:
        return masked(resolve(await view(conn, deps, where)))
    except ResolutionError as exc:
        raise _invalid(exc) from None


async def reseal_all(conn: asyncpg.Connection, deps: Deps) -> int:
    """After putting a new sealing key first: re-encrypt every secret variable with it (the
    databases' passwords: ``connections.reseal_all``)."""
    count = 0
    for row in await q.secret_variables(conn):
        if deps.at_rest.needs_reseal(row.sealed):
            await q.set_sealed_value(
                conn, row.owner_id, deps.at_rest.reseal(row.sealed, aad=row.owner_id.bytes)
            )
            count += 1
    return count


async def _audit(conn: asyncpg.Connection, actor: Actor, row: Variable, action: str) -> None:
    change = {
        "key": row.key,
        "scope": row.scope,
        "kind": row.kind,
        "is_secret": row.is_secret,
    }
    if not row.is_secret and action != "DELETE":
        change["value"] = row.value
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=row.organization_id,
        action=action,
        target_type="VARIABLE",
        target_id=row.id,
        target_name=row.key,
        project_id=row.project_id,
        environment_id=row.environment_id,
        change=change,
    )
