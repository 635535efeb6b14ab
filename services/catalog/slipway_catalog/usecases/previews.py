"""Pull requests' preview environments, on the scheduler's commands (``scheduler.command.v1``,
consumer group ``catalog.previews``, each in its inbox transaction).

Invariants:
- A preview is an environment of mode ``preview`` whose id the scheduler chose: the first
  ``PreviewRequested`` clones the blueprint under that id; later ones (a new push to the pull
  request) find it. An id whose environment was deleted (the pull request closed, the preview
  expired) is never brought back: the command is done.
- The blueprint's applications named by the command (those built from the pull request's
  repository) are pointed, in the preview, at the pull request's head branch and commit, with
  ``auto_deploy`` off: the pull request's events, not pushes to its branch, drive a preview.
- ``catalog.PreviewChanged`` is published last, in the same transaction, so that the deployer,
  reading the project's events in order, has the whole preview when it deploys it.
- A clone the catalog refuses (the name taken in the project, the blueprint gone) is done,
  logged: it would be refused again on every redelivery.
"""

from __future__ import annotations

import asyncpg
import structlog
from pydantic import ValidationError

from slipway_catalog.db import queries as q
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.service_specs import merge_update, parse_spec
from slipway_catalog.usecases import clone, deletion, publish
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import catalog as ev
from slipway_contracts.events import scheduler as commands
from slipway_libs.actor import Actor
from slipway_libs.errors import BusinessError

log = structlog.get_logger(__name__)

PREVIEWS = Actor(type="system", id="preview", name="pull request preview", origin="git")


async def on_requested(conn: asyncpg.Connection, deps: Deps, envelope: Envelope) -> None:
    command = REGISTRY.parse(envelope)
    assert isinstance(command, commands.PreviewRequested)
    env = await q.environment_ever(conn, command.environment_id)
    if env is None:
        env = await _create(conn, deps, command)
        if env is None:
            return
    elif env.deleted_at is not None or env.mode != "preview":
        log.info("previews.gone", environment_id=str(env.id))
        return
    await _point_at_head(conn, env, command)
    await publish.preview(
        conn,
        ev.PreviewChanged(
            environment_id=env.id,
            organization_id=env.organization_id,
            project_id=env.project_id,
            pull_request=command.pull_request,
            branch=command.branch,
            commit=command.commit,
        ),
    )
    log.info(
        "previews.updated",
        environment_id=str(env.id),
        pull_request=command.pull_request,
        commit=command.commit,
    )


async def _create(
    conn: asyncpg.Connection, deps: Deps, command: commands.PreviewRequested
) -> Environment | None:
    blueprint = await q.environment(conn, command.blueprint_environment_id)
    if blueprint is None or blueprint.organization_id != command.organization_id:
        log.info("previews.no_blueprint", blueprint=str(command.blueprint_environment_id))
        return None
    try:
        async with conn.transaction():  # a refusal leaves the inbox's transaction usable
            return await clone.clone(
                conn,
                deps,
                PREVIEWS,
                blueprint.id,
                name=command.name,
                mode="preview",
                cluster_id=None,
                env_id=command.environment_id,
            )
    except BusinessError as refused:
        log.warning(
            "previews.clone_refused",
            blueprint=str(blueprint.id),
            name=command.name,
            code=refused.code,
        )
        return None


async def _point_at_head(
    conn: asyncpg.Connection, env: Environment, command: commands.PreviewRequested
) -> None:
    """The preview's copies of the named blueprint applications (matched by name: a clone
    keeps names) build the pull request's head."""
    names = set()
    for service_id in command.service_ids:
        blueprint_service = await q.service(conn, service_id)
        if blueprint_service is not None:
            names.add(blueprint_service.name)
    for service in await q.services(conn, env.id):
        if service.kind != "application" or service.name not in names:
            continue
        try:
            spec = merge_update(
                parse_spec(service.spec),
                {"git": {"branch": command.branch, "commit": command.commit}, "auto_deploy": False},
            )
        except ValidationError as exc:  # a branch name git accepts and Slipway does not
            log.warning("previews.unusable_head", service_id=str(service.id), reason=str(exc))
            continue
        row = await q.update_service(
            conn,
            service.id,
            name=service.name,
            spec=spec.model_dump(mode="json"),
            stage_id=service.stage_id,
        )
        await publish.service(conn, row)


async def on_deletion_requested(conn: asyncpg.Connection, deps: Deps, envelope: Envelope) -> None:
    command = REGISTRY.parse(envelope)
    assert isinstance(command, commands.PreviewDeletionRequested)
    env = await q.environment(conn, command.environment_id)
    if env is None or env.mode != "preview":
        log.info("previews.nothing_to_delete", environment_id=str(command.environment_id))
        return
    await deletion.delete_environment(conn, deps, PREVIEWS, env.id)
    log.info("previews.deleted", environment_id=str(env.id), reason=command.reason)
