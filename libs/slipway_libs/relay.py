"""The outbox relay: publishes outbox rows to Kafka, in order, and survives being killed anywhere.

Invariants:
- **One publisher per database.** The relay leads (``slipway_libs.leadership``): it holds a
  session advisory lock, a second relay waits as a hot standby and takes over when the first
  one's connection dies, and a relay that sees its connection closed stops publishing at once.
- **Order.** Rows are read in id order, and only the *prefix* of the table whose writing
  transactions are older than every transaction still in flight (``xid < pg_snapshot_xmin``):
  the first row not settled yet ends the batch (``ready_rows``). Filtering rows one by one did
  not keep order: a transaction that took a smaller id and committed first, but began after a
  transaction still running elsewhere in the cluster, was held back while a larger id from an
  older transaction went out. The guarantee: when a key's writers are serialized (a lock taken
  before the row is written, as the catalog's project revision is), the key's order in the
  outbox is its order on the topic. A batch's rows go as one record batch per partition, in id
  order (``partition_of`` is the default partitioner of aiokafka and the Java client). The
  producer is idempotent with ``acks=all``, so retries inside one producer session neither
  reorder nor duplicate.
- **At least once.** Rows are deleted only after Kafka acknowledged every record of the batch. A
  crash between the two republishes the batch; consumers deduplicate by event id (the inbox).
- **Overlapped, not reordered** (``_Pipeline``): the next batch is read while Kafka acknowledges
  the current one but handed to the producer only after it; acknowledged rows are deleted on a
  second connection while the next batch goes out, and reads skip the rows whose delete has not
  committed yet.
- **Self-healing.** Kafka or PostgreSQL errors (the transient ones of ``slipway_libs.retry``)
  are logged; the relay backs off, reconnects and goes on from the rows still in the table. Any
  other error is a bug: it is raised (the process stops and is restarted) instead of being
  retried forever. A batch Kafka has not acknowledged within
  ``delivery_timeout_s`` counts as such an error: the producer can wait on a delivery forever
  (aiokafka#1101), and a relay stuck on one batch stalls every event of the service behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from opentelemetry import trace

from slipway_libs import leadership, retry
from slipway_libs.db import connect
from slipway_libs.errors import RetryableError
from slipway_libs.outbox import NOTIFY_CHANNEL
from slipway_libs.settings import KafkaConnection
from slipway_libs.telemetry import (
    context_from,
    current_carrier,
    exporting,
    kafka_headers,
    tracer,
)

log = structlog.get_logger(__name__)

_RELAY_LOCK = 727_002

# headers as text: one append writes the same carrier into all its rows, parsed once
# (``_parsed_carrier``) instead of by the connection's jsonb codec row by row
_FETCH = """
SELECT id, topic, key, event_id, event_type, payload, headers::text AS headers,
       xid < pg_snapshot_xmin(pg_current_snapshot()) AS settled
FROM outbox
WHERE NOT (id = ANY($2::bigint[]))
ORDER BY id
LIMIT $1
"""

_DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


async def ready_rows(
    conn: asyncpg.Connection, limit: int, excluding: Sequence[int] = ()
) -> list[asyncpg.Record]:
    """The next rows to publish, in id order: up to ``limit``, and none from the first row
    whose transaction is not settled yet (see Order above); ``excluding`` rows already sent
    whose delete has not committed yet."""
    rows = await conn.fetch(_FETCH, limit, excluding)
    for i, row in enumerate(rows):
        if not row["settled"]:
            return rows[:i]
    return rows


class DeliveryTimeout(RetryableError):
    """Kafka did not acknowledge a batch in time; the relay starts over with a new producer."""


ProducerFactory = Callable[[], Awaitable[AIOKafkaProducer]]

# the hash of a key, remembered: aiokafka's murmur2 is pure Python, and keys (aggregate ids) recur
_key_hash = functools.lru_cache(maxsize=65_536)(murmur2)


def partition_of(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """aiokafka's DefaultPartitioner (the Java client's murmur2, so every producer agrees on a
    key's partition) with the hash of each key computed once."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[(_key_hash(key) & 0x7FFFFFFF) % len(all_partitions)]


