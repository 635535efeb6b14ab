"""The Kafka side: topics applied at start-up, the FastStream broker, subscribers, dead letters.

Every subscriber is a FastStream *batch* subscriber with an explicit ``group_id`` and
``AckPolicy.MANUAL``: offsets are committed by us, after the inbox transaction committed (the
Kafka default would commit first, which is at-most-once). Auto-commit is off.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from slipway_contracts.topics import TopicSpec, dead_letter_spec, dead_letter_topic
from slipway_libs.inbox import Handler, InboxConsumer, Record, dead_letter_value
from slipway_libs.settings import KafkaConnection

log = structlog.get_logger(__name__)


def broker_security(kafka: KafkaConnection) -> BaseSecurity | None:
    """FastStream's form of the connection's SASL principal (SASL_PLAINTEXT: no TLS)."""
    if kafka.username is None:
        return None
    scram = SASLScram512 if kafka.mechanism == "SCRAM-SHA-512" else SASLScram256
    return scram(kafka.username, kafka.password or "", use_ssl=False)


def make_broker(kafka: KafkaConnection, *, client_id: str) -> KafkaBroker:
    """The process's FastStream broker; its producer is idempotent with acks=all."""
    return KafkaBroker(
        kafka.bootstrap_servers,
        security=broker_security(kafka),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15000,
        logger=None,
    )


async def ensure_topics(kafka: KafkaConnection, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet (never alters or deletes); returns those created.
    A principal sees only the topics it may describe: it ensures only topics it may create."""
    admin = AIOKafkaAdminClient(**kafka.options(), client_id="slipway-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:
            try:
                await admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.config())]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("kafka.topics_created", topics=created)
        return created
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaConnection, names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(**kafka.options(), client_id="slipway-topics")
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics(list(names))
    finally:
        await admin.close()


class KafkaDeadLetters:
    """Sends a failed record to ``<prefix>dlq.<group>`` and waits for the broker's
    acknowledgement (``group_id`` arrives with the prefix, as the consumer knows it)."""

    def __init__(self, producer: AIOKafkaProducer, topic_prefix: str = "") -> None:
        self._producer = producer
        self._prefix = topic_prefix

    def topic(self, group_id: str) -> str:
        return self._prefix + dead_letter_topic(group_id.removeprefix(self._prefix))

    async def send(self, record: Record, *, group_id: str, reason: str) -> None:
        await self._producer.send_and_wait(
            self.topic(group_id),
            value=dead_letter_value(record, group_id=group_id, reason=reason),
            key=record.key,
            headers=[*list(record.headers or ()), ("dlq_reason", reason.encode()[:1000])],
        )


def dead_letter_topics(groups: Iterable[str], topic_prefix: str = "") -> list[TopicSpec]:
    specs = [dead_letter_spec(g) for g in groups]
    return [replace(s, name=topic_prefix + s.name) for s in specs]


def subscribe(
    broker: KafkaBroker, consumer: InboxConsumer, topics: Sequence[str], *, max_records: int = 500
) -> None:
    """Attach an inbox consumer to the broker as a batch subscriber with manual commits."""

    @broker.subscriber(
        *topics,
        group_id=consumer.group_id,
        batch=True,
        max_records=max_records,
        # FastStream sleeps this long again after an empty poll: keep it short, it is the
        # latency an idle consumer adds to the next event
        batch_timeout_ms=20,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_batch(message: KafkaMessage = Context("message")) -> None:  # noqa: B008
        raw = message.raw_message
        records = list(raw) if isinstance(raw, tuple) else [raw]
        try:
            await consumer.process(records)
        except BaseException:
            await message.nack()  # rewind: nothing after the unprocessed records gets committed
            raise
        await message.ack()


@dataclass(frozen=True, kw_only=True)
class ConsumerSpec:
    """One consumer group: the topics it reads and a handler per event type it cares about."""

    group_id: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler]


@contextlib.asynccontextmanager
async def consuming(
    kafka: KafkaConnection,
    pool: asyncpg.Pool,
    specs: Sequence[ConsumerSpec],
    *,
    client_id: str,
    max_retries: int = 5,
    backoff_s: float = 0.2,
    batch_size: int = 500,
    topic_prefix: str = "",
) -> AsyncIterator[list[InboxConsumer]]:
    """Run inbox consumers for ``specs`` (dead-letter topics created first) until the block ends.

    ``topic_prefix`` is prepended to the topics and the consumer groups (and so to the
    dead-letter topics and the groups recorded in the inbox).
    """
    await ensure_topics(kafka, dead_letter_topics((s.group_id for s in specs), topic_prefix))
    dlq = AIOKafkaProducer(
        **kafka.options(),
        client_id=f"{client_id}-dlq",
        acks="all",
        enable_idempotence=True,
    )
    await dlq.start()
    broker = make_broker(kafka, client_id=client_id)
    consumers = []
    for spec in specs:
        consumer = InboxConsumer(
            group_id=topic_prefix + spec.group_id,
            pool=pool,
            handlers=spec.handlers,
            dead_letters=KafkaDeadLetters(dlq, topic_prefix),
            max_retries=max_retries,
            backoff_s=backoff_s,
        )
        topics = [topic_prefix + t for t in spec.topics]
        subscribe(broker, consumer, topics, max_records=batch_size)
        consumers.append(consumer)
    try:
        await broker.start()
        yield consumers
    finally:
        await broker.stop()
        await dlq.stop()
