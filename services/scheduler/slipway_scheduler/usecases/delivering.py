"""Sending due webhook deliveries: claim a batch (``FOR UPDATE SKIP LOCKED``, leased), send
each one signed, outside any transaction, then record every attempt and what follows it.

Any number of scheduler processes run this at once, with no leader: a claimed row is leased
(its ``next_attempt_at`` moved past the longest an attempt takes), so the others skip it; a
process that dies mid-send leaves the lease to expire and the delivery is sent again. So a
receiver gets each delivery at least once, and recognises a repeat by the body's ``id``.

A failed attempt is tried again after an exponential back-off with jitter
(``domain.webhooks.next_attempt_after``) until the retry window (24 h by default) is over; the
delivery is then ``FAILED``. A redeliver opens a new window.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
import structlog

from slipway_libs.crypto import Sealer, SealError
from slipway_libs.db import transaction
from slipway_scheduler.db import delivery_queries as queries
from slipway_scheduler.domain import webhooks
from slipway_scheduler.domain.deliveries import AttemptResult, DeliveryStatus
from slipway_scheduler.domain.timers import Clock

log = structlog.get_logger(__name__)
DELIVERIES_CHANNEL = queries.DELIVERIES_CHANNEL
USER_AGENT = "Slipway-Webhooks/1"


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult: ...


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 30.0
    cap_s: float = 3600.0
    window: timedelta = webhooks.RETRY_WINDOW
    # how long a claimed delivery stays out of others' claims: longer than an attempt lasts
    lease: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class DeliveryDeps:
    sealer: Sealer
    sender: Sender
    clock: Clock
    retry: RetryPolicy = RetryPolicy()
    draw: Callable[[], float] = field(default=random.random)  # the jitter's random fraction


async def deliver_due(pool: asyncpg.Pool, deps: DeliveryDeps, *, limit: int) -> int:
    """One round: how many deliveries it claimed (and sent, and recorded)."""
    now = deps.clock.now()
    async with transaction(pool) as conn:
        due = await queries.claim_due(conn, now, limit=limit, lease_until=now + deps.retry.lease)
    if not due:
        return 0
    outcomes = await asyncio.gather(*(_attempt(deps, delivery) for delivery in due))
    async with transaction(pool) as conn:
        for outcome in outcomes:
            await queries.record_attempt(conn, outcome)
    return len(due)


async def next_due(pool: asyncpg.Pool) -> datetime | None:
    async with transaction(pool) as conn:
        return await queries.next_due(conn)


async def _attempt(deps: DeliveryDeps, delivery: queries.DueDelivery) -> queries.AttemptOutcome:
    attempted_at = deps.clock.now()
    body = delivery.body.encode()
    try:
        secret = deps.sealer.open(delivery.secret_sealed, aad=delivery.webhook_id.bytes)
    except SealError:
        # the key that sealed it is no longer configured: no attempt could ever be signed
        signature = ""
        result = AttemptResult(
            None, 0, error="SECRET_UNREADABLE: the signing secret's key is gone", permanent=True
        )
    else:
        signature = webhooks.signature(secret.decode(), int(attempted_at.timestamp()), body)
        result = await deps.sender.post(delivery.url, body, _headers(delivery, signature))
    outcome = _outcome(deps, delivery, attempted_at, signature, result)
    log.info(
        "webhooks.attempt",
        delivery_id=str(delivery.delivery_id),
        webhook_id=str(delivery.webhook_id),
        number=outcome.attempt.number,
        response_code=result.response_code,
        error=result.error,
        status=outcome.status,
    )
    return outcome


def _headers(delivery: queries.DueDelivery, signature: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhooks.SIGNATURE_HEADER: signature,
        "X-Slipway-Event": delivery.event,
        "X-Slipway-Delivery": str(delivery.delivery_id),
    }


def _outcome(
    deps: DeliveryDeps,
    delivery: queries.DueDelivery,
    attempted_at: datetime,
    signature: str,
    result: AttemptResult,
) -> queries.AttemptOutcome:
    failures, status, next_at = delivery.failures, DeliveryStatus.SUCCEEDED, None
    if not result.succeeded:
        failures += 1
        wait = _retry_wait(deps, failures, attempted_at - delivery.retry_from, result)
        status = DeliveryStatus.FAILED if wait is None else DeliveryStatus.PENDING
        next_at = None if wait is None else attempted_at + wait
    return queries.AttemptOutcome(
        attempt=queries.Attempt(
            delivery_id=delivery.delivery_id,
            number=delivery.attempts + 1,
            attempted_at=attempted_at,
            signature=signature,
            response_code=result.response_code,
            response_body=result.response_body,
            duration_ms=result.duration_ms,
            error=result.error,
            next_attempt_at=next_at,
        ),
        organization_id=delivery.organization_id,
        status=status.value,
        failures=failures,
        leased_until=delivery.leased_until,
    )


def _retry_wait(
    deps: DeliveryDeps, failures: int, elapsed: timedelta, result: AttemptResult
) -> timedelta | None:
    if result.permanent:
        return None
    policy = deps.retry
    return webhooks.next_attempt_after(
        failures,
        elapsed,
        base_s=policy.base_s,
        cap_s=policy.cap_s,
        fraction=deps.draw(),
        window=policy.window,
    )
