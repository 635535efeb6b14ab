"""Delivering outgoing webhooks against the real PostgreSQL and a real local HTTP receiver: the
deployer's event, consumed through the inbox, becomes one delivery per matching webhook (a
redelivered event none more); the delivery loop's round sends it signed; a failing receiver is
retried on the back-off until it answers, or until the window ends (FAILED); a name that
resolves to a private address at delivery time is refused unless allow-listed, and the
allow-listed one is reached at the address that was checked; the delivery log pages newest
first, redeliver sends again, and another organization sees nothing of it."""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.scheduler.tests.integration.conftest import HandClock
from services.scheduler.tests.integration.test_schedule_api import member_of
from services.scheduler.tests.receiver import Receiver
from slipway_contracts import Envelope, new_event
from slipway_contracts.events import catalog as catalog_events
from slipway_contracts.events import deployer as deployer_events
from slipway_libs import db
from slipway_libs.crypto import Sealer, new_key_setting
from slipway_libs.egress import EgressPolicy, IPAddress
from slipway_libs.http import create_app
from slipway_libs.inbox import InboxConsumer
from slipway_scheduler.adapters.webhook_sender import HttpSender
from slipway_scheduler.api.webhooks import build_webhook_router
from slipway_scheduler.domain import webhooks as domain
from slipway_scheduler.usecases import delivering, delivery_log, webhooks
from slipway_scheduler.usecases.delivering import DeliveryDeps, RetryPolicy
from slipway_scheduler.usecases.notifying import Notifier
from slipway_scheduler.usecases.projection import Projection
from slipway_scheduler.usecases.webhooks import NewWebhook, WebhookDeps

pytestmark = pytest.mark.integration

SEALER = Sealer.from_setting(new_key_setting("t1"))


@dataclass
class FakeRecord:
    """A Kafka record as the inbox reads it (the inbox and its table are the real ones)."""

    value: bytes
    topic: str = deployer_events.DEPLOYMENT_TOPIC
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class NoDeadLetters:
    async def send(self, record: Any, *, group_id: str, reason: str) -> None:
        raise AssertionError(f"dead-lettered: {reason}")


