"""Retrying: the one classification of transient errors, and the one back-off every retry uses.

- **Transient** means "the database or the broker cannot be reached, is restarting, or refused
  this attempt for a reason that passes" (``is_transient``): PostgreSQL's connection and
  concurrency errors (``TRANSIENT_DB_ERRORS``), any Kafka client error (a Kafka client's cure is
  a new session, and the broker's own errors say nothing about the statement), and a
  ``RetryableError`` a caller raises for a dependency of its own. Anything else is a bug or a
  wrong input: it is raised, never retried forever.
- **Back-off** doubles from ``initial_s`` up to ``max_s``; each wait is logged with ``retry_in_s``
  so an outage shows in the logs once per attempt, not as a silent hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiokafka.errors import KafkaError

from slipway_libs.db import TRANSIENT_DB_ERRORS
from slipway_libs.errors import RetryableError

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *TRANSIENT_DB_ERRORS,
    KafkaError,
    RetryableError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 10.0

    def delays(self, *, limit: int | None = None) -> Iterator[float]:
        """``initial_s``, twice that, ... up to ``max_s``: ``limit`` of them, or without end."""
        delay, given = self.initial_s, 0
        while limit is None or given < limit:
            yield delay
            delay, given = min(delay * 2, self.max_s), given + 1

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure (from 1)."""
        return float(min(self.initial_s * 2 ** (attempt - 1), self.max_s))


async def retrying(
    action: Callable[[], Awaitable[_T]],
    *,
    event: str,
    backoff: Backoff = Backoff(),
    retry_on: Callable[[BaseException], bool] = is_transient,
    **fields: Any,
) -> _T:
    """``action()`` again, backing off, for as long as it fails with an error ``retry_on``
    accepts (logged as ``event`` with ``fields``); any other error is raised."""
    for delay in backoff.delays():
        try:
            return await action()
        except Exception as exc:
            if not retry_on(exc):
                raise
            log.warning(event, **fields, error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the delays never end")


async def forever(
    run: Callable[[], Awaitable[None]],
    *,
    event: str,
    backoff: Backoff = Backoff(),
    retry_on: Callable[[BaseException], bool] = is_transient,
    **fields: Any,
) -> None:
    """``run()`` for the life of the caller: after a transient failure it starts again, backing
    off; a return starts it again at once, the back-off reset. Only a non-transient error (or a
    cancel) ends it."""
    while True:
        await retrying(run, event=event, backoff=backoff, retry_on=retry_on, **fields)


async def while_unreachable(
    action: Callable[[], Awaitable[_T]],
    *,
    event: str,
    backoff: Backoff = Backoff(),
    **fields: Any,
) -> _T:
    """``action()`` again for as long as the database cannot be reached: its transient errors
    only (``TRANSIENT_DB_ERRORS``), for an action whose other failures its caller judges (a
    Kafka error inside it is not an outage of the database)."""
    return await retrying(
        action, event=event, backoff=backoff, retry_on=_database_unreachable, **fields
    )


def _database_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_DB_ERRORS)
