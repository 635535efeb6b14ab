"""The pipeline against the real PostgreSQL and the real Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import pytest

from slipway_contracts import Envelope
from slipway_libs import db, outbox, relay
from slipway_libs.errors import PermanentError
from slipway_libs.relay import OutboxRelay, producer_factory
from slipway_libs.testing.pipeline import (
    EFFECTS_DDL,
    counted,
    read_topic,
    record_effect,
    running_consumer,
    running_relay,
    wait_until,
    write_events,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_factory) -> asyncpg.Pool:
    dsn = await database_factory("pipeline")
    pool = await db.create_pool(dsn, max_size=5)
    async with pool.acquire() as conn:
        await conn.execute(EFFECTS_DDL)
    yield pool
    await pool.close()


async def test_relay_publishes_every_row_in_per_key_order_then_deletes_it(
    pool, devstack, topic_factory
) -> None:
    topic = await topic_factory(partitions=3)
    sent = []
    for batch in range(6):
        envs = [counted(f"k{i % 5}", batch * 50 + i) for i in range(50)]
        await write_events(pool, topic, envs)
        sent += envs
    async with running_relay(pool_dsn(pool), devstack.kafka):
        records = await read_topic(devstack.kafka, topic, len(sent))
        await wait_until(lambda: _outbox_empty(pool))
    got = [Envelope.from_json(r.value) for r in records]
    assert sorted(e.id for e in got) == sorted(e.id for e in sent)
    by_key = defaultdict(list)
    for env in got:
        by_key[env.subject].append(env.data["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_key.values())
    assert all(r.key.decode() == Envelope.from_json(r.value).subject for r in records)


async def test_full_batches_read_ahead_and_deleted_aside_publish_every_row_once_in_order(
    pool, devstack, topic_factory
) -> None:
    """Batches of 40: each next one is read while Kafka acknowledges the one before, and
    deleted on another connection while the next is sent. A row sent but not yet deleted is
    never read again: the topic holds every row exactly once."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = await topic_factory(partitions=3)
    envs = [counted(f"k{i % 5}", i) for i in range(400)]
    await write_events(pool, topic, envs)
    async with running_relay(pool_dsn(pool), devstack.kafka, batch_size=40) as relaying:
        await wait_until(lambda: _outbox_empty(pool))
    assert relaying.published == 400
    records = await read_topic(devstack.kafka, topic, 400)
    reader = AIOKafkaConsumer(**devstack.kafka.options(), group_id=None)
    await reader.start()
    try:
        ends = await reader.end_offsets([TopicPartition(topic, p) for p in range(3)])
    finally:
        await reader.stop()
    assert sum(ends.values()) == 400  # nothing twice
    got = [Envelope.from_json(r.value) for r in records]
    assert sorted(e.id for e in got) == sorted(e.id for e in envs)
    by_key = defaultdict(list)
    for env in got:
        by_key[env.subject].append(env.data["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_key.values())


class _Unacknowledged:
    """A producer whose deliveries never complete, as aiokafka's can (aiokafka#1101)."""

    async def partitions_for(self, _topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, *_: object, **__: object) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    async def stop(self) -> None:
        pass


class _Batch(list[dict[str, object]]):
    def append(self, **record: object) -> bool:  # type: ignore[override]
        super().append(record)
        return True


async def test_a_batch_kafka_never_acknowledges_is_sent_again_by_a_new_producer(
    pool, devstack, topic_factory
) -> None:
    topic = await topic_factory()
    envs = [counted("k", i) for i in range(5)]
    await write_events(pool, topic, envs)
    made = 0
    real = producer_factory(devstack.kafka, client_id="test-relay")

    async def first_stuck() -> Any:
        nonlocal made
        made += 1
        return _Unacknowledged() if made == 1 else await real()

    relay = OutboxRelay(
        dsn=pool_dsn(pool), producer=first_stuck, poll_interval_s=0.2, delivery_timeout_s=1
    )
    task = asyncio.create_task(relay.run())
    try:
        records = await read_topic(devstack.kafka, topic, len(envs))
        await wait_until(lambda: _outbox_empty(pool))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert made == 2
    assert [Envelope.from_json(r.value).data["seq"] for r in records] == list(range(5))


async def test_a_row_that_committed_first_is_never_overtaken_by_an_older_transactions_row(
    pool, devstack, topic_factory
) -> None:
    """Two writers of one key, serialized (the second writes after the first committed), while
    an unrelated transaction that began between them is still running: the first row is not
    below the horizon yet, the second one (its transaction began earlier) is. Filtering rows one
    by one published the second row first (the read-your-writes test saw a deployment planned
    before the variable it waited for)."""
    topic = await topic_factory()
    older, unrelated, newer = [await pool.acquire() for _ in range(3)]
    try:
        older_tx, unrelated_tx = older.transaction(), unrelated.transaction()
        await older_tx.start()
        await older.execute("SELECT pg_current_xact_id()")  # began first (smallest xid)
        await unrelated_tx.start()
        await unrelated.execute("SELECT pg_current_xact_id()")  # began in between, runs on
        async with newer.transaction():  # began last, writes and commits first
            await outbox.append(newer, [(topic, counted("k", 1))])
        await outbox.append(older, [(topic, counted("k", 2))])
        await older_tx.commit()
        async with pool.acquire() as conn:
            held = await relay.ready_rows(conn, 10)
            committed = await conn.fetchval("SELECT count(*) FROM outbox")
        assert committed == 2
        assert held == [], "a row went out ahead of one written before it"
        async with running_relay(pool_dsn(pool), devstack.kafka):
            await unrelated_tx.commit()
            records = await read_topic(devstack.kafka, topic, 2)
    finally:
        for conn in (older, unrelated, newer):
            await pool.release(conn)
    assert [Envelope.from_json(r.value).data["seq"] for r in records] == [1, 2]


async def test_rolled_back_transaction_publishes_nothing(pool) -> None:
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.append(conn, [("t", counted("k", 1))])
            raise RuntimeError("use case failed")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_redelivered_events_are_applied_once(pool, devstack, topic_factory) -> None:
    topic = await topic_factory()
    envs = [counted("k", i) for i in range(20)]
    await write_events(pool, topic, envs)
    async with running_relay(pool_dsn(pool), devstack.kafka):
        await read_topic(devstack.kafka, topic, 20)
    from aiokafka import AIOKafkaProducer

    group = f"g-{uuid.uuid4().hex[:8]}"
    async with running_consumer(
        pool, devstack.kafka, topic, group, {"test.Counted": record_effect}
    ) as consumer:
        await wait_until(lambda: _effects(pool, 20))
        # then ten of them again, as a relay that crashed after sending would do (in later
        # batches: only the inbox can know them), and one new event on the same key, so the
        # same partition: once its effect is there, the consumer has read every copy before it
        last = counted("k", 20)
        producer = AIOKafkaProducer(**devstack.kafka.options())
        await producer.start()
        try:
            for env in [*envs[:10], last]:
                await producer.send_and_wait(topic, env.to_json(), key=env.subject.encode())
        finally:
            await producer.stop()
        await wait_until(lambda: _effect_of(pool, last))
    assert consumer.applied == 21
    assert await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects") == 21
    assert await pool.fetchval("SELECT count(*) FROM effects") == 21
    inbox = "SELECT count(*) FROM inbox WHERE consumer_group = $1"
    assert await pool.fetchval(inbox, group) == 21


async def test_poison_event_is_dead_lettered_after_retries_and_the_rest_goes_on(
    pool, devstack, topic_factory
) -> None:
    topic = await topic_factory(partitions=1)
    envs = [counted("k", i) for i in range(10)]
    poison, permanent = envs[3], envs[6]
    attempts: defaultdict[uuid.UUID, int] = defaultdict(int)

    async def handler(conn: asyncpg.Connection, env: Envelope) -> None:
        if env.id == poison.id:
            attempts[env.id] += 1
            raise RuntimeError("cannot handle this one")
        if env.id == permanent.id:
            attempts[env.id] += 1
            raise PermanentError("never valid")
        await record_effect(conn, env)

    await write_events(pool, topic, envs)
    group = f"g-{uuid.uuid4().hex[:8]}"
    async with (
        running_relay(pool_dsn(pool), devstack.kafka),
        running_consumer(
            pool,
            devstack.kafka,
            topic,
            group,
            {"test.Counted": handler},
            max_retries=2,
            backoff_s=0.01,
        ) as consumer,
    ):
        await wait_until(lambda: _effects(pool, 8))
        dead = await read_topic(devstack.kafka, f"dlq.{group}", 2)
    assert consumer.dead_lettered == 2
    # alone: a first try and 2 retries (plus, maybe, one try inside a batch before isolating it)
    assert attempts[poison.id] in (3, 4)
    # a permanent error is never retried once isolated
    assert attempts[permanent.id] in (1, 2)
    bodies = {json.loads(r.value)["event"]["id"]: json.loads(r.value) for r in dead}
    assert set(bodies) == {str(poison.id), str(permanent.id)}
    assert "cannot handle this one" in bodies[str(poison.id)]["reason"]
    seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY id")]
    assert seqs == [0, 1, 2, 4, 5, 7, 8, 9]
    outcomes = dict(
        await pool.fetch("SELECT event_id, outcome FROM inbox WHERE consumer_group = $1", group)
    )
    assert outcomes[poison.id] == "dead_lettered"


async def test_undecodable_record_is_dead_lettered(pool, devstack, topic_factory) -> None:
    from aiokafka import AIOKafkaProducer

    topic = await topic_factory(partitions=1)
    producer = AIOKafkaProducer(**devstack.kafka.options())
    await producer.start()
    await producer.send_and_wait(topic, b"{not json", key=b"k")
    good = counted("k", 1)
    await producer.send_and_wait(topic, good.to_json(), key=b"k")
    await producer.stop()
    group = f"g-{uuid.uuid4().hex[:8]}"
    async with running_consumer(
        pool, devstack.kafka, topic, group, {"test.Counted": record_effect}, backoff_s=0.01
    ):
        await wait_until(lambda: _effects(pool, 1))
        dead = await read_topic(devstack.kafka, f"dlq.{group}", 1)
    assert json.loads(dead[0].value)["raw"] == "{not json"


async def test_what_was_processed_is_committed_when_consumption_stops(
    pool, devstack, topic_factory
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = await topic_factory(partitions=3)
    envs = [counted(f"k{i % 7}", i) for i in range(60)]
    producer = AIOKafkaProducer(**devstack.kafka.options())
    await producer.start()
    try:
        sent = [await producer.send(topic, e.to_json(), key=e.subject.encode()) for e in envs]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    group = f"g-{uuid.uuid4().hex[:8]}"
    async with running_consumer(
        pool, devstack.kafka, topic, group, {"test.Counted": record_effect}
    ):
        await wait_until(lambda: _effects(pool, 60))
    # commits run in the background while consuming: leaving the block flushed the last ones
    reader = AIOKafkaConsumer(**devstack.kafka.options(), group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        ends = await reader.end_offsets(partitions)
        committed = {tp: await reader.committed(tp) for tp in partitions}
    finally:
        await reader.stop()
    assert sum(ends.values()) == 60
    assert committed == ends


def pool_dsn(pool: asyncpg.Pool) -> str:
    return pool._connect_args[0]  # the DSN the pool was created with


async def _effects(pool: asyncpg.Pool, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM effects") >= n


async def _effect_of(pool: asyncpg.Pool, envelope: Envelope) -> bool:
    return await pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", envelope.id) > 0


async def _outbox_empty(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_batch_handlers_get_runs_in_order_and_fall_back_to_one_at_a_time(
    pool, devstack, topic_factory
) -> None:
    from slipway_libs.inbox import batch

    topic = await topic_factory(partitions=1)
    envs = [counted("k", i) for i in range(30)]
    poison = envs[17]
    runs: list[int] = []

    async def insert_all(conn: asyncpg.Connection, batch_envs: list[Envelope]) -> None:
        if any(e.id == poison.id for e in batch_envs):
            raise PermanentError("poison in the run")
        runs.append(len(batch_envs))
        await conn.execute(
            "INSERT INTO effects (key, seq, event_id) SELECT * FROM"
            " unnest($1::text[], $2::int[], $3::uuid[])",
            [e.data["key"] for e in batch_envs],
            [e.data["seq"] for e in batch_envs],
            [e.id for e in batch_envs],
        )

    await write_events(pool, topic, envs[:15])  # a clean run first: written at once
    group = f"g-{uuid.uuid4().hex[:8]}"
    async with (
        running_relay(pool_dsn(pool), devstack.kafka),
        running_consumer(
            pool, devstack.kafka, topic, group, {"test.Counted": batch(insert_all)}, backoff_s=0.01
        ) as consumer,
    ):
        await wait_until(lambda: _effects(pool, 15))
        await write_events(pool, topic, envs[15:])  # then a run holding a poison event
        await wait_until(lambda: _effects(pool, 29))
        await wait_until(lambda: _dead(consumer))
    seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY id")]
    assert seqs == [i for i in range(30) if i != 17]
    assert max(runs) > 1  # whole runs were written at once


async def _dead(consumer) -> bool:
    return consumer.dead_lettered >= 1


async def test_the_relay_rides_out_its_sessions_killed_under_it(
    pool, devstack, topic_factory
) -> None:
    """PostgreSQL ends the relay's sessions again and again while it publishes (what a
    restart does to every session): the relay contends again and goes on, every row reaches
    the topic, and it never takes a dead connection's error for a bug (a deployer's process
    exited when its relay raised asyncpg's InternalClientError during a PostgreSQL outage)."""
    topic = await topic_factory(partitions=3)
    name = f"relay-{uuid.uuid4().hex[:8]}"
    dsn = f"{pool_dsn(pool)}{'&' if '?' in pool_dsn(pool) else '?'}application_name={name}"
    sent: list[Envelope] = []
    killed = 0
    async with running_relay(dsn, devstack.kafka, batch_size=20, max_backoff_s=0.2):
        for round_ in range(12):
            batch = [counted(f"k{i % 5}", round_ * 60 + i) for i in range(60)]
            await write_events(pool, topic, batch)
            sent += batch
            await asyncio.sleep(0.05 * (round_ % 4))  # at different points of its work
            killed += await pool.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM pg_stat_activity WHERE application_name = $1",
                name,
            )
        await wait_until(lambda: _outbox_empty(pool), timeout_s=60)
    # leaving running_relay raised whatever ended the relay's task: it was still running
    assert killed >= 6, killed  # the fault hit the relay's sessions, not thin air
    records = await read_topic(devstack.kafka, topic, len(sent), timeout_s=60)
    assert {Envelope.from_json(r.value).id for r in records} == {e.id for e in sent}
