"""The idempotent inbox consumer: apply each event exactly once, even when Kafka redelivers.

Invariants:
- An event's effects and its ``inbox`` row commit in one transaction; a redelivered event finds
  its row and is skipped. Offsets are committed by the caller only after ``process`` returned,
  i.e. after the effects are durable. So a crash anywhere loses nothing and applies nothing twice.
- **Fast path:** a whole batch in one transaction (one bulk insert into the inbox, then the
  handlers). The insert is a plain one, which fails when an event of the batch was recorded
  before; the batch is then applied again with a claim that skips those (a redelivery, after a
  crash or a rebalance). **Slow path** when a handler fails: every event of the batch in its
  own transaction, so the failing event is isolated and the others go on.
- **Batch handlers** (``batch(fn)``) get every consecutive event of their type at once, in
  order, to write them with one statement; in the slow path they get one event at a time.
- **Errors.** A handler's ``PermanentError`` (or an undecodable event) goes straight to the
  dead-letter topic; any other handler error is retried with exponential backoff and goes to the
  dead-letter topic after ``max_retries``. The dead-letter record is sent *before* the inbox row
  commits, so a crash can duplicate a dead letter but never lose one. A database outage is not
  the event's fault: it is retried without limit and never dead-letters anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import structlog
from opentelemetry import trace
from pydantic import ValidationError

from slipway_contracts import Envelope
from slipway_libs import retry
from slipway_libs.db import TRANSIENT_DB_ERRORS
from slipway_libs.errors import PermanentError
from slipway_libs.logging import correlation_id
from slipway_libs.telemetry import (
    carrier_from_kafka,
    context_from,
    continued,
    exporting,
    tracer,
)

log = structlog.get_logger(__name__)

EventHandler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
RunHandler = Callable[[asyncpg.Connection, list[Envelope]], Awaitable[None]]


@dataclass(frozen=True)
class BatchHandler:
    """A handler given every consecutive event of its type in a batch at once (in order), so
    that it can write them with one statement; see ``batch``."""

    handle: RunHandler


def batch(handle: RunHandler) -> BatchHandler:
    return BatchHandler(handle)


Handler = EventHandler | BatchHandler


class Record(Protocol):
    """What the inbox needs of a Kafka record (aiokafka's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class DeadLetterSink(Protocol):
    async def send(self, record: Record, *, group_id: str, reason: str) -> None: ...


@dataclass
class _Decoded:
    record: Record
    envelope: Envelope | None
    error: str | None = None


@dataclass(frozen=True)
class Decoded:
    """A batch of records decoded by ``InboxConsumer.decode``, to be applied."""

    items: list[_Decoded]

    def __len__(self) -> int:
        return len(self.items)


_DECODE_SLICE = 64  # records decoded between two turns of the event loop (~0.2 ms)


def _decode(record: Record) -> _Decoded:
    try:
        return _Decoded(record, Envelope.from_json(record.value or b""))
    except (ValidationError, ValueError) as exc:
        return _Decoded(record, None, f"undecodable event: {exc}")


class InboxConsumer:
    def __init__(
        self,
        *,
        group_id: str,
        pool: asyncpg.Pool,
        handlers: Mapping[str, Handler],
        dead_letters: DeadLetterSink,
        max_retries: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.group_id = group_id
        self._pool = pool
        self._handlers = dict(handlers)
        self._dead = dead_letters
        self._max_retries = max_retries
        self._backoff = retry.Backoff(backoff_s, max_backoff_s)
        self.applied = 0
        self.dead_lettered = 0

    async def process(self, records: Sequence[Record]) -> None:
        """Return only once every record is applied, skipped as a duplicate, or dead-lettered."""
        await self.apply(self.decode(records))

    def decode(self, records: Sequence[Record]) -> Decoded:
        """The records as envelopes (no I/O: a caller may decode a batch while the previous
        one is being applied)."""
        return Decoded([_decode(r) for r in records])

    async def decode_yielding(self, records: Sequence[Record]) -> Decoded:
        """``decode``, giving the event loop a turn every ``_DECODE_SLICE`` records: decoding a
        batch takes longer than a database round trip, and the batch being applied meanwhile
        gets each reply handled when it comes instead of after the whole batch is decoded."""
        items: list[_Decoded] = []
        for start in range(0, len(records), _DECODE_SLICE):
            if start:
                await asyncio.sleep(0)
            items.extend(_decode(r) for r in records[start : start + _DECODE_SLICE])
        return Decoded(items)

    async def apply(self, decoded: Decoded) -> None:
        """``process`` for records decoded already."""
        batch = decoded.items
        try:
            await self._retry_outages(lambda: self._apply_batch(batch))
        except _HandlerFailed:
            for item in batch:
                await self._apply_alone(item)

    async def _retry_outages(self, action: Callable[[], Awaitable[None]]) -> None:
        await retry.while_unreachable(
            action,
            event="inbox.database_unavailable",
            backoff=self._backoff,
            group=self.group_id,
        )

    async def _apply_batch(self, batch: Sequence[_Decoded]) -> None:
        envelopes = [item.envelope for item in batch if item.envelope is not None]
        if len(envelopes) < len(batch):
            raise _HandlerFailed
        # Nearly always no event of a batch was seen before (redeliveries follow a crash or a
        # rebalance): the inbox rows go in with a plain insert, half the work of ON CONFLICT
        # DO NOTHING's speculative insertion, and a batch holding one seen before rolls back
        # and is applied again with the claim that skips those.
        if len({e.id for e in envelopes}) == len(envelopes):
            try:
                await self._apply_in_one_transaction(batch, envelopes, first_delivery=True)
                return
            except _SeenBefore:
                pass
        await self._apply_in_one_transaction(batch, envelopes, first_delivery=False)

    async def _apply_in_one_transaction(
        self, batch: Sequence[_Decoded], envelopes: list[Envelope], *, first_delivery: bool
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if first_delivery:
                await self._claim_all(conn, envelopes)
                todo = batch
            else:
                todo = _first_copies(batch, await self._claim(conn, envelopes))
            for run in self._runs(todo):
                try:
                    await self._handle(conn, run)
                except TRANSIENT_DB_ERRORS:
                    raise
                except Exception as exc:
                    raise _HandlerFailed from exc
        self.applied += len(todo)

    def _runs(self, items: Sequence[_Decoded]) -> list[list[_Decoded]]:
        """Consecutive events of one type whose handler takes batches go together; the order
        of the batch is kept."""
        runs: list[list[_Decoded]] = []
        for kind, same_kind in itertools.groupby(items, key=_event_type):
            if isinstance(self._handlers.get(kind), BatchHandler):
                runs.append(list(same_kind))
            else:
                runs.extend([item] for item in same_kind)
        return runs

    async def _apply_alone(self, item: _Decoded) -> None:
        attempt = 0
        while True:
            failure = await self._attempt_alone(item)
            if failure is None:
                return
            permanent, reason = failure
            attempt += 1
            if permanent or attempt > self._max_retries:
                await self._retry_outages(functools.partial(self._dead_letter, item, reason))
                return
            delay = self._backoff.delay(attempt)
            log.warning(
                "inbox.handler_failed",
                group=self.group_id,
                attempt=attempt,
                event_id=str(item.envelope.id) if item.envelope else None,
                reason=reason,
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)

    async def _attempt_alone(self, item: _Decoded) -> tuple[bool, str] | None:
        """None when applied (or a duplicate); else (permanent?, reason)."""
        if item.envelope is None:
            return True, item.error or "undecodable"
        envelope = item.envelope

        async def once() -> None:
            async with self._pool.acquire() as conn, conn.transaction():
                if await self._claim(conn, [envelope]):
                    await self._handle(conn, [item])
                    self.applied += 1

        try:
            await self._retry_outages(once)
        except (PermanentError, ValidationError) as exc:
            return True, f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return None

    async def _dead_letter(self, item: _Decoded, reason: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if item.envelope is not None and not await self._claim(
                conn, [item.envelope], outcome="dead_lettered"
            ):
                return
            await self._dead.send(item.record, group_id=self.group_id, reason=reason)
        self.dead_lettered += 1
        log.error(
            "inbox.dead_lettered",
            group=self.group_id,
            topic=item.record.topic,
            offset=item.record.offset,
            reason=reason,
        )

    async def _claim(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], outcome: str = "applied"
    ) -> set[Any]:
        """The ids of ``envelopes`` not seen before, now recorded with ``outcome``."""
        rows = await conn.fetch(
            _CLAIM_NEW,
            self.group_id,
            [e.id for e in envelopes],
            [e.type for e in envelopes],
            outcome,
        )
        return {r["event_id"] for r in rows}

    async def _claim_all(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """Record every one of ``envelopes`` as applied; ``_SeenBefore`` (the transaction is
        then aborted) when one of them was recorded already."""
        try:
            await conn.execute(
                _CLAIM_ALL, self.group_id, [e.id for e in envelopes], [e.type for e in envelopes]
            )
        except asyncpg.UniqueViolationError:
            raise _SeenBefore from None

    async def _handle(self, conn: asyncpg.Connection, run: list[_Decoded]) -> None:
        first = run[0]
        assert first.envelope is not None
        handler = self._handlers.get(first.envelope.type)
        if handler is None:
            return  # not an event this consumer cares about: recorded, nothing to do
        envelopes = [item.envelope for item in run if item.envelope is not None]
        token = correlation_id.set(first.envelope.correlation_id)
        try:
            with self._process_span(first, len(envelopes)):
                if isinstance(handler, BatchHandler):
                    await handler.handle(conn, envelopes)
                else:
                    for envelope in envelopes:  # a non-batch handler is always a run of one
                        await handler(conn, envelope)
        finally:
            correlation_id.reset(token)

    def _process_span(self, first: _Decoded, count: int) -> contextlib.AbstractContextManager[Any]:
        """The CONSUMER span of a run, under the context its first record carries; none when
        spans go nowhere (``telemetry.exporting``), only its context."""
        carrier = carrier_from_kafka(first.record.headers)
        if not exporting():
            return continued(carrier)
        assert first.envelope is not None
        span = tracer().start_span(
            f"{first.record.topic} process",
            context=context_from(carrier),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": first.record.topic,
                "messaging.consumer.group.name": self.group_id,
                "messaging.message.id": str(first.envelope.id),
                "messaging.batch.message_count": count,
                "slipway.event_type": first.envelope.type,
            },
        )
        return trace.use_span(span, end_on_exit=True, record_exception=True)


class _HandlerFailed(Exception):
    pass


class _SeenBefore(Exception):
    """A batch held an event the inbox had recorded already."""


_CLAIM_NEW = """
INSERT INTO inbox (consumer_group, event_id, event_type, outcome)
SELECT $1, id, type, $4 FROM unnest($2::uuid[], $3::text[]) AS e(id, type)
ON CONFLICT DO NOTHING
RETURNING event_id
"""

_CLAIM_ALL = """
INSERT INTO inbox (consumer_group, event_id, event_type, outcome)
SELECT $1, id, type, 'applied' FROM unnest($2::uuid[], $3::text[]) AS e(id, type)
"""


def _event_type(item: _Decoded) -> str:
    return item.envelope.type if item.envelope is not None else ""


def _first_copies(batch: Sequence[_Decoded], fresh: set[Any]) -> list[_Decoded]:
    """The items of ``batch`` whose event is in ``fresh``, each event once: a batch may hold
    the same event twice, only its first copy is applied."""
    todo = []
    for item in batch:
        if item.envelope is not None and item.envelope.id in fresh:
            fresh.discard(item.envelope.id)
            todo.append(item)
    return todo


def dead_letter_value(record: Record, *, group_id: str, reason: str) -> bytes:
    """The dead-letter record: the original bytes plus where they came from and why they failed."""
    where = {
        "group_id": group_id,
        "reason": reason,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    with contextlib.suppress(Exception):
        original: Any = json.loads(record.value or b"")
        return json.dumps({**where, "event": original}).encode()
    return json.dumps({**where, "raw": (record.value or b"").decode(errors="replace")}).encode()
