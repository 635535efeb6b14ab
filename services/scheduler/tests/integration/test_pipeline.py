"""The scheduler's pipeline on the real broker: the catalog's event on catalog.project.v1 and
the deployer's on deployer.deployment.v1 are consumed (inbox) into a timer; the timer loop
fires it; the relay publishes the command on scheduler.command.v1, where the deployer reads
it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer

from services.scheduler.tests.integration.conftest import Catalog, HandClock
from slipway_contracts import TOPICS, Envelope
from slipway_contracts.events.catalog import GIT_CREDENTIAL_TOPIC, PROJECT_TOPIC
from slipway_contracts.events.deployer import DEPLOYMENT_TOPIC
from slipway_contracts.events.scheduler import COMMANDS_TOPIC
from slipway_libs.bus import consuming, delete_topics, ensure_topics
from slipway_libs.testing.pipeline import read_topic, running_relay, wait_until
from slipway_scheduler.events.subscribers import CATALOG_GROUP, DEPLOYMENTS_GROUP, consumers
from slipway_scheduler.worker import TimerLoop

pytestmark = pytest.mark.integration


async def test_a_catalog_event_becomes_a_command_on_the_topic(scheduler_db, devstack) -> None:
    dsn, pool = scheduler_db
    kafka = devstack.kafka
    prefix = f"t{secrets.token_hex(4)}."
    specs = [
        replace(t, name=prefix + t.name)
        for t in TOPICS
        # every topic the scheduler's consumers read, and its commands'
        if t.name in (PROJECT_TOPIC, GIT_CREDENTIAL_TOPIC, DEPLOYMENT_TOPIC, COMMANDS_TOPIC)
    ]
    await ensure_topics(kafka, specs)
    clock = HandClock()
    catalog, job = Catalog(), uuid.uuid4()
    loop = TimerLoop(pool, dsn, clock, batch_size=50, poll_s=0.2)
    try:
        async with (
            consuming(
                kafka, pool, consumers(clock), client_id="test-scheduler", topic_prefix=prefix
            ),
            running_relay(dsn, kafka, topic_prefix=prefix),
        ):
            timers = asyncio.create_task(loop.run())
            try:
                event = catalog.cron_job(job, "*/10 * * * *", "Europe/Paris")
                deployed = catalog.service_status(job)
                producer = AIOKafkaProducer(**kafka.options(), acks="all")
                await producer.start()
                try:
                    await producer.send_and_wait(
                        prefix + PROJECT_TOPIC, event.to_json(), key=event.subject.encode()
                    )
                    await producer.send_and_wait(
                        prefix + DEPLOYMENT_TOPIC, deployed.to_json(), key=deployed.subject.encode()
                    )
                finally:
                    await producer.stop()

                async def armed() -> bool:
                    async with pool.acquire() as conn:
                        return bool(
                            await conn.fetchval(
                                "SELECT count(*) FROM timers WHERE target_id = $1", job
                            )
                        )

                await wait_until(armed, timeout_s=60)
                clock.advance(minutes=10)  # 09:10 UTC is due
                records = await read_topic(kafka, prefix + COMMANDS_TOPIC, 1, timeout_s=60)
            finally:
                timers.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timers
    finally:
        dead_letters = [f"{prefix}dlq.{g}" for g in (CATALOG_GROUP, DEPLOYMENTS_GROUP)]
        await delete_topics(kafka, [s.name for s in specs] + dead_letters)

    assert len(records) == 1, records
    command = Envelope.from_json(records[0].value)
    assert command.type == "scheduler.JobRunRequested"
    assert command.source == "scheduler"
    assert command.organization_id == catalog.organization_id
    assert command.data["service_id"] == str(job)
    assert command.data["scheduled_at"] == "2026-01-05T09:10:00Z"
    assert records[0].key == str(catalog.environment_id).encode()
