"""Running one deployment: its stages in order, the services of a stage in parallel (up to a
limit), each step with a timeout and a stable reason when it fails.

Level-triggered: what is done is recorded in the database as it happens (stage and service runs),
so a deployer that died mid-way resumes the deployment where it stood — a service already DONE is
not touched again, a build already asked for is awaited rather than asked again, a service caught
mid-apply is applied again (``apply`` replaces, so nothing runs twice).

DEPLOY asks the builder for every image it needs at the start (builds overlap the earlier stages),
then waits for each service's image when its stage comes. A failure stops the deployment: the
stage is ERROR, later stages SKIPPED, builds still running are canceled. A cancel (the user's)
stops the work in progress and marks what is left CANCELED; the services already deployed stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from slipway_contracts.events import deployer as ev
from slipway_deployer.adapters.runtime import (
    Charts,
    EnvironmentScoped,
    FailureReason,
    RunStatus,
    RuntimeFailure,
)
from slipway_deployer.adapters.runtime.registry import Placement
from slipway_deployer.db import queries as q
from slipway_deployer.domain import plan as p
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.deployments import Deployment, ServiceRun, StageRun
from slipway_deployer.usecases import git_credentials, planning, progress, steps, workloads
from slipway_libs import outbox
from slipway_libs.db import transaction
from slipway_libs.telemetry import context_from, tracer

log = structlog.get_logger(__name__)
A, E, S = sm.Action, sm.Event, sm.State
BUILD_CHANNEL = "deployer_builds"


@dataclass
class Execution:
    tools: steps.Tools
    deployment: Deployment
    canceling: bool = False
    started: float = field(default_factory=time.monotonic)
    outputs: dict[str, str] = field(default_factory=dict)
    # the environment's cluster's runtime, chosen when the stages start (``_run``)
    where: Placement | None = None

    @property
    def id(self) -> uuid.UUID:
        return self.deployment.id

    @property
    def action(self) -> sm.Action:
        return sm.Action(self.deployment.action)

    @property
    def snapshot(self) -> dict[str, Any]:
        """What it acts on: set when it is planned (only a planned deployment runs its stages)."""
        snapshot = self.deployment.snapshot
        assert snapshot is not None, "a deployment runs its stages once planned"
        return snapshot

    def tx(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        return transaction(self.tools.pool)

    async def run(self) -> None:
        """Within the trace of the request that asked for it (a resumed one too)."""
        carrier = self.deployment.trace_carrier or {}
        with tracer().start_as_current_span(
            "deployment.run",
            context=context_from(carrier),
            attributes={"deployment.id": str(self.id), "deployment.action": self.action.value},
        ):
            await self._run_to_the_end()

    async def _run_to_the_end(self) -> None:
        log.info("deployment.run", deployment_id=str(self.id), action=self.action)
        try:
            async with asyncio.timeout(self.tools.settings.deployment_timeout_s):
                # found CANCELING (after a restart, or by its plan): only the ending is left
                if not self.canceling and not await self._planned():
                    return  # refused at its start: it ended there (and `else` does not run)
                if not self.canceling:
                    await self._run()
        except TimeoutError:
            await self._fail(steps.StepFailed("TIMEOUT", "the deployment took too long"))
        except steps.StepFailed as failure:
            await self._fail(failure)
        except asyncio.CancelledError:
            if not self.canceling:
                raise  # the deployer is stopping: the deployment resumes when it is back
            await self._canceled()
        except Exception as exc:  # the deployment must end, whatever broke
            log.exception("deployment.crashed", deployment_id=str(self.id))
            await self._fail(steps.StepFailed("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"))
        else:
            await (self._canceled() if self.canceling else self._succeeded())

    async def _planned(self) -> bool:
        """Plan a deployment the worker has just claimed (or one resumed unplanned). False when
        it cannot run: it ended ERROR."""
        if self.deployment.planned_at is not None:
            return True
        with tracer().start_as_current_span("deployment.start"):
            async with self.tx() as conn:
                self.deployment = await planning.plan(conn, self.deployment)
        self.canceling = self.deployment.status == "CANCELING"
        return self.deployment.status in ("ONGOING", "CANCELING")

    @property
    def place(self) -> Placement:
        assert self.where is not None, "the stages run once the cluster's runtime is chosen"
        return self.where

    async def _run(self) -> None:
        # first: a cluster that cannot be reached fails the deployment before any build
        try:
            self.where = await steps.placement(self.tools, self.deployment.environment_id)
        except steps.StepFailed:
            async with self.tx() as conn:  # it started, so that it can fail (QUEUED cannot)
                await progress.environment_event(conn, self.deployment, self._start_event())
            raise
        if isinstance(self.where.runtime, EnvironmentScoped):  # its namespace: once, again
            self.where.runtime.begin_deployment(str(self.deployment.environment_id))
        async with self.tx() as conn:
            stages = await q.stages(conn, self.id)
            runs = {r.service_id: r for r in await q.service_runs(conn, self.id)}
            self.outputs = workloads.open_outputs(
                await q.job_outputs(conn, self.deployment.environment_id), self.tools.at_rest
            )
        items = {i.id: i for i in _items(self.snapshot)}
        if self.action is A.DEPLOY:
            await self._request_builds(runs, items)
        for stage in stages:
            if stage.status == "DONE":
                continue
            members = [items[r.service_id] for r in runs.values() if r.position == stage.position]
            await self._stage(stage, members, runs)
        if self.action is A.DELETE and not self.deployment.service_ids:
            await self._delete_environment()

    # -- stages ------------------------------------------------------------------------------

    async def _stage(
        self, stage: StageRun, members: list[p.ServiceItem], runs: Mapping[uuid.UUID, ServiceRun]
    ) -> None:
        async with self.tx() as conn:
            await progress.stage_status(conn, self.deployment, stage, sm.StageStatus.ONGOING)
            await progress.deploy_log(conn, self.deployment, f"Stage {stage.name} started")
        limit = asyncio.Semaphore(self.tools.settings.parallel_per_stage)

        async def one(item: p.ServiceItem) -> None:
            async with limit:
                await self._service(item, runs[item.id])

        try:
            async with asyncio.TaskGroup() as group:
                for item in members:
                    if runs[item.id].status != "DONE":
                        group.create_task(one(item))
        except* steps.StepFailed as failed:
            first = failed.exceptions[0]
            assert isinstance(first, steps.StepFailed)
            async with self.tx() as conn:
                await progress.stage_status(conn, self.deployment, stage, sm.StageStatus.ERROR)
            raise first from None
        async with self.tx() as conn:
            await progress.stage_status(conn, self.deployment, stage, sm.StageStatus.DONE)

    async def _service(self, item: p.ServiceItem, run: ServiceRun) -> None:
        timings: dict[str, float] = dict(run.steps)
        try:
            if self.action is A.DEPLOY:
                await self._deploy(item, run, timings)
            elif self.action is A.STOP:
                await self._stop(item, timings)
            elif self.action is A.RESTART:
                await self._restart(item, timings)
            else:
                await self._delete(item, timings)
        except steps.StepFailed as failure:
            await self._service_failed(item, failure, timings)
            raise
        except RuntimeFailure as exc:
            message = exc.message
            if exc.reason is FailureReason.CLUSTER_UNREACHABLE:  # lost mid-way: name it
                message = f"{self.place.describe()} cannot be reached: {message}"
            step = steps.StepFailed(exc.reason.value, message)
            await self._service_failed(item, step, timings)
            raise step from None

    async def _service_failed(
        self, item: p.ServiceItem, failure: steps.StepFailed, timings: dict[str, float]
    ) -> None:
        event = {
            A.DEPLOY: E.BUILD_FAILED if failure.build else E.DEPLOY_FAILED,
            A.STOP: E.STOP_FAILED,
            A.RESTART: E.RESTART_FAILED,
            A.DELETE: E.DELETE_FAILED,
        }[self.action]
        async with self.tx() as conn:
            await q.update_service_run(
                conn,
                self.id,
                item.id,
                status="ERROR",
                reason=failure.reason,
                message=failure.message[:2000],
                steps=timings,
                finished_at=datetime.now(UTC),
            )
            await progress.service_event(
                conn, self.deployment, item.id, event, message=failure.message[:500]
            )
            await progress.deploy_log(
                conn,
                self.deployment,
                f"{item.name}: {failure.reason}: {failure.message}",
                service_id=item.id,
            )

    # -- DEPLOY ------------------------------------------------------------------------------

    async def _request_builds(
        self, runs: dict[uuid.UUID, ServiceRun], items: Mapping[uuid.UUID, p.ServiceItem]
    ) -> None:
        images = self.snapshot.get("images", {})
        needed = [
            items[sid]
            for sid, run in runs.items()
            if items[sid].needs_build and run.build_id is None and str(sid) not in images
        ]
        if not needed:
            return
        async with self.tx() as conn:
            for item in needed:
                runs[item.id] = await self._request_build(conn, item)
            await progress.environment_event(conn, self.deployment, E.START_BUILD)

    async def _request_build(self, conn: asyncpg.Connection, item: p.ServiceItem) -> ServiceRun:
        build_id = uuid.uuid4()
        git = dict(item.spec["git"])
        if self.deployment.version and self.deployment.service_ids:
            git["commit"] = self.deployment.version  # deploy one service at a commit
        # a private repository: the organization's credential, sealed for this build only
        secrets = await git_credentials.for_build(
            conn,
            self.tools.transport,
            org_id=self.deployment.organization_id,
            url=str(git.get("url") or ""),
            build_id=build_id,
        )
        await outbox.publish(
            conn,
            ev.BuildRequested(
                build_id=build_id,
                organization_id=self.deployment.organization_id,
                environment_id=self.deployment.environment_id,
                service_id=item.id,
                deployment_id=self.id,
                source=ev.GitSourceSpec.model_validate(git),
                build_args=git.get("build_args") or {},
                image_repository=p.image_repository(self.deployment.organization_id, item.id),
                **secrets,
            ),
            subject=str(build_id),
            source=progress.SOURCE,
            organization_id=self.deployment.organization_id,
        )
        await progress.service_event(conn, self.deployment, item.id, E.START_BUILD)
        await progress.deploy_log(
            conn,
            self.deployment,
            f"{item.name}: build requested ({git.get('branch')})",
            service_id=item.id,
        )
        return await q.update_service_run(
            conn,
            self.id,
            item.id,
            status="BUILDING",
            build_id=build_id,
            build_status="REQUESTED",
            started_at=datetime.now(UTC),
        )

    async def _deploy(
        self, item: p.ServiceItem, run: ServiceRun, timings: dict[str, float]
    ) -> None:
        image = await self._image(item, run, timings)
        async with self.tx() as conn:
            await q.update_service_run(
                conn,
                self.id,
                item.id,
                status="DEPLOYING",
                image=image,
                started_at=run.started_at or datetime.now(UTC),
            )
            await progress.environment_event(conn, self.deployment, E.START_DEPLOY)
            await progress.service_event(conn, self.deployment, item.id, E.START_DEPLOY)
        started = time.monotonic()
        outcome = await self._deploy_kind(item, image)
        if outcome.waited_s:
            timings["wait"] = round(outcome.waited_s, 3)  # for a runtime slot
        timings["deploy"] = round(time.monotonic() - started - outcome.waited_s, 3)
        async with self.tx() as conn:
            await q.update_service_run(
                conn, self.id, item.id, status="DONE", steps=timings, finished_at=datetime.now(UTC)
            )
            await progress.service_event(
                conn,
                self.deployment,
                item.id,
                E.DEPLOY_SUCCEEDED,
                running_status=outcome.running_status,
                urls=outcome.urls,
                deployed_config=self._digest(item),
                deployed_image=image,
            )
            await progress.deploy_log(
                conn,
                self.deployment,
                f"{item.name}: deployed {outcome.summary}",
                service_id=item.id,
            )

    async def _image(
        self, item: p.ServiceItem, run: ServiceRun, timings: dict[str, float]
    ) -> str | None:
        images = self.snapshot.get("images", {})
        if str(item.id) in images:
            return str(images[str(item.id)])
        if item.needs_build:
            return await self._await_build(item, run, timings)
        if item.spec.get("image"):
            version = self.deployment.version if self.deployment.service_ids else None
            return p.image_reference(item.spec, version)
        return None

    async def _await_build(
        self, item: p.ServiceItem, run: ServiceRun, timings: dict[str, float]
    ) -> str:
        build_id = run.build_id
        if build_id is None:  # resumed before the request was recorded
            async with self.tx() as conn:
                run = await self._request_build(conn, item)
            build_id = run.build_id
        started = time.monotonic()
        deadline = started + self.tools.settings.build_timeout_s
        while True:
            async with self.tools.pool.acquire() as conn:
                current = await q.service_run(conn, self.id, item.id)
            assert current is not None, "a service run is never deleted"
            status = current.build_status
            if status == "SUCCEEDED":
                image = str(current.image)  # a build that succeeded names its image
                timings.setdefault("build", round(time.monotonic() - started, 3))
                await self._record_image(item, image)
                return image
            if status in ("FAILED", "CANCELED"):
                raise steps.StepFailed(
                    "BUILD_FAILED" if status == "FAILED" else "BUILD_CANCELED",
                    current.message or f"the build of {item.name} did not succeed",
                    build=True,
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise steps.StepFailed(
                    "TIMEOUT", f"the build of {item.name} took too long", build=True
                )
            await self.tools.signals.wait(str(build_id), timeout_s=min(remaining, 1.0))

    async def _record_image(self, item: p.ServiceItem, image: str) -> None:
        """Images go into the snapshot, so deploying it again (rollback) builds nothing."""
        async with self.tx() as conn:
            snapshot = await q.snapshot_image(conn, self.id, item.id, image)
        self.deployment = dataclasses.replace(self.deployment, snapshot=snapshot)

    async def _deploy_kind(self, item: p.ServiceItem, image: str | None) -> steps.Outcome:
        if item.kind in p.LONG_RUNNING or (item.kind == p.LIFECYCLE and "start" in item.triggers):
            assert image is not None  # applications are built, the others name their image
            delivery = await self._env(item)
            if item.kind == p.LIFECYCLE:
                return await steps.run_job(
                    self.tools, self.place, self.deployment, item, image, delivery, self.outputs
                )
            return await steps.start_service(
                self.tools, self.place, self.deployment, item, image, delivery
            )
        if item.kind == p.DATABASE:
            return await steps.start_database(self.tools, self.place, self.deployment, item)
        if item.kind == p.LIFECYCLE:
            return steps.Outcome(None, [], "(runs on " + ", ".join(sorted(item.triggers)) + ")")
        if item.kind == p.CRONJOB:
            if self._cluster_cron(item):  # the cluster schedules it: a CronJob, applied now
                assert image is not None
                return await steps.start_service(
                    self.tools, self.place, self.deployment, item, image, await self._env(item)
                )
            return steps.Outcome(None, [], f"(runs on schedule {item.spec.get('schedule')})")
        if item.kind == p.HELM:
            return await steps.install_chart(
                self.tools, self.place, self.deployment, item, await self._env(item)
            )
        hint = "; use a Kubernetes cluster" if self.place.kind == "local" else " yet"
        raise steps.StepFailed(
            "KIND_NOT_SUPPORTED",
            f"the runtime of {self.place.describe()} does not run {item.kind} services{hint}",
        )

    def _cluster_cron(self, item: p.ServiceItem) -> bool:
        """A cron job the cluster schedules itself (a Kubernetes CronJob); on the local
        cluster the scheduler fires it and nothing runs between its runs."""
        return item.kind == p.CRONJOB and self.place.kind != "local"

    async def _env(self, item: p.ServiceItem) -> workloads.Delivery:
        return await steps.service_env(self.tools, self.snapshot, item, self.outputs)

    def _release(self, item: p.ServiceItem) -> tuple[str, str]:
        """A Helm service's release: its environment and its name."""
        name = str(item.spec.get("release_name") or item.name)
        return str(self.deployment.environment_id), name

    def _digest(self, item: p.ServiceItem) -> str:
        snapshot = self.snapshot
        svc = {"spec": item.spec}
        visible = p.visible_variables(
            snapshot.get("variables", []),
            environment_id=snapshot["environment"]["id"],
            service_id=item.id,
        )
        return p.config_digest(svc, visible)

    # -- STOP, RESTART, DELETE -------------------------------------------------------------------

    async def _stop(self, item: p.ServiceItem, timings: dict[str, float]) -> None:
        await self._begin(item, E.START_STOP)
        started = time.monotonic()
        if item.kind == p.LIFECYCLE and "stop" in item.triggers:
            await self._stop_job(item)
        elif item.kind in p.LONG_RUNNING or self._cluster_cron(item):
            await self.place.runtime.stop(str(item.id))  # a cron job: suspended
        elif item.kind == p.DATABASE:
            await self.place.databases.stop(str(item.id))
        elif item.kind == p.HELM and isinstance(self.place.runtime, Charts):
            await self.place.runtime.stop_chart(*self._release(item))
        timings["stop"] = round(time.monotonic() - started, 3)
        await self._end(
            item, E.STOP_SUCCEEDED, timings, running_status=RunStatus.STOPPED.value, urls=[]
        )

    async def _restart(self, item: p.ServiceItem, timings: dict[str, float]) -> None:
        await self._begin(item, E.START_RESTART)
        started = time.monotonic()
        running: str | None = RunStatus.RUNNING.value
        if item.kind in p.LONG_RUNNING:
            await steps.within(
                self.tools.settings.apply_timeout_s,
                f"{item.name} did not restart",
                self.place.runtime.restart(str(item.id)),
            )
        elif item.kind == p.DATABASE:
            await self.place.databases.restart(str(item.id))
        elif item.kind == p.HELM and isinstance(self.place.runtime, Charts):
            await self.place.runtime.restart_chart(*self._release(item))
        elif self._cluster_cron(item):
            await self.place.runtime.restart(str(item.id))  # resumed
            running = None
        else:
            running = None  # jobs have nothing running to restart
        timings["restart"] = round(time.monotonic() - started, 3)
        await self._end(item, E.RESTART_SUCCEEDED, timings, running_status=running)

    async def _delete(self, item: p.ServiceItem, timings: dict[str, float]) -> None:
        await self._begin(item, E.START_DELETE)
        started = time.monotonic()
        if item.kind == p.LIFECYCLE and "delete" in item.triggers:
            await self._stop_job(item)
        self.tools.live.forget(item.id)
        if item.kind == p.HELM and isinstance(self.place.runtime, Charts):
            # never installed elsewhere: a runtime without charts has nothing to uninstall
            await self.place.runtime.uninstall_chart(*self._release(item))
        await self.place.runtime.delete(str(item.id))
        if item.kind == p.DATABASE:
            await self.place.databases.delete(str(item.id))
            async with self.tx() as conn:
                row = await q.delete_database_instance(conn, item.id)
                if row is not None:
                    await steps.publish_connection(conn, row, self.tools.transport, "")
        timings["delete"] = round(time.monotonic() - started, 3)
        await self._end(
            item, E.DELETE_SUCCEEDED, timings, running_status=RunStatus.STOPPED.value, urls=[]
        )

    async def _delete_environment(self) -> None:
        """Its services are gone; a runtime with a place per environment removes it too."""
        runtime = self.place.runtime
        if not isinstance(runtime, EnvironmentScoped):
            return
        try:
            await steps.within(
                self.tools.settings.apply_timeout_s,
                "the environment's namespace was not removed",
                runtime.delete_environment(str(self.deployment.environment_id)),
            )
        except RuntimeFailure as exc:
            raise steps.StepFailed(exc.reason.value, exc.message) from None

    async def _stop_job(self, item: p.ServiceItem) -> None:
        """A lifecycle job that runs when its environment stops or is deleted."""
        image = self._snapshot_image(item)
        delivery = await self._env(item)
        await steps.run_job(
            self.tools, self.place, self.deployment, item, image, delivery, self.outputs
        )

    def _snapshot_image(self, item: p.ServiceItem) -> str:
        image = self.snapshot.get("images", {}).get(str(item.id))
        if image is None and item.spec.get("image"):
            return p.image_reference(item.spec)
        if image is None:
            raise steps.StepFailed("IMAGE_UNKNOWN", f"{item.name} was never built: deploy it first")
        return str(image)

    async def _begin(self, item: p.ServiceItem, event: sm.Event) -> None:
        async with self.tx() as conn:
            await q.update_service_run(
                conn, self.id, item.id, status="DEPLOYING", started_at=datetime.now(UTC)
            )
            await progress.environment_event(conn, self.deployment, event)
            await progress.service_event(conn, self.deployment, item.id, event)

    async def _end(
        self,
        item: p.ServiceItem,
        event: sm.Event,
        timings: dict[str, float],
        *,
        running_status: str | None = None,
        urls: list[str] | None = None,
    ) -> None:
        async with self.tx() as conn:
            await q.update_service_run(
                conn, self.id, item.id, status="DONE", steps=timings, finished_at=datetime.now(UTC)
            )
            await progress.service_event(
                conn, self.deployment, item.id, event, running_status=running_status, urls=urls
            )

    # -- endings -----------------------------------------------------------------------------

    async def _succeeded(self) -> None:
        event = {
            A.DEPLOY: E.DEPLOY_SUCCEEDED,
            A.STOP: E.STOP_SUCCEEDED,
            A.RESTART: E.RESTART_SUCCEEDED,
            A.DELETE: E.DELETE_SUCCEEDED,
        }[self.action]
        async with self.tx() as conn:
            await progress.environment_event(conn, self.deployment, self._start_event())
            await progress.environment_event(conn, self.deployment, event)
            if self.deployment.service_ids and self.action in (A.STOP, A.DELETE):
                await progress.environment_still_runs(conn, self.deployment)
            if self.action is A.DELETE and not self.deployment.service_ids:
                await q.forget_environment(conn, self.deployment.environment_id)
            await self._finish(conn, "SUCCESS", None, None)
            await progress.publish(
                conn,
                self.deployment,
                ev.DeploymentSucceeded(**progress.ids(self.deployment), duration_s=self._elapsed()),
            )

    def _start_event(self) -> sm.Event:
        """Reaching the end of an empty plan still goes through the running state."""
        return {
            A.DEPLOY: E.START_DEPLOY,
            A.STOP: E.START_STOP,
            A.RESTART: E.START_RESTART,
            A.DELETE: E.START_DELETE,
        }[self.action]

    async def _fail(self, failure: steps.StepFailed) -> None:
        log.warning("deployment.failed", deployment_id=str(self.id), reason=failure.reason)
        async with self.tx() as conn:
            await self._close_leftovers(conn, "SKIPPED")
            event = E.TIMEOUT if failure.reason == "TIMEOUT" else self._failure_event(failure)
            await progress.environment_event(conn, self.deployment, event)
            await self._finish(conn, "ERROR", failure.reason, failure.message[:2000])
            await progress.deploy_log(
                conn, self.deployment, f"Deployment failed: {failure.reason}: {failure.message}"
            )
            await progress.publish(
                conn,
                self.deployment,
                ev.DeploymentFailed(
                    **progress.ids(self.deployment),
                    reason=failure.reason,
                    message=failure.message[:2000],
                    duration_s=self._elapsed(),
                ),
            )
        await self._cancel_builds()

    def _failure_event(self, failure: steps.StepFailed) -> sm.Event:
        if self.action is A.DEPLOY:
            return E.BUILD_FAILED if failure.build else E.DEPLOY_FAILED
        return {A.STOP: E.STOP_FAILED, A.RESTART: E.RESTART_FAILED, A.DELETE: E.DELETE_FAILED}[
            self.action
        ]

    async def _canceled(self) -> None:
        log.info("deployment.canceled", deployment_id=str(self.id))
        await self._cancel_builds()
        async with self.tx() as conn:
            await self._close_leftovers(conn, "CANCELED")
            await progress.environment_event(conn, self.deployment, E.CANCELED)
            await self._finish(conn, "CANCELED", "CANCELED", "canceled by a user")
            await progress.deploy_log(conn, self.deployment, "Deployment canceled")
            await progress.publish(
                conn,
                self.deployment,
                ev.DeploymentCanceled(**progress.ids(self.deployment), duration_s=self._elapsed()),
            )

    async def _close_leftovers(self, conn: asyncpg.Connection, status: str) -> None:
        """Stages and services that did not run: SKIPPED after a failure, CANCELED on cancel."""
        for stage in await q.stages(conn, self.id):
            if stage.status == "QUEUED" or (status == "CANCELED" and stage.status == "ONGOING"):
                await progress.stage_status(conn, self.deployment, stage, sm.StageStatus(status))
        for run in await q.service_runs(conn, self.id):
            if run.status in ("QUEUED", "BUILDING", "DEPLOYING"):
                await q.update_service_run(
                    conn, self.id, run.service_id, status=status, finished_at=datetime.now(UTC)
                )
                if status == "CANCELED":
                    await progress.service_event(
                        conn, self.deployment, run.service_id, E.CANCEL_REQUESTED
                    )
                    await progress.service_event(conn, self.deployment, run.service_id, E.CANCELED)
                else:
                    await self._settle_skipped(conn, run)

    async def _settle_skipped(self, conn: asyncpg.Connection, run: ServiceRun) -> None:
        """A skipped service goes back to where it was before this deployment queued it."""
        status = await q.service_status(conn, run.service_id)
        if status is not None and sm.is_busy(S(status.state)):
            await progress.service_event(conn, self.deployment, run.service_id, E.CANCEL_REQUESTED)
            await progress.service_event(conn, self.deployment, run.service_id, E.CANCELED)

    async def _cancel_builds(self) -> None:
        async with self.tx() as conn:
            for run in await q.service_runs(conn, self.id):
                if run.build_id and run.build_status in ("REQUESTED", "QUEUED", "STARTED"):
                    await outbox.publish(
                        conn,
                        ev.BuildCancelRequested(
                            build_id=run.build_id,
                            organization_id=self.deployment.organization_id,
                        ),
                        subject=str(run.build_id),
                        source=progress.SOURCE,
                        organization_id=self.deployment.organization_id,
                    )

    async def _finish(
        self, conn: asyncpg.Connection, status: str, reason: str | None, message: str | None
    ) -> None:
        self.deployment = await q.update_deployment(
            conn,
            self.id,
            status=status,
            reason=reason,
            message=message,
            finished_at=datetime.now(UTC),
        )
        await q.notify(conn, "deployer_queue", str(self.id))  # the next request may start

    def _elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)


def _items(snapshot: Mapping[str, Any]) -> list[p.ServiceItem]:
    return [item for stage in p.plan(snapshot, A.DEPLOY) for item in stage.services]
