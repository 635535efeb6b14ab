"""The one retry helper: what it retries (the one classification), how long it waits."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError

from slipway_libs import retry
from slipway_libs.errors import RetryableError

FAST = retry.Backoff(0.001, 0.002)


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = retry.Backoff(0.1, 0.5)
    assert list(backoff.delays(limit=5)) == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("starting"),
        asyncpg.SerializationError("retry"),
        # what a leader's query raised while PostgreSQL shut down under it (a fault test's
        # deployer died of it: its relay took it for a bug)
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        ConnectionRefusedError(),
        TimeoutError(),
        KafkaConnectionError(),
        RetryableError("a dependency is down"),
    ],
)
def test_outages_are_transient(error: BaseException) -> None:
    assert retry.is_transient(error)


@pytest.mark.parametrize(
    "error",
    [asyncpg.UndefinedColumnError("a SQL bug"), KeyError("row"), ValueError("bad input")],
)
def test_bugs_are_not_transient(error: BaseException) -> None:
    assert not retry.is_transient(error)


async def test_retrying_goes_on_through_transient_errors_until_it_succeeds() -> None:
    failures = [asyncpg.CannotConnectNowError("starting"), KafkaConnectionError()]

    async def action() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert await retry.retrying(action, event="test.retry", backoff=FAST) == "done"
    assert failures == []


async def test_retrying_raises_a_bug_at_once() -> None:
    calls = 0

    async def action() -> None:
        nonlocal calls
        calls += 1
        raise asyncpg.UndefinedColumnError("column x does not exist")

    with pytest.raises(asyncpg.UndefinedColumnError):
        await retry.retrying(action, event="test.retry", backoff=FAST)
    assert calls == 1


async def test_while_unreachable_retries_the_database_only() -> None:
    calls = 0

    async def action() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncpg.CannotConnectNowError("starting")
        raise KafkaConnectionError()  # the caller's to judge: not an outage of the database

    with pytest.raises(KafkaConnectionError):
        await retry.while_unreachable(action, event="test.retry", backoff=FAST)
    assert calls == 2


async def test_forever_starts_over_after_transient_failures_and_stops_on_a_bug() -> None:
    outcomes: list[BaseException | None] = [KafkaConnectionError(), None, TimeoutError()]

    async def run() -> None:
        if not outcomes:
            raise LookupError("a bug")
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    with pytest.raises(LookupError):
        await retry.forever(run, event="test.forever", backoff=FAST)
    assert outcomes == []
