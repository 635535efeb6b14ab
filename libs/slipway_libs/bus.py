"""The Kafka side: topics applied at start-up, the FastStream broker, subscribers, dead letters.

Every subscriber is a FastStream *batch* subscriber with an explicit ``group_id`` and
``AckPolicy.MANUAL``: offsets are committed by us, after the inbox transaction committed (the
Kafka default would commit first, which is at-most-once). Auto-commit is off.

Offsets (``OffsetCommits``) are committed in the background, not awaited after every batch (the
round trip to the group coordinator was a seventh of the consumer's time). Only offsets of
records the inbox has processed are ever committed, so a crash redelivers at most the batches
processed since the last commit, which the inbox skips. Before a rebalance takes partitions away
and when consumption stops, what was processed is committed and awaited.

The subscriber's parser and decoder hand the records over as aiokafka gives them: FastStream's
own build a message object and ``json.loads`` every record, which nothing here reads (the inbox
decodes each record into an ``Envelope``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import FAKE_CONSUMER, KafkaMessage
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from slipway_contracts.topics import TopicSpec, dead_letter_spec, dead_letter_topic
from slipway_libs.inbox import Decoded, Handler, InboxConsumer, Record, dead_letter_value
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


Records = tuple[Record, ...]


class OffsetCommits:
    """The offsets of one subscriber's processed records, committed in the background.

    - ``processed`` is told about records only after the inbox returned for them (their
      transaction committed); each partition's offset is the one after its last such record.
      Records come in offset order per partition, so the offset only grows.
    - One commit at a time; offsets noted while it runs go with the next one (a later offset of
      a partition covers the earlier ones).
    - Only partitions still assigned are committed: one that was taken away is another
      member's now, and what we processed of it was committed on ``flush`` before it went.
    - A failed commit is logged, not retried: the next one carries newer offsets, and offsets
      never committed only mean a redelivery the inbox skips.
    - ``flush`` commits everything processed and waits for it: before a rebalance (the
      listener) and when consumption stops; from ``closing`` on, every batch waits for its
      own commit, as it did when all commits were awaited.
    """

    def __init__(self, group_id: str) -> None:
        self._group_id = group_id
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._running: asyncio.Task[None] | None = None
        self.closing = False

    def bind(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    def processed(self, records: Records) -> None:
        last: dict[tuple[str, int], int] = {}
        for record in records:  # a plain tuple per record, a TopicPartition per partition
            last[record.topic, record.partition] = record.offset
        for (topic, partition), offset in last.items():
            self._pending[TopicPartition(topic, partition)] = offset + 1
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._commit_pending())

    async def flush(self) -> None:
        if self._pending and (self._running is None or self._running.done()):
            self._running = asyncio.create_task(self._commit_pending())
        if self._running is not None:
            # shielded: a cancelled caller leaves the commit to finish
            await asyncio.shield(self._running)

    async def _commit_pending(self) -> None:
        while self._pending and self._consumer is not None:
            offsets, self._pending = self._pending, {}
            assigned = self._consumer.assignment()
            try:
                await self._consumer.commit(
                    {tp: offset for tp, offset in offsets.items() if tp in assigned}
                )
            except Exception as exc:  # any failure: the next commit covers it
                log.warning(
                    "inbox.offset_commit_failed",
                    group=self._group_id,
                    error=f"{type(exc).__name__}: {exc}",
                )


class OneAhead:
    """Feeds one subscriber's batches to its inbox consumer, decoding a batch while the one
    before it is applied: the database round trips of a batch overlap the decoding of the next,
    nothing else runs side by side.

    - Batches are applied one after the other, in the order they came: per-partition (so
      per-key) order holds as it did when each batch was applied inside the handler.
    - A batch's offsets are noted (``OffsetCommits.processed``) only once its apply returned.
    - When an apply fails, every partition of that batch and of the batch decoded behind it
      (which is then dropped) is rewound to its earliest record, and the failure is raised to
      FastStream like a failing handler's: nothing after an unapplied record is applied first.
    - ``settle`` waits for the apply in flight (before a rebalance, at shutdown); from
      ``commits.closing`` on, each batch is applied and committed inside its handler call.
    """

    def __init__(self, consumer: InboxConsumer, commits: OffsetCommits) -> None:
        self._consumer = consumer
        self._commits = commits
        self._applying: asyncio.Task[None] | None = None
        self._applying_records: Records = ()

    async def take(self, kafka: AIOKafkaConsumer, records: Records) -> None:
        self._commits.bind(kafka)
        try:
            decoded = await self._consumer.decode_yielding(records)
        except BaseException:  # cancelled: nothing of it was applied
            _rewind(kafka, records)
            raise
        try:
            await self.settle()
        except BaseException:
            _rewind(kafka, (*self._applying_records, *records))
            raise
        self._applying_records = records
        self._applying = asyncio.create_task(self._apply(kafka, decoded, records))
        # the apply sends its first statement before this task polls and decodes the next
        # batch: a poll that finds records buffered returns without yielding, and the whole
        # decode would otherwise run before the apply even began
        await asyncio.sleep(0)
        if self._commits.closing:
            await self.settle()
            await self._commits.flush()

    async def settle(self) -> None:
        """Wait for the apply in flight and raise what it raised. Shielded: a cancelled caller
        (the consume loop at shutdown) leaves it to finish, for the flush to wait on."""
        applying = self._applying
        if applying is None:
            return
        try:
            await asyncio.shield(applying)
        finally:
            if applying.done():  # its failure is raised once, to one caller or to several at once
                self._applying = None

    async def _apply(self, kafka: AIOKafkaConsumer, decoded: Decoded, records: Records) -> None:
        try:
            await self._consumer.apply(decoded)
        except BaseException:
            _rewind(kafka, records)
            raise
        self._commits.processed(records)


class _SettleOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Apply what is in flight and commit what was processed before the group takes partitions
    away (aiokafka awaits this after the consumer stopped fetching)."""

    def __init__(self, feed: OneAhead, commits: OffsetCommits) -> None:
        self._feed = feed
        self._commits = commits

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await _settle(self._feed, self._commits)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass


