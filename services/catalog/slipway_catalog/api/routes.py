"""The catalog's internal HTTP API (the gateway authorizes first, then forwards here).

Paths mirror the public ones under ``/internal/v1``. Routes are thin: parse, open the
transaction, call a use case, shape the answer.

Safe retries and concurrent edits: every create honours an ``Idempotency-Key``
(``slipway_libs.idempotency``); every resource answers its version as ``ETag`` (and
``resource_version`` in the body), and a PATCH/PUT/DELETE with an ``If-Match`` naming an older
version answers 412 instead of overwriting or deleting the newer change (``usecases.versions``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body, Depends, Header, Query, Response

from slipway_catalog.api import answers
from slipway_catalog.api import git_credentials as git_credentials_api
from slipway_catalog.api import schemas as s
from slipway_catalog.domain.clusters import Cluster, ClusterIn, ClusterPatch
from slipway_catalog.domain.rules import DeploymentRule
from slipway_catalog.usecases import (
    clone,
    clusters,
    deletion,
    environments,
    projects,
    rules,
    services,
    stages,
    variables,
    versions,
)
from slipway_catalog.usecases import queries as reads
from slipway_catalog.usecases.clusters import ClusterProbe
from slipway_catalog.usecases.deps import Deps
from slipway_libs import db
from slipway_libs.actor import Actor, InternalCallers, actor_from, internal_guard
from slipway_libs.http import ChangesRoute
from slipway_libs.idempotency import Once
from slipway_libs.preconditions import ETAG, IF_MATCH, etag
from slipway_libs.tenancy import tenant_scope

CurrentActor = Annotated[Actor, Depends(actor_from)]
Tx = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
IfMatch = Annotated[str | None, Header(alias=IF_MATCH)]
NO_CONTENT = Response(status_code=204)


def build_router(
    pool: asyncpg.Pool, deps: Deps, probe: ClusterProbe, internal_callers: InternalCallers
) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1",
        dependencies=[Depends(internal_guard(internal_callers)), Depends(tenant_scope())],
        route_class=ChangesRoute,
    )

    tx = functools.partial(db.transaction, pool)

    @router.get("/index-snapshot")
    async def index_snapshot() -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            return {"changes": await reads.index_snapshot(conn, deps)}

    _clusters(router, tx, deps, probe)
    _projects(router, tx, deps)
    _environments(router, tx, deps)
    _services(router, tx, deps)
    _variables(router, tx, deps)
    git_credentials_api.add_routes(router, tx, deps)
    return router


def _items(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": rows, "next_cursor": None}


def _tag(body: dict[str, Any]) -> dict[str, str]:
    return {ETAG: etag(body["resource_version"])}


def _tagged(response: Response, body: dict[str, Any]) -> dict[str, Any]:
    """One resource's answer, with its version as the ETag."""
    response.headers.update(_tag(body))
    return body


