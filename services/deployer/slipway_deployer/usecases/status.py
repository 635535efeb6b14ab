"""Read views: environment and service status, deployment history and one deployment's detail."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_deployer.db import head_queries
from slipway_deployer.db import queries as q
from slipway_deployer.domain import freshness as fresh
from slipway_deployer.domain import plan as p
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.catalog import CatalogEnvironment
from slipway_deployer.domain.deployments import (
    Deployment,
    EnvironmentStatus,
    ServiceRun,
    ServiceStatus,
)
from slipway_deployer.usecases import snapshots
from slipway_deployer.usecases.requests import environment_or_404, service_or_404
from slipway_libs.errors import Missing

S = sm.State


async def environment(conn: asyncpg.Connection, env_id: uuid.UUID) -> dict[str, Any]:
    env = await environment_or_404(conn, env_id)
    status = await q.environment_status(conn, env_id)
    state = S(status.state) if status is not None else S.READY
    services = await _services(conn, env)
    last = status.last_deployment_id if status is not None else None
    current = await q.running(conn, env_id)
    queued = await q.queued(conn, env_id)
    action, action_status = sm.action_status(state, canceled_action=_canceled_action(status))
    return {
        "environment_id": str(env_id),
        "state": state.value,
        "action": action.value if action else None,
        "status": action_status.value,
        **_overall(services),
        "deployment_id": str(current.id) if current else (str(last) if last else None),
        "queued": [str(row.id) for row in queued],
        "stages": await _stages(conn, current.id if current else last),
        "services": services,
        "allowed_actions": sorted(a.value for a in sm.allowed_actions(state)),
    }


async def service(conn: asyncpg.Connection, service_id: uuid.UUID) -> dict[str, Any]:
    svc = await service_or_404(conn, service_id)
    env = await environment_or_404(conn, svc.environment_id)
    for view in await _services(conn, env):
        if view["id"] == str(service_id):
            return view
    raise AssertionError("a service of the environment is missing from its view")


def _canceled_action(status: EnvironmentStatus | ServiceStatus | None) -> sm.Action:
    action = status.last_action if status is not None else None
    return sm.Action(action) if action else sm.Action.DEPLOY


async def _services(conn: asyncpg.Connection, env: CatalogEnvironment) -> list[dict[str, Any]]:
    services = await q.services_of(conn, env.id)
    statuses = {r.service_id: r for r in await q.service_statuses(conn, env.id)}
    pushed = await head_queries.heads(conn, env.id)
    built = await head_queries.deployed_commits(conn, env.id)
    parents = [env.id, *(s.id for s in services)]
    variables = [
        snapshots.variable_entry(v)
        for v in await q.variables_visible(conn, env.project_id, parents)
    ]
    views = []
    for svc in services:
        status = statuses.get(svc.id)
        state = S(status.state) if status is not None else S.READY
        action, action_status = sm.action_status(state, canceled_action=_canceled_action(status))
        visible = p.visible_variables(variables, environment_id=env.id, service_id=svc.id)
        desired = p.config_digest({"spec": svc.spec}, visible)
        deployed = status.deployed_config if status is not None else None
        verdict = fresh.of_service(
            sm.freshness(deployed, desired), _built(built.get(svc.id)), _pushed(pushed.get(svc.id))
        )
        views.append(
            {
                "id": str(svc.id),
                "name": svc.name,
                "kind": svc.kind,
                "state": state.value,
                "action": action.value if action else None,
                "status": action_status.value,
                "running_status": status.running_status if status is not None else None,
                "urls": list(status.urls) if status is not None else [],
                "message": status.message if status is not None else None,
                "freshness": verdict.freshness.value,
                "freshness_reason": verdict.reason,
                "available_commit": verdict.available_commit,
                "deployed_commit": built[svc.id].commit if svc.id in built else None,
                "image": status.deployed_image if status is not None else None,
                "deployment_id": _str(status.last_deployment_id) if status is not None else None,
                "updated_at": status.updated_at.isoformat() if status is not None else None,
            }
        )
    return views


def _built(row: head_queries.DeployedCommit | None) -> fresh.Built | None:
    return None if row is None else fresh.Built(commit=row.commit, built_from=row.built_from)


def _pushed(row: head_queries.Head | None) -> fresh.Pushed | None:
    return None if row is None else fresh.Pushed(commit=row.commit, pushed_at=row.pushed_at)


def _overall(services: list[dict[str, Any]]) -> dict[str, Any]:
    """The environment's freshness, its reason, and the new commit available if any; the
    URLs its services answer at (a preview's status shows where to look)."""
    verdict = fresh.of_environment(
        [
            fresh.Verdict(
                sm.Freshness(s["freshness"]), s["freshness_reason"], s["available_commit"]
            )
            for s in services
        ]
    )
    return {
        "freshness": verdict.freshness.value,
        "freshness_reason": verdict.reason,
        "available_commit": verdict.available_commit,
        "urls": [url for s in services for url in s["urls"]],
    }


async def _stages(
    conn: asyncpg.Connection, deployment_id: uuid.UUID | None
) -> list[dict[str, Any]]:
    if deployment_id is None:
        return []
    runs = await q.service_runs(conn, deployment_id)
    return [
        {
            "position": stage.position,
            "stage_id": _str(stage.stage_id),
            "name": stage.name,
            "status": stage.status,
            "started_at": _iso(stage.started_at),
            "finished_at": _iso(stage.finished_at),
            "duration_s": _duration(stage.started_at, stage.finished_at),
            "services": [_run(r) for r in runs if r.position == stage.position],
        }
        for stage in await q.stages(conn, deployment_id)
    ]


def _run(row: ServiceRun) -> dict[str, Any]:
    return {
        "service_id": str(row.service_id),
        "name": row.name,
        "kind": row.kind,
        "status": row.status,
        "build_id": _str(row.build_id),
        "build_status": row.build_status,
        "image": row.image,
        "commit": row.commit,
        "reason": row.reason,
        "message": row.message,
        "steps": dict(row.steps),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
    }


async def history(
    conn: asyncpg.Connection,
    env_id: uuid.UUID,
    *,
    service_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    before = int(cursor) if cursor and cursor.isdigit() else None
    rows = await q.history(conn, env_id, service_id=service_id, before_seq=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    commits = await head_queries.commits_of(conn, [row.id for row in rows])
    return {
        "items": [{**summary(row), "commits": commits.get(row.id, [])} for row in rows],
        "next_cursor": str(rows[-1].seq) if more and rows else None,
    }


def summary(row: Deployment) -> dict[str, Any]:
    actor = row.requested_by or {}
    return {
        "id": str(row.id),
        "request_id": str(row.id),
        "environment_id": str(row.environment_id),
        "action": row.action,
        "status": row.status,
        "trigger": row.trigger,
        "triggered_by": {k: actor.get(k) for k in ("type", "id", "name", "origin") if k in actor},
        "service_ids": [str(s) for s in row.service_ids],
        "version": row.version,
        "rollback_of": _str(row.rollback_of),
        "reason": row.reason,
        "message": row.message,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "duration_s": _duration(row.started_at, row.finished_at),
    }


async def deployment_by_id(conn: asyncpg.Connection, deployment_id: uuid.UUID) -> dict[str, Any]:
    row = await q.deployment(conn, deployment_id)
    if row is None:
        raise Missing("DEPLOYMENT_NOT_FOUND", "No such deployment.")
    return await deployment(conn, row)


async def deployment_owners(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list[dict[str, str]]:
    """Which environment and organization each deployment belongs to (unknown ids: absent)."""
    return [
        {
            "id": str(r.id),
            "environment_id": str(r.environment_id),
            "organization_id": str(r.organization_id),
        }
        for r in await q.deployment_owners(conn, ids)
    ]


async def deployment(conn: asyncpg.Connection, row: Deployment) -> dict[str, Any]:
    out = summary(row)
    out["commits"] = (await head_queries.commits_of(conn, [row.id])).get(row.id, [])
    out["stages"] = await _stages(conn, row.id)
    snapshot = row.snapshot or {}
    out["snapshot"] = {
        "services": [
            {"id": s["id"], "name": s["name"], "kind": s["kind"]}
            for s in snapshot.get("services", [])
        ],
        "images": snapshot.get("images", {}),
        # which variables it deployed with, never their values
        "variables": [
            {"id": v["id"], "key": v["key"], "scope": v["scope"], "parent_id": v["parent_id"]}
            for v in snapshot.get("variables", [])
        ],
    }
    return out


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _duration(started: Any, finished: Any) -> float | None:
    if started is None or finished is None:
        return None
    return round((finished - started).total_seconds(), 3)