async def _settle(feed: OneAhead, commits: OffsetCommits) -> None:
    try:
        await feed.settle()
    except Exception as exc:  # rewound already; its records come again after the rebalance
        log.warning("inbox.batch_failed", error=f"{type(exc).__name__}: {exc}")
    await commits.flush()


async def _records_message(raw: Records) -> KafkaMessage:
    """The parser: a message that only holds the records (no header decoding, no json)."""
    first = raw[0] if raw else None
    message_id = f"{first.topic}-{first.partition}-{first.offset}" if first else "empty"
    return KafkaMessage(
        raw_message=raw,
        body=raw,
        message_id=message_id,
        correlation_id=message_id,
        consumer=FAKE_CONSUMER,
    )


async def _records_body(message: KafkaMessage) -> Records:
    """The decoder: the handler's argument is the records themselves."""
    raw: Any = message.raw_message
    return tuple(raw) if isinstance(raw, tuple) else (raw,)


def _rewind(consumer: AIOKafkaConsumer, records: Records) -> None:
    """Fetch the records again from the earliest of each partition: nothing after an
    unprocessed record may be processed (and committed) before it."""
    earliest: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        earliest[tp] = min(earliest.get(tp, record.offset), record.offset)
    for tp, offset in earliest.items():
        consumer.seek(tp, offset)


def subscribe(
    broker: KafkaBroker, consumer: InboxConsumer, topics: Sequence[str], *, max_records: int = 500
) -> tuple[OneAhead, OffsetCommits]:
    """Attach an inbox consumer to the broker as a batch subscriber with manual commits; what
    it returns is to be settled when consumption stops (``_stop_feeding``)."""
    commits = OffsetCommits(consumer.group_id)
    feed = OneAhead(consumer, commits)
    subscriber = broker.subscriber(
        *topics,
        group_id=consumer.group_id,
        batch=True,
        max_records=max_records,
        # FastStream sleeps this long again after an empty poll: keep it short, it is the
        # latency an idle consumer adds to the next event
        batch_timeout_ms=20,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        listener=_SettleOnRevoke(feed, commits),
    )

    @subscriber(parser=_records_message, decoder=_records_body)
    async def on_batch(records: Any) -> None:
        kafka = subscriber.consumer
        assert kafka is not None, "FastStream calls the handler of a started subscriber"
        await feed.take(kafka, records)

    return feed, commits


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
    consumers, feeds = [], []
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
        feeds.append(subscribe(broker, consumer, topics, max_records=batch_size))
        consumers.append(consumer)
    try:
        await broker.start()
        yield consumers
    finally:
        await _stop_feeding(feeds)
        await broker.stop()
        await _stop_feeding(feeds)  # a batch that began meanwhile ends before the pool may close
        await dlq.stop()


async def _stop_feeding(
    feeds: Sequence[tuple[OneAhead, OffsetCommits]], timeout_s: float = 10.0
) -> None:
    """Finish the batch in flight and commit what every subscriber processed before the
    consumers leave their groups; bounded, since a commit to an unreachable coordinator retries
    until it gets through (and an apply waits out a database outage)."""
    for _, commits in feeds:
        commits.closing = True
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(_settle(feed, commits) for feed, commits in feeds))
    except TimeoutError:
        log.warning("inbox.stop_timeout", timeout_s=timeout_s)