@dataclass
class World:
    pool: asyncpg.Pool
    clock: HandClock
    receiver: Receiver
    organization_id: uuid.UUID = field(default_factory=uuid.uuid4)
    project_id: uuid.UUID = field(default_factory=uuid.uuid4)
    environment_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def allow(self) -> EgressPolicy:
        return EgressPolicy.from_setting(f"127.0.0.1:{self.receiver.port}")

    async def webhook(self, path: str, events: list[str], **fields: Any) -> dict[str, Any]:
        deps = WebhookDeps(sealer=SEALER, egress=self.allow)
        url = fields.pop("url", None) or self.receiver.url(path)
        async with db.transaction(self.pool) as conn:
            return await webhooks.create(
                conn,
                deps,
                fields.pop("organization_id", self.organization_id),
                NewWebhook(url=url, events=events, **fields),
            )

    async def catalog(self, project_name: str, mode: str) -> None:
        """The catalog's project and environment, as the projection's consumer applies them."""
        project = catalog_events.ProjectChanged(
            project_id=self.project_id,
            organization_id=self.organization_id,
            name=project_name,
            version=1,
        )
        environment = catalog_events.EnvironmentChanged(
            environment_id=self.environment_id,
            organization_id=self.organization_id,
            project_id=self.project_id,
            name="main",
            mode=mode,  # type: ignore[arg-type]
            cluster_id=uuid.uuid4(),
            version=1,
        )
        projection = Projection(self.clock)
        async with db.transaction(self.pool) as conn:
            for payload in (project, environment):
                await projection.apply(conn, self._envelope(payload, "catalog"))

    def succeeded(self, action: str = "DEPLOY") -> Envelope:
        payload = deployer_events.DeploymentSucceeded(
            deployment_id=uuid.uuid4(),
            environment_id=self.environment_id,
            organization_id=self.organization_id,
            action=action,
            duration_s=4.2,
        )
        return self._envelope(payload, "deployer")

    def _envelope(self, payload: Any, source: str) -> Envelope:
        return new_event(
            payload,
            subject=str(self.environment_id),
            source=source,
            organization_id=self.organization_id,
        )

    async def consume(self, *events: Envelope) -> None:
        """The deployer's events through the real inbox of the webhooks' consumer group."""
        consumer = InboxConsumer(
            group_id="scheduler.webhooks",
            pool=self.pool,
            handlers={t: Notifier(self.clock).apply for t in _TYPES},
            dead_letters=NoDeadLetters(),
        )
        await consumer.process([FakeRecord(e.to_json(), offset=n) for n, e in enumerate(events)])

    def deps(self, policy: EgressPolicy | None = None, **retry: Any) -> DeliveryDeps:
        sender = HttpSender(policy or self.allow, timeout_s=5)
        return DeliveryDeps(
            sealer=SEALER,
            sender=sender,
            clock=self.clock,
            retry=RetryPolicy(**({"base_s": 10.0} | retry)),
            draw=lambda: 0.5,  # no jitter: the waits are exact
        )

    async def deliveries(self, webhook_id: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return list(
                await conn.fetch(
                    "SELECT * FROM webhook_deliveries WHERE webhook_id = $1",
                    uuid.UUID(webhook_id),
                )
            )


_TYPES = (
    deployer_events.DeploymentQueued.event_type,
    deployer_events.DeploymentStarted.event_type,
    deployer_events.DeploymentSucceeded.event_type,
    deployer_events.DeploymentFailed.event_type,
    deployer_events.DeploymentCanceled.event_type,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def world(pool, receiver) -> World:
    return World(pool=pool, clock=HandClock(), receiver=receiver)


async def test_an_event_is_delivered_signed_to_each_matching_webhook_once(world) -> None:
    await world.catalog("api-shop", "production")
    wanted = await world.webhook(
        "/json",
        ["deployment.succeeded"],
        project_pattern="api-*",
        environment_modes=["production"],
    )
    slack = await world.webhook("/slack", ["deployment.succeeded"], format="slack")
    other_project = await world.webhook("/web", ["deployment.succeeded"], project_pattern="web-*")
    other_mode = await world.webhook(
        "/staging", ["deployment.succeeded"], environment_modes=["staging"]
    )
    other_event = await world.webhook("/failed", ["deployment.failed"])
    other_org = await world.webhook(
        "/foreign", ["deployment.succeeded"], organization_id=uuid.uuid4()
    )

    event = world.succeeded()
    await world.consume(event)
    await world.consume(event)  # Kafka redelivers it: the inbox skips it
    for hook in (other_project, other_mode, other_event, other_org):
        assert await world.deliveries(hook["id"]) == [], hook["url"]
    assert len(await world.deliveries(wanted["id"])) == 1

    sent = await delivering.deliver_due(world.pool, world.deps(), limit=10)
    assert sent == 2
    (plain,) = world.receiver.received("/json")
    assert domain.verify(wanted["secret"], plain.headers["x-slipway-signature"], plain.body)
    assert not domain.verify(slack["secret"], plain.headers["x-slipway-signature"], plain.body)
    document = json.loads(plain.body)
    assert document["id"] == str(event.id) and document["type"] == "deployment.succeeded"
    assert document["data"]["project"]["name"] == "api-shop"
    assert document["data"]["environment"]["mode"] == "production"
    assert plain.headers["x-slipway-event"] == "deployment.succeeded"
    (message,) = world.receiver.received("/slack")
    assert domain.verify(slack["secret"], message.headers["x-slipway-signature"], message.body)
    assert json.loads(message.body) == {"text": "Deploy of api-shop/main succeeded (4.2 s)"}

    (row,) = await world.deliveries(wanted["id"])
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("SUCCEEDED", 1, None)
    # nothing is due any more
    assert await delivering.deliver_due(world.pool, world.deps(), limit=10) == 0


async def test_a_stop_that_succeeded_is_environment_stopped(world) -> None:
    stopped = await world.webhook("/stopped", ["environment.stopped"])
    succeeded = await world.webhook("/succeeded", ["deployment.succeeded"])
    await world.consume(world.succeeded(action="STOP"))
    assert len(await world.deliveries(stopped["id"])) == 1
    assert await world.deliveries(succeeded["id"]) == []


async def test_a_failing_receiver_is_retried_on_the_back_off_until_it_answers(world) -> None:
    world.receiver.answer("/flaky", 500, 503)
    hook = await world.webhook("/flaky", ["deployment.succeeded"])
    await world.consume(world.succeeded())
    deps = world.deps(base_s=10.0)

    assert await delivering.deliver_due(world.pool, deps, limit=10) == 1
    (row,) = await world.deliveries(hook["id"])
    assert row["status"] == "PENDING"
    assert row["next_attempt_at"] == world.clock.now() + timedelta(seconds=10)
    world.clock.advance(seconds=9)
    assert await delivering.deliver_due(world.pool, deps, limit=10) == 0, "not due yet"
    world.clock.advance(seconds=1)
    assert await delivering.deliver_due(world.pool, deps, limit=10) == 1
    (row,) = await world.deliveries(hook["id"])
    assert row["next_attempt_at"] == world.clock.now() + timedelta(seconds=20)  # doubled
    world.clock.advance(seconds=20)
    assert await delivering.deliver_due(world.pool, deps, limit=10) == 1

    got = world.receiver.received("/flaky")
    assert [r.answered for r in got] == [500, 503, 200]
    assert len({r.body for r in got}) == 1, "every attempt sends the same body"
    assert all(domain.verify(hook["secret"], r.headers["x-slipway-signature"], r.body) for r in got)
    log = await _log(world, hook["id"])
    (delivery,) = log["items"]
    assert (delivery["status"], delivery["attempts"]) == ("SUCCEEDED", 3)
    assert delivery["last_response_code"] == 200
    attempts = delivery["attempt_log"]
    assert [a["response_code"] for a in attempts] == [500, 503, 200]
    assert attempts[0]["response_body"] == "receiver down"
    assert attempts[0]["next_attempt_at"] is not None and attempts[2]["next_attempt_at"] is None
    assert all(a["duration_ms"] >= 0 and a["signature"].startswith("t=") for a in attempts)


async def test_a_delivery_is_given_up_when_its_retry_window_ends(world) -> None:
    world.receiver.answer("/down", *[500] * 10)
    hook = await world.webhook("/down", ["deployment.succeeded"])
    await world.consume(world.succeeded())
    deps = world.deps(base_s=10.0, window=timedelta(seconds=25))
    await delivering.deliver_due(world.pool, deps, limit=10)  # fails; again in 10 s
    world.clock.advance(seconds=10)
    await delivering.deliver_due(world.pool, deps, limit=10)  # fails; 10 + 20 > 25: given up
    (row,) = await world.deliveries(hook["id"])
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("FAILED", 2, None)
    world.clock.advance(hours=1)
    assert await delivering.deliver_due(world.pool, deps, limit=10) == 0
    assert len(world.receiver.received("/down")) == 2


async def test_a_name_resolving_to_a_private_address_at_delivery_is_refused(world) -> None:
    """DNS rebinding: the name was accepted at creation (it did not resolve then), and resolves
    to loopback when the delivery goes out."""
    port = world.receiver.port
    hook = await world.webhook(
        "/rebound", ["deployment.succeeded"], url=f"http://rebound.invalid:{port}/rebound"
    )
    await world.consume(world.succeeded())

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        assert host == "rebound.invalid"
        return [ipaddress.ip_address("127.0.0.1")]

    def deps(policy: EgressPolicy) -> DeliveryDeps:
        return DeliveryDeps(
            sealer=SEALER,
            sender=HttpSender(policy, timeout_s=5, resolver=rebinding),
            clock=world.clock,
            retry=RetryPolicy(base_s=10.0),
            draw=lambda: 0.5,
        )

    await delivering.deliver_due(world.pool, deps(EgressPolicy()), limit=10)
    assert world.receiver.received("/rebound") == []
    (delivery,) = (await _log(world, hook["id"]))["items"]
    (attempt,) = delivery["attempt_log"]
    assert attempt["response_code"] is None
    assert attempt["error"].startswith("TARGET_NOT_ALLOWED: ")
    assert "loopback" in attempt["error"] and "127.0.0.1" not in attempt["error"]
    assert delivery["status"] == "PENDING", "retried: the name may resolve elsewhere later"

    # allow-listed, the checked address is the one connected to (the name never resolves)
    world.clock.advance(seconds=10)
    await delivering.deliver_due(world.pool, deps(world.allow), limit=10)
    (got,) = world.receiver.received("/rebound")
    assert got.headers["host"] == f"rebound.invalid:{port}"
    (delivery,) = (await _log(world, hook["id"]))["items"]
    assert delivery["status"] == "SUCCEEDED"


@pytest.fixture
async def api(pool, world) -> AsyncIterator[httpx.AsyncClient]:
    deps = WebhookDeps(sealer=SEALER, egress=world.allow)
    router = build_webhook_router(pool, {}, deps, world.clock)
    app = create_app(service="scheduler", routers=[router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as client:
        yield client


async def _log(world: World, webhook_id: str, **query: Any) -> dict[str, Any]:
    app = create_app(
        service="scheduler",
        routers=[
            build_webhook_router(
                world.pool, {}, WebhookDeps(sealer=SEALER, egress=world.allow), world.clock
            )
        ],
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as client:
        answer = await client.get(
            f"/organizations/{world.organization_id}/webhooks/{webhook_id}/deliveries",
            params=query,
            headers=member_of(world.organization_id),
        )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_the_log_pages_newest_first_and_redeliver_sends_again(world, api) -> None:
    hook = await world.webhook("/log", ["deployment.succeeded"])
    events = []
    for _ in range(3):
        events.append(world.succeeded())
        await world.consume(events[-1])
        world.clock.advance(seconds=1)
    await delivering.deliver_due(world.pool, world.deps(), limit=10)

    first = await _log(world, hook["id"], limit=2)
    assert [d["event_id"] for d in first["items"]] == [str(events[2].id), str(events[1].id)]
    assert first["next_cursor"]
    rest = await _log(world, hook["id"], limit=2, cursor=first["next_cursor"])
    assert [d["event_id"] for d in rest["items"]] == [str(events[0].id)]
    assert rest["next_cursor"] is None
    oldest = rest["items"][0]
    assert oldest["status"] == "SUCCEEDED"
    assert json.loads(oldest["request"]["body"])["id"] == str(events[0].id)

    org = world.organization_id
    base = f"/organizations/{org}/webhooks/{hook['id']}/deliveries"
    again = await api.post(f"{base}/{oldest['id']}/redeliver", headers=member_of(org))
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "PENDING"
    await delivering.deliver_due(world.pool, world.deps(), limit=10)
    bodies = [json.loads(r.body)["id"] for r in world.receiver.received("/log")]
    assert bodies.count(str(events[0].id)) == 2
    (redelivered,) = [
        d for d in (await _log(world, hook["id"]))["items"] if d["id"] == oldest["id"]
    ]
    assert (redelivered["status"], redelivered["attempts"]) == ("SUCCEEDED", 2)

    bad = await api.get(base, params={"cursor": "not-a-cursor"}, headers=member_of(org))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_CURSOR"
    unknown = await api.post(f"{base}/{uuid.uuid4()}/redeliver", headers=member_of(org))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "DELIVERY_NOT_FOUND"


async def test_another_organization_sees_no_delivery(world, api) -> None:
    hook = await world.webhook("/mine", ["deployment.succeeded"])
    await world.consume(world.succeeded())
    (delivery,) = (await _log(world, hook["id"]))["items"]
    other = uuid.uuid4()
    own_path = f"/organizations/{other}/webhooks/{hook['id']}/deliveries"
    listed = await api.get(own_path, headers=member_of(other))
    assert listed.status_code == 404 and listed.json()["error"]["code"] == "WEBHOOK_NOT_FOUND"
    redo = await api.post(f"{own_path}/{delivery['id']}/redeliver", headers=member_of(other))
    assert redo.status_code == 404
    # the owner's path with the other organization's credentials
    theirs = f"/organizations/{world.organization_id}/webhooks/{hook['id']}/deliveries"
    assert (await api.get(theirs, headers=member_of(other))).status_code == 404
    # the other organization's own webhook cannot reach this delivery either
    foreign = await world.webhook("/theirs", ["deployment.failed"], organization_id=other)
    path = f"/organizations/{other}/webhooks/{foreign['id']}/deliveries/{delivery['id']}"
    crossed = await api.post(f"{path}/redeliver", headers=member_of(other))
    assert crossed.status_code == 404
    assert crossed.json()["error"]["code"] == "DELIVERY_NOT_FOUND"


async def test_a_secret_no_configured_key_opens_is_given_up_at_once(world) -> None:
    """The sealing key was rotated away: no attempt could ever be signed, none is sent."""
    hook = await world.webhook("/orphan", ["deployment.succeeded"])
    await world.consume(world.succeeded())
    deps = world.deps()
    rotated = DeliveryDeps(
        sealer=Sealer.from_setting(new_key_setting("t2")),
        sender=deps.sender,
        clock=world.clock,
        retry=deps.retry,
    )
    assert await delivering.deliver_due(world.pool, rotated, limit=10) == 1
    assert world.receiver.received("/orphan") == []
    (delivery,) = (await _log(world, hook["id"]))["items"]
    assert (delivery["status"], delivery["next_attempt_at"]) == ("FAILED", None)
    assert delivery["attempt_log"][0]["error"].startswith("SECRET_UNREADABLE")


async def test_a_redeliver_asked_while_the_delivery_is_being_sent_sends_it_again(world) -> None:
    hook = await world.webhook("/inflight", ["deployment.succeeded"])
    await world.consume(world.succeeded())
    (row,) = await world.deliveries(hook["id"])
    inner = world.deps()

    class RedeliverMidSend:
        """The API's redeliver arrives while the first attempt is on the wire."""

        async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
            async with db.transaction(world.pool) as conn:
                await delivery_log.redeliver(
                    conn, world.clock, world.organization_id, uuid.UUID(hook["id"]), row["id"]
                )
            return await inner.sender.post(url, body, headers)

    racing = DeliveryDeps(sealer=SEALER, sender=RedeliverMidSend(), clock=world.clock)
    assert await delivering.deliver_due(world.pool, racing, limit=10) == 1
    (after,) = await world.deliveries(hook["id"])
    assert (after["status"], after["attempts"]) == ("PENDING", 1), "the redeliver stands"
    assert await delivering.deliver_due(world.pool, inner, limit=10) == 1
    assert len(world.receiver.received("/inflight")) == 2
    (delivery,) = (await _log(world, hook["id"]))["items"]
    assert (delivery["status"], delivery["attempts"]) == ("SUCCEEDED", 2)
    assert [a["number"] for a in delivery["attempt_log"]] == [1, 2]
