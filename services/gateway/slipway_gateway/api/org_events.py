"""``GET /api/v1/organizations/{org}/events``: the organization's deployment and status events as
Server-Sent Events, served by the gateway itself from ``deployer.deployment.v1``
(``access.event_feed``).

Why the gateway: it already decides every request from its in-memory projections (roles,
custom roles, the catalog index), which is exactly what filtering each event needs, and Kafka
keeps the records, so the resume point (the SSE ``id``: an offset per partition) survives a
gateway restart and works on any gateway instance without a table of its own.

What a follower is sent:

- ``: following`` (a comment) once subscribed: every event from then on will come.
- One event per deployment or status event of an environment it may read (``env:read`` for its
  role or custom role, decided when the event is sent): ``event:`` the type
  (``deployer.DeploymentQueued`` …), ``id:`` the resume position, ``data:`` ``OrganizationEvent``.
- ``event: gap`` (``{"lost"}``) when a resume asks for records older than the topic keeps.
- ``: heartbeat`` after a silence; ``event: resume`` (``{"last_event_id"}``, and the ``id``) when
  the connection's lifetime is over: reconnect with ``Last-Event-ID``; ``event: end``
  (``{"reason"}``) when it ends for another reason: ``caught_up`` with ``follow=false`` (what was
  there has been sent), ``access_lost`` (the member was removed, the token or session revoked).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from slipway_gateway.access.event_feed import DeploymentEventFeed, Gap, Live
from slipway_gateway.api.streams import UpstreamStreams
from slipway_gateway.domain.catalog_index import CatalogIndex
from slipway_gateway.domain.event_stream import BadPosition, Position, StreamEvent
from slipway_gateway.domain.policy import Action, Decision, Resource, decide
from slipway_gateway.domain.principal import Principal, TokenPrincipal, UserPrincipal
from slipway_gateway.domain.projection import AccessProjection
from slipway_libs.actor import Actor
from slipway_libs.errors import BusinessError, InvalidInput

_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@dataclass(frozen=True, kw_only=True)
class StreamLimits:
    heartbeat_s: float = 15.0
    lifetime_s: float = 900.0


class OrganizationEvents:
    def __init__(
        self,
        *,
        feed: DeploymentEventFeed,
        projection: AccessProjection,
        index: CatalogIndex,
        streams: UpstreamStreams,
        limits: StreamLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feed = feed
        self._projection = projection
        self._index = index
        self._streams = streams
        self._limits = limits
        self._clock = clock

    def open(
        self, request: Request, *, principal: Principal, actor: Actor, organization_id: uuid.UUID
    ) -> StreamingResponse:
        """The stream, for a principal already allowed to read the organization."""
        since = _since(request, self.feed.partitions)
        follow = request.query_params.get("follow", "true").lower() not in ("false", "0")
        release = self._streams.hold(actor)  # counts among the principal's follows
        events = self._events(principal, organization_id, since, follow=follow)
        return StreamingResponse(
            _released(events, release),
            media_type="text/event-stream",
            headers=_HEADERS,
            background=BackgroundTask(release),
        )

    async def _events(
        self, principal: Principal, org: uuid.UUID, since: Position | None, *, follow: bool
    ) -> AsyncIterator[bytes]:
        limits, clock = self._limits, self._clock
        started = last_sent = clock()
        position, subscribed = since, False
        items = self.feed.follow(org, since, wake_every_s=min(limits.heartbeat_s, 1.0))
        async for item in items:
            if not self._still_allowed(principal, org):
                yield _named("end", {"reason": "access_lost"})
                return
            if isinstance(item, StreamEvent):
                position = item.after if position is None else position.join(item.after)
                if self._visible(principal, org, item):
                    yield _event(item, position)
                    last_sent = clock()
                continue
            if isinstance(item, Gap):
                yield _named("gap", {"lost": item.lost})
                continue
            assert isinstance(item, Live)
            position = item.position if position is None else position.join(item.position)
            if not subscribed:
                subscribed = True
                yield b": following\n\n"
            if not follow:
                yield _named("end", {"reason": "caught_up"}, position)
                return
            now = clock()
            if now - started >= limits.lifetime_s:
                yield _named("resume", {"last_event_id": position.encode()}, position)
                return
            if now - last_sent >= limits.heartbeat_s:
                yield b": heartbeat\n\n"
                last_sent = now

    def _still_allowed(self, principal: Principal, org: uuid.UUID) -> bool:
        """Still a member (or a live token of the organization), with a session not revoked."""
        if self._projection.standing(principal, org) is None:
            return False
        if isinstance(principal, TokenPrincipal):
            entry = self._projection.tokens_by_id.get(principal.token_id)
            return entry is not None and not entry.data.get("revoked")
        assert isinstance(principal, UserPrincipal)
        return not self._projection.session_revoked(principal.session_id)

    def _visible(self, principal: Principal, org: uuid.UUID, event: StreamEvent) -> bool:
        """``env:read`` on the event's environment, as the principal stands now. A deleted
        environment is judged as it last was (its last events are of its deletion)."""
        if event.organization_id != org:
            return False
        standing = self._projection.standing(principal, org)
        entry = self._index.entries.get(("environment", event.environment_id))
        if entry is None:
            resource = Resource(organization_id=org)  # unknown: built-in roles only
        else:
            if str(entry.get("organization_id")) != str(org):
                return False  # never another tenant's, whatever the event says
            project, cluster = entry.get("project_id"), entry.get("cluster_id")
            resource = Resource(
                organization_id=org,
                project_id=uuid.UUID(str(project)) if project else None,
                environment_mode=str(entry.get("mode")) if entry.get("mode") else None,
                cluster_id=uuid.UUID(str(cluster)) if cluster else None,
            )
        return decide(standing, Action.ENV_READ, resource) is Decision.ALLOW


def _since(request: Request, partitions: int) -> Position | None:
    """Where to resume: ``Last-Event-ID`` (an EventSource sends it), else ``after``."""
    value = request.headers.get("last-event-id") or request.query_params.get("after")
    if not value:
        return None
    try:
        return Position.parse(value, partitions)
    except BadPosition:
        raise InvalidInput(
            "EVENTS_BAD_LAST_EVENT_ID",
            "Last-Event-ID (or after) must be an id this stream sent.",
            field="last-event-id",
        ) from None


def _event(event: StreamEvent, position: Position) -> bytes:
    data = json.dumps(event.body, separators=(",", ":"))
    return f"id: {position.encode()}\nevent: {event.type}\ndata: {data}\n\n".encode()


def _named(name: str, body: dict[str, Any], position: Position | None = None) -> bytes:
    event_id = f"id: {position.encode()}\n" if position is not None else ""
    return f"{event_id}event: {name}\ndata: {json.dumps(body)}\n\n".encode()


async def _released(
    events: AsyncIterator[bytes], release: Callable[[], None]
) -> AsyncIterator[bytes]:
    try:
        async for chunk in events:
            yield chunk
    finally:
        release()


def unavailable() -> BusinessError:
    return BusinessError(
        "The event stream is not served by this gateway.",
        code="EVENTS_UNAVAILABLE",
        status_code=503,
    )
