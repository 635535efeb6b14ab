"""The organization's event stream as a follower receives it, with a fake feed and a fake clock:
filtered per event for the member as they stand when it is sent, ended when the member is
removed, and handed a resume id when the connection's lifetime is over."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from slipway_gateway.access.event_feed import Live
from slipway_gateway.api.org_events import OrganizationEvents, StreamLimits
from slipway_gateway.api.streams import UpstreamStreams
from slipway_gateway.domain.catalog_index import CatalogIndex
from slipway_gateway.domain.event_stream import Position, StreamEvent
from slipway_gateway.domain.principal import UserPrincipal
from slipway_gateway.domain.projection import AccessProjection

ORG, PROJECT, CLUSTER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
STAGING, PRODUCTION = uuid.uuid4(), uuid.uuid4()
USER = UserPrincipal(uuid.uuid4(), uuid.uuid4())
ROLE = uuid.uuid4()


class FakeFeed:
    partitions = 2

    def __init__(self, items: list[Any], on_item: Any = None) -> None:
        self.items, self.on_item = items, on_item

    async def follow(
        self, org: uuid.UUID, since: Position | None, *, wake_every_s: float
    ) -> AsyncIterator[Any]:
        for item in self.items:
            if self.on_item:
                self.on_item(item)
            yield item


def _event(env: uuid.UUID, offset: int, org: uuid.UUID = ORG) -> StreamEvent:
    return StreamEvent(
        partition=0,
        offset=offset,
        organization_id=org,
        environment_id=env,
        type="deployer.DeploymentStarted",
        body={"environment_id": str(env)},
        after=Position((offset + 1, 0)),
    )


def _projection(*, custom: bool) -> AccessProjection:
    projection = AccessProjection()
    projection.apply(
        "identity.OrganizationChanged", {"organization_id": str(ORG), "name": "o", "version": 1}
    )
    membership = {"organization_id": str(ORG), "user_id": str(USER.user_id), "version": 1}
    if custom:
        grants = {"project_id": str(PROJECT), "environments": {"staging": "viewer"}}
        projection.apply(
            "identity.CustomRoleChanged",
            {"role_id": str(ROLE), "version": 1, "projects": [grants], "clusters": []},
        )
        membership["custom_role_id"] = str(ROLE)
    else:
        membership["role"] = "viewer"
    projection.apply("identity.MembershipChanged", membership)
    return projection


def _index() -> CatalogIndex:
    index = CatalogIndex()
    for env, mode in ((STAGING, "staging"), (PRODUCTION, "production")):
        index.apply(
            "catalog.EnvironmentChanged",
            {
                "environment_id": str(env),
                "organization_id": str(ORG),
                "project_id": str(PROJECT),
                "mode": mode,
                "cluster_id": str(CLUSTER),
                "version": 1,
            },
        )
    return index


def _stream(feed: FakeFeed, projection: AccessProjection, clock: Any = None) -> OrganizationEvents:
    return OrganizationEvents(
        feed=feed,  # type: ignore[arg-type]
        projection=projection,
        index=_index(),
        streams=UpstreamStreams(urls={}, internal_token=None),
        limits=StreamLimits(heartbeat_s=10, lifetime_s=60),
        clock=clock or (lambda: 0.0),
    )


async def _sent(stream: OrganizationEvents) -> list[str]:
    chunks = [c.decode() async for c in stream._events(USER, ORG, None, follow=True)]
    await stream._streams.http.aclose()
    return chunks


async def test_a_custom_role_receives_only_the_modes_it_reads_and_never_another_tenants() -> None:
    items = [
        Live(Position((0, 0))),
        _event(STAGING, 0),
        _event(PRODUCTION, 1),
        _event(STAGING, 2, org=uuid.uuid4()),  # another tenant's, however it came here
        _event(STAGING, 3),
    ]
    sent = await _sent(_stream(FakeFeed(items), _projection(custom=True)))
    assert sent[0] == ": following\n\n"
    ids = [c.split("\n")[0] for c in sent[1:]]
    assert ids == ["id: 1-0", "id: 4-0"]  # the staging events, each with the position after it


async def test_a_viewer_receives_every_environment() -> None:
    items = [Live(Position((0, 0))), _event(STAGING, 0), _event(PRODUCTION, 1)]
    sent = await _sent(_stream(FakeFeed(items), _projection(custom=False)))
    assert len(sent) == 3


async def test_a_member_removed_meanwhile_is_sent_the_end() -> None:
    projection = _projection(custom=False)

    def remove(item: Any) -> None:
        if isinstance(item, StreamEvent) and item.offset == 1:
            projection.apply(
                "identity.MembershipChanged",
                {
                    "organization_id": str(ORG),
                    "user_id": str(USER.user_id),
                    "removed": True,
                    "version": 2,
                },
            )

    items = [Live(Position((0, 0))), _event(STAGING, 0), _event(STAGING, 1), _event(STAGING, 2)]
    sent = await _sent(_stream(FakeFeed(items, remove), projection))
    assert sent[-1] == 'event: end\ndata: {"reason": "access_lost"}\n\n'
    assert len(sent) == 3  # following, the first event, the end


async def test_the_lifetime_ends_with_a_resume_at_the_position_reached() -> None:
    now = iter([0.0, 0.0, 5.0, 61.0, 61.0])
    items = [Live(Position((0, 0))), _event(STAGING, 0), Live(Position((7, 3)))]
    sent = await _sent(_stream(FakeFeed(items), _projection(custom=False), lambda: next(now)))
    assert sent[-1] == 'id: 7-3\nevent: resume\ndata: {"last_event_id": "7-3"}\n\n'
