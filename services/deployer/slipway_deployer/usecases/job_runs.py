"""Running the job runs queued outside deployments (``usecases.jobs``): with the image and the
configuration of the deployment that last deployed the job, variables resolved now (databases'
connections, earlier jobs' outputs), its output shown as live logs. A run interrupted by a
deployer restart ends FAILED (``WORKER_LOST``): the runtime kills leftover job processes on
adoption, so a job never runs twice at once for one request."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import structlog

from slipway_contracts.events import deployer as ev
from slipway_deployer.adapters.runtime import RuntimeFailure
from slipway_deployer.db import queries as q
from slipway_deployer.domain import plan as p
from slipway_deployer.domain.running import JobRun
from slipway_deployer.usecases import workloads
from slipway_deployer.usecases.steps import StepFailed, Tools, placement, service_env
from slipway_libs import outbox
from slipway_libs.db import transaction

log = structlog.get_logger(__name__)
SOURCE = "deployer"


class JobRunner:
    def __init__(self, tools: Tools, *, limit: int = 4) -> None:
        self.tools = tools
        self.limit = limit
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._canceled: set[uuid.UUID] = set()  # runs stopped because a newer one replaces them

    async def recover(self) -> None:
        async with transaction(self.tools.pool) as conn:
            for row in await q.running_job_runs(conn):
                if row.status == "CANCELING":  # replaced: it was to stop anyway
                    await self._finish(conn, row, "CANCELED", None, row.message, 0)
                    continue
                await self._finish(
                    conn, row, "FAILED", None, "WORKER_LOST: the deployer restarted", 0
                )

    async def claim(self) -> None:
        await self._stop_replaced()
        free = self.limit - len(self._tasks)
        if free <= 0:
            return
        async with transaction(self.tools.pool) as conn:
            rows = await q.claim_job_runs(conn, free)
        for row in rows:
            self._tasks[row.id] = asyncio.create_task(self._run(row))

    async def _stop_replaced(self) -> None:
        """Stop the runs a newer one replaces (``replace`` policy): each ends CANCELED."""
        async with self.tools.pool.acquire() as conn:
            canceling = await q.canceling_job_runs(conn)
        for run_id in canceling:
            task = self._tasks.get(run_id)
            if task is not None and run_id not in self._canceled:
                self._canceled.add(run_id)
                task.cancel()

    async def aclose(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    async def _run(self, row: JobRun) -> None:
        started = time.monotonic()
        status, code, message = "FAILED", None, None
        try:
            code = await self._execute(row)
            status = "SUCCEEDED" if code == 0 else "FAILED"
            message = None if code == 0 else f"exited with code {code}"
        except StepFailed as failure:
            message = f"{failure.reason}: {failure.message}"
        except RuntimeFailure as failure:
            message = f"{failure.reason.value}: {failure.message}"
        except asyncio.CancelledError:
            if row.id not in self._canceled:
                raise  # the worker stops: the next one's recover ends the run
            self._canceled.discard(row.id)
            status, message = "CANCELED", "replaced by a newer run"
        except Exception as exc:  # the run must end, whatever broke
            log.exception("jobs.crashed", run_id=str(row.id))
            message = f"INTERNAL_ERROR: {type(exc).__name__}"
        async with transaction(self.tools.pool) as conn:
            await self._finish(conn, row, status, code, message, time.monotonic() - started)
        self._tasks.pop(row.id, None)

    async def _execute(self, row: JobRun) -> int:
        snapshot, item, image = await self._deployed(row)
        async with self.tools.pool.acquire() as conn:
            outputs = workloads.open_outputs(
                await q.job_outputs(conn, row.environment_id), self.tools.at_rest
            )
        where = await placement(self.tools, row.environment_id)  # its cluster's, or StepFailed
        delivery = await service_env(self.tools, snapshot, item, outputs)
        work = workloads.workload(
            item,
            image=image,
            environment_id=row.environment_id,
            delivery=delivery,
            organization_id=row.organization_id,
        )
        self.tools.live.follow_job(row, item.id, where.runtime)
        timeout_s = float(item.spec.get("max_duration_s", 3600))
        result = await where.runtime.run_job(work, timeout_s=timeout_s)
        return result.exit_code

    async def _deployed(self, row: JobRun) -> tuple[Any, p.ServiceItem, str]:
        """The snapshot and image of the last successful deployment of the job."""
        async with self.tools.pool.acquire() as conn:
            history = await q.history(
                conn, row.environment_id, service_id=row.service_id, before_seq=None, limit=50
            )
        for deployment in history:
            snapshot = deployment.snapshot
            if deployment.action != "DEPLOY" or deployment.status != "SUCCESS" or not snapshot:
                continue
            for svc in p.snapshot_services(snapshot):
                if svc["id"] == str(row.service_id):
                    item = p.ServiceItem(row.service_id, svc["name"], svc["kind"], svc["spec"])
                    image = snapshot.get("images", {}).get(svc["id"])
                    if image is None and svc["spec"].get("image"):
                        image = p.image_reference(svc["spec"])
                    if image is not None:
                        return snapshot, item, str(image)
        raise StepFailed("JOB_NOT_DEPLOYED", "no successful deployment of this job")

    async def _finish(
        self,
        conn: asyncpg.Connection,
        row: JobRun,
        status: str,
        code: int | None,
        message: str | None,
        duration_s: float,
    ) -> None:
        done = await q.finish_job_run(conn, row.id, status, exit_code=code, message=message)
        await outbox.publish(
            conn,
            ev.JobRunFinished(
                run_id=done.id,
                service_id=done.service_id,
                environment_id=done.environment_id,
                organization_id=done.organization_id,
                trigger=done.trigger,
                status=status,
                exit_code=code,
                message=message,
                duration_s=round(duration_s, 3),
            ),
            subject=str(done.environment_id),
            source=SOURCE,
            organization_id=done.organization_id,
        )