def _clusters(router: APIRouter, tx: Tx, deps: Deps, probe: ClusterProbe) -> None:
    def out(row: Cluster) -> dict[str, Any]:
        return s.cluster_out(row, clusters.capabilities(deps, row))

    @router.get("/organizations/{org_id}/clusters", response_model=answers.ClusterPage)
    async def list_clusters(org_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return _items([out(r) for r in await clusters.list_for(conn, deps, org_id)])

    @router.post(
        "/organizations/{org_id}/clusters", status_code=201, response_model=answers.ClusterOut
    )
    async def create_cluster(
        org_id: uuid.UUID, body: ClusterIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return out(await clusters.create(conn, deps, actor, org_id, body))

        return await once.run(tx, work, headers=_tag)

    @router.get("/clusters/{cluster_id}", response_model=answers.ClusterOut)
    async def read_cluster(cluster_id: uuid.UUID, response: Response) -> dict[str, Any]:
        async with tx() as conn:
            return _tagged(response, out(await clusters.get(conn, cluster_id)))

    @router.patch("/clusters/{cluster_id}", response_model=answers.ClusterOut)
    async def update_cluster(
        cluster_id: uuid.UUID,
        body: ClusterPatch,
        actor: CurrentActor,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "clusters", cluster_id, if_match)
            row = await clusters.update(conn, deps, actor, cluster_id, body)
        return _tagged(response, out(row))

    @router.delete("/clusters/{cluster_id}", status_code=204)
    async def delete_cluster(
        cluster_id: uuid.UUID, actor: CurrentActor, if_match: IfMatch = None
    ) -> Response:
        async with tx() as conn:
            await versions.require(conn, "clusters", cluster_id, if_match)
            await clusters.delete(conn, deps, actor, cluster_id)
        return NO_CONTENT

    # a reason and a version only when the check has them (absent, not null, as before)
    @router.post(
        "/clusters/{cluster_id}/check",
        response_model=answers.ClusterCheckOut,
        response_model_exclude_unset=True,
    )
    async def check_cluster(cluster_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            row = await clusters.get(conn, cluster_id)
        return await clusters.check(deps, row, probe)  # no transaction held over the network


def _projects(router: APIRouter, tx: Tx, deps: Deps) -> None:
    @router.get("/organizations/{org_id}/projects", response_model=answers.ProjectPage)
    async def list_projects(org_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return _items([s.project_out(r) for r in await reads.projects_of(conn, deps, org_id)])

    @router.post(
        "/organizations/{org_id}/projects", status_code=201, response_model=answers.ProjectOut
    )
    async def create_project(
        org_id: uuid.UUID, body: s.ProjectIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            row = await projects.create(
                conn, deps, actor, org_id, name=body.name, description=body.description
            )
            return s.project_out(row)

        return await once.run(tx, work, headers=_tag)

    @router.get("/projects/{project_id}", response_model=answers.ProjectOut)
    async def read_project(project_id: uuid.UUID, response: Response) -> dict[str, Any]:
        async with tx() as conn:
            return _tagged(response, s.project_out(await projects.get(conn, project_id)))

    @router.patch("/projects/{project_id}", response_model=answers.ProjectOut)
    async def update_project(
        project_id: uuid.UUID,
        body: s.ProjectPatch,
        actor: CurrentActor,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "projects", project_id, if_match)
            row = await projects.update(
                conn, actor, project_id, name=body.name, description=body.description
            )
        return _tagged(response, s.project_out(row))

    @router.delete("/projects/{project_id}", status_code=204)
    async def delete_project(
        project_id: uuid.UUID, actor: CurrentActor, if_match: IfMatch = None
    ) -> Response:
        async with tx() as conn:
            await versions.require(conn, "projects", project_id, if_match)
            await deletion.delete_project(conn, deps, actor, project_id)
        return NO_CONTENT


def _environments(router: APIRouter, tx: Tx, deps: Deps) -> None:
    @router.get("/projects/{project_id}/environments", response_model=answers.EnvironmentPage)
    async def list_environments(project_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            rows = await reads.environments_of(conn, project_id)
        return _items([s.environment_out(r) for r in rows])

    @router.post(
        "/projects/{project_id}/environments",
        status_code=201,
        response_model=answers.EnvironmentOut,
    )
    async def create_environment(
        project_id: uuid.UUID, body: s.EnvironmentIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            row = await environments.create(
                conn, actor, project_id, name=body.name, mode=body.mode, cluster_id=body.cluster_id
            )
            return s.environment_out(row)

        return await once.run(tx, work, headers=_tag)

    @router.get("/environments/{env_id}", response_model=answers.EnvironmentOut)
    async def read_environment(env_id: uuid.UUID, response: Response) -> dict[str, Any]:
        async with tx() as conn:
            return _tagged(response, s.environment_out(await environments.get(conn, env_id)))

    @router.patch("/environments/{env_id}", response_model=answers.EnvironmentOut)
    async def update_environment(
        env_id: uuid.UUID,
        body: s.EnvironmentPatch,
        actor: CurrentActor,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "environments", env_id, if_match)
            row = await environments.update(
                conn, actor, env_id, name=body.name, mode=body.mode, cluster_id=body.cluster_id
            )
        return _tagged(response, s.environment_out(row))

    @router.delete("/environments/{env_id}", status_code=204)
    async def delete_environment(
        env_id: uuid.UUID, actor: CurrentActor, if_match: IfMatch = None
    ) -> Response:
        async with tx() as conn:
            await versions.require(conn, "environments", env_id, if_match)
            await deletion.delete_environment(conn, deps, actor, env_id)
        return NO_CONTENT

    @router.post(
        "/environments/{env_id}/clone", status_code=201, response_model=answers.EnvironmentOut
    )
    async def clone_environment(
        env_id: uuid.UUID, body: s.CloneIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            row = await clone.clone(
                conn,
                deps,
                actor,
                env_id,
                name=body.name,
                mode=body.mode,
                cluster_id=body.cluster_id,
            )
            return s.environment_out(row)

        return await once.run(tx, work, headers=_tag)

    @router.get("/environments/{env_id}/stages", response_model=answers.StagePage)
    async def list_stages(env_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return _items([s.stage_out(r) for r in await reads.stages_of(conn, env_id)])

    @router.post("/environments/{env_id}/stages", status_code=201, response_model=answers.StageOut)
    async def create_stage(
        env_id: uuid.UUID, body: s.StageIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            row = await stages.create(conn, actor, env_id, name=body.name, position=body.position)
            return s.stage_out(row)

        return await once.run(tx, work, headers=_tag)

    @router.put("/environments/{env_id}/stages/order", response_model=answers.StagePage)
    async def order_stages(
        env_id: uuid.UUID, body: s.StageOrder, actor: CurrentActor
    ) -> dict[str, Any]:
        async with tx() as conn:
            rows = await stages.set_order(conn, actor, env_id, body.stage_ids)
        return _items([s.stage_out(r) for r in rows])

    @router.patch("/stages/{stage_id}", response_model=answers.StageOut)
    async def rename_stage(
        stage_id: uuid.UUID,
        body: s.StagePatch,
        actor: CurrentActor,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "stages", stage_id, if_match)
            row = await stages.rename(conn, actor, stage_id, name=body.name)
        return _tagged(response, s.stage_out(row))

    @router.delete("/stages/{stage_id}", status_code=204)
    async def delete_stage(
        stage_id: uuid.UUID, actor: CurrentActor, if_match: IfMatch = None
    ) -> Response:
        async with tx() as conn:
            await versions.require(conn, "stages", stage_id, if_match)
            await stages.delete(conn, actor, stage_id)
        return NO_CONTENT

    @router.get("/environments/{env_id}/deployment-rule", response_model=answers.DeploymentRuleOut)
    async def read_rule(env_id: uuid.UUID, response: Response) -> dict[str, Any]:
        async with tx() as conn:
            return _tagged(response, s.rule_out(await rules.get(conn, env_id)))

    @router.put("/environments/{env_id}/deployment-rule", response_model=answers.DeploymentRuleOut)
    async def put_rule(
        env_id: uuid.UUID,
        body: DeploymentRule,
        actor: CurrentActor,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "deployment_rules", env_id, if_match)
            row = await rules.put(conn, actor, env_id, body)
        return _tagged(response, s.rule_out(row))


def _services(router: APIRouter, tx: Tx, deps: Deps) -> None:
    # Answered through the typed models (response_model): the document's per-kind schemas are
    # what the routes send, validated and filtered on the way out.
    @router.get("/environments/{env_id}/services", response_model=answers.ServicePage)
    async def list_services(env_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return _items([s.service_out(r) for r in await reads.services_of(conn, env_id)])

    @router.post(
        "/environments/{env_id}/services", status_code=201, response_model=answers.ServiceOut
    )
    async def create_service(
        env_id: uuid.UUID,
        actor: CurrentActor,
        body: Annotated[dict[str, Any], Body()],
        once: Once,
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return s.service_out(await services.create(conn, deps, actor, env_id, body))

        return await once.run(tx, work, headers=_tag)

    @router.get("/services/{service_id}", response_model=answers.ServiceOut)
    async def read_service(service_id: uuid.UUID, response: Response) -> dict[str, Any]:
        async with tx() as conn:
            return _tagged(response, s.service_out(await services.get(conn, service_id)))

    @router.patch("/services/{service_id}", response_model=answers.ServiceOut)
    async def update_service(
        service_id: uuid.UUID,
        actor: CurrentActor,
        body: Annotated[dict[str, Any], Body()],
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "services", service_id, if_match)
            row = await services.update(conn, deps, actor, service_id, body)
        return _tagged(response, s.service_out(row))

    @router.delete("/services/{service_id}", status_code=204)
    async def delete_service(
        service_id: uuid.UUID, actor: CurrentActor, if_match: IfMatch = None
    ) -> Response:
        async with tx() as conn:
            await versions.require(conn, "services", service_id, if_match)
            await deletion.delete_service(conn, deps, actor, service_id)
        return NO_CONTENT

    @router.put("/services/{service_id}/stage", response_model=answers.ServiceOut)
    async def move_service(
        service_id: uuid.UUID,
        body: s.ServiceStage,
        actor: CurrentActor,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "services", service_id, if_match)
            row = await services.move(conn, actor, service_id, body.stage_id)
        return _tagged(response, s.service_out(row))

    @router.get(
        "/services/{service_id}/variables/resolved", response_model=answers.ResolvedVariablePage
    )
    async def resolved(service_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return _items(await variables.resolved(conn, deps, service_id))


def _variables(router: APIRouter, tx: Tx, deps: Deps) -> None:
    # A secret's value is absent from every answer (not null): the routes send only the fields
    # variable_out sets (response_model_exclude_unset), not the model's default for value.
    @router.get(
        "/variables", response_model=answers.VariablePage, response_model_exclude_unset=True
    )
    async def list_variables(
        scope: Annotated[str, Query(pattern="^(project|environment|service)$")],
        parent_id: uuid.UUID,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await variables.parent(conn, scope, parent_id)
            return _items([s.variable_out(r) for r in await reads.variables_of(conn, parent_id)])

    @router.post(
        "/variables",
        status_code=201,
        response_model=answers.VariableOut,
        response_model_exclude_unset=True,
    )
    async def create_variable(
        body: s.VariableIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return s.variable_out(await variables.create(conn, deps, actor, body.model_dump()))

        return await once.run(tx, work, headers=_tag)

    @router.get(
        "/variables/{variable_id}",
        response_model=answers.VariableOut,
        response_model_exclude_unset=True,
    )
    async def read_variable(variable_id: uuid.UUID, response: Response) -> dict[str, Any]:
        async with tx() as conn:
            return _tagged(response, s.variable_out(await variables.get(conn, variable_id)))

    @router.patch(
        "/variables/{variable_id}",
        response_model=answers.VariableOut,
        response_model_exclude_unset=True,
    )
    async def update_variable(
        variable_id: uuid.UUID,
        body: s.VariablePatch,
        actor: CurrentActor,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        async with tx() as conn:
            await versions.require(conn, "variables", variable_id, if_match)
            row = await variables.update(
                conn, deps, actor, variable_id, body.model_dump(exclude_unset=True)
            )
        return _tagged(response, s.variable_out(row))

    @router.delete("/variables/{variable_id}", status_code=204)
    async def delete_variable(
        variable_id: uuid.UUID, actor: CurrentActor, if_match: IfMatch = None
    ) -> Response:
        async with tx() as conn:
            await versions.require(conn, "variables", variable_id, if_match)
            await variables.delete(conn, deps, actor, variable_id)
        return NO_CONTENT