def producer_factory(kafka: KafkaConnection, *, client_id: str) -> ProducerFactory:
    async def make() -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **kafka.options(),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=1024 * 1024,
            request_timeout_ms=15000,
        )
        await producer.start()
        return producer

    return make


class OutboxRelay:
    def __init__(
        self,
        *,
        dsn: str,
        producer: ProducerFactory,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        max_backoff_s: float = 5.0,
        topic_prefix: str = "",
        delivery_timeout_s: float = 30.0,
    ) -> None:
        self._dsn = dsn
        self._make_producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._max_backoff_s = max_backoff_s
        self._prefix = topic_prefix
        self._delivery_timeout_s = delivery_timeout_s
        self._wake = leadership.Wake(poll_interval_s)
        self.published = 0

    async def run(self) -> None:
        """Publish until cancelled; every transient failure (PostgreSQL, Kafka, a delivery
        timeout, the lock's connection lost) leads to a back-off and a fresh start."""
        await retry.forever(
            lambda: leadership.lead(
                dsn=self._dsn,
                lock=_RELAY_LOCK,
                work=self._lead,
                contend_every_s=self._poll_interval_s,
                listeners={NOTIFY_CHANNEL: self._wake},
            ),
            event="relay.error",
            backoff=retry.Backoff(0.1, self._max_backoff_s),
        )

    async def _lead(self, conn: asyncpg.Connection) -> None:
        producer = await self._make_producer()
        pipe = _Pipeline(conn, await connect(self._dsn), self._batch_size, self._wake)
        try:
            log.info("relay.leading")
            held_back = 0.0
            while True:
                woken = self._wake.is_set()
                sent = await self._publish_batch(pipe, producer)
                if sent == 0 and woken and held_back < self._poll_interval_s:
                    # rows were announced but are not visible yet: a transaction that began
                    # earlier (in any database of the cluster) holds the snapshot's xmin back.
                    # Look again soon, backing off, rather than after a whole poll interval.
                    held_back = min(max(held_back * 2, 0.005), self._poll_interval_s)
                    await asyncio.sleep(held_back)
                    self._wake.set()
                    continue
                held_back = 0.0
                if sent < self._batch_size:
                    await self._wake.wait()
        finally:
            await pipe.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def _publish_batch(self, pipe: _Pipeline, producer: AIOKafkaProducer) -> int:
        rows = await pipe.next_rows()
        if not rows:
            await pipe.deleted()  # idle from here: nothing left half done
            return 0
        deliveries = await self._send(producer, rows)
        if len(rows) == self._batch_size:  # more is likely: read it while Kafka acknowledges
            pipe.read_ahead(rows)
        try:
            async with asyncio.timeout(self._delivery_timeout_s):
                await asyncio.gather(*deliveries)
        except TimeoutError:
            raise DeliveryTimeout(
                f"Kafka acknowledged no batch of {len(rows)} records"
                f" within {self._delivery_timeout_s:g} s"
            ) from None
        await pipe.delete([r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)

    async def _send(
        self, producer: AIOKafkaProducer, rows: Sequence[asyncpg.Record]
    ) -> list[asyncio.Future[Any]]:
        """The rows as record batches, one per partition (another when one is full), each in
        id order; their deliveries. Per record, ``producer.send`` made a future, a partitioner
        call and an accumulator lookup: a third of the relay's time."""
        traced = exporting()
        partitions: dict[str, list[int]] = {}
        filling: dict[tuple[str, int], BatchBuilder] = {}
        deliveries: list[asyncio.Future[Any]] = []
        for row in rows:
            topic = self._prefix + row["topic"]
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            key = row["key"].encode()
            where = (topic, partition_of(key, partitions[topic], partitions[topic]))
            record = {
                "key": key,
                "value": row["payload"].encode(),
                "timestamp": None,
                "headers": self._headers(row, traced=traced),
            }
            batch = filling.get(where) or filling.setdefault(where, producer.create_batch())
            if batch.append(**record) is None:  # full: it goes, a new one takes the record
                deliveries.append(await producer.send_batch(batch, topic, partition=where[1]))
                filling[where] = batch = producer.create_batch()
                batch.append(**record)
        for (topic, partition), batch in filling.items():
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        return deliveries

    def _headers(self, row: asyncpg.Record, *, traced: bool) -> list[tuple[str, bytes]]:
        carrier = _stored_carrier(row["headers"])
        if traced:
            with self._publish_span(row, carrier):
                headers = kafka_headers(current_carrier())
        else:
            # no span to open: the context the outbox row carries goes on as it is
            headers = kafka_headers(carrier)
        headers.append(("event_type", row["event_type"].encode()))
        return headers

    @staticmethod
    def _publish_span(
        row: asyncpg.Record, carrier: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[trace.Span]:
        span = tracer().start_span(
            f"{row['topic']} publish",
            context=context_from(carrier),
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": row["topic"],
                "messaging.message.id": str(row["event_id"]),
                "messaging.kafka.message.key": row["key"],
                "slipway.event_type": row["event_type"],
            },
        )
        return trace.use_span(span, end_on_exit=True)


class _Pipeline:
    """One term's batches, overlapped without giving up order or at-least-once:

    - the next batch is read while Kafka acknowledges this one (``read_ahead``), but handed to
      the producer only after every record of this one was acknowledged, as before;
    - acknowledged rows are deleted on a connection of their own while the next batch is read
      and sent (a delete is a durable commit, a flush of the WAL); one delete at a time, and
      the reads skip the rows sent whose delete has not committed. A failed delete ends the
      term like any error: its rows are sent again, after rows sent since (the inbox skips
      the copies; every first copy went in order).
    """

    def __init__(
        self, conn: asyncpg.Connection, deleting: asyncpg.Connection, limit: int, wake: Any
    ) -> None:
        self._conn = conn
        self._deleting = deleting
        self._limit = limit
        self._wake = wake
        self._ahead: asyncio.Task[list[asyncpg.Record]] | None = None
        self._delete: asyncio.Task[str] | None = None
        self._deleting_ids: list[int] = []

    async def next_rows(self) -> list[asyncpg.Record]:
        if self._ahead is not None:
            ahead, self._ahead = self._ahead, None
            return await ahead
        self._wake.clear()  # a notification from now on means rows this read may not see
        return await ready_rows(self._conn, self._limit, self._deleting_ids)

    def read_ahead(self, sending: Sequence[asyncpg.Record]) -> None:
        self._wake.clear()
        skip = [*self._deleting_ids, *(r["id"] for r in sending)]
        self._ahead = asyncio.create_task(ready_rows(self._conn, self._limit, skip))

    async def delete(self, ids: list[int]) -> None:
        await self.deleted()
        self._deleting_ids = ids
        self._delete = asyncio.create_task(self._deleting.execute(_DELETE, ids))

    async def deleted(self) -> None:
        """Wait for the delete in flight; raises what it raised."""
        if self._delete is not None:
            delete, self._delete = self._delete, None
            await delete
        self._deleting_ids = []

    async def close(self) -> None:
        for task in (self._ahead, self._delete):
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task
        with contextlib.suppress(Exception):
            await self._deleting.close(timeout=2)


def _stored_carrier(stored: str | Mapping[str, str] | None) -> Mapping[str, str]:
    """The W3C carrier of an outbox row (jsonb: text from asyncpg, unless a codec decodes it)."""
    if isinstance(stored, str):
        return _parsed_carrier(stored)
    return dict(stored or {})


@functools.lru_cache(maxsize=1024)
def _parsed_carrier(stored: str) -> Mapping[str, str]:
    # one append writes the same carrier into all its rows: parse it once (read-only from here)
    parsed: dict[str, str] = json.loads(stored)
    return parsed
