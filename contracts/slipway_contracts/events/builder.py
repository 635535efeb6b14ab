"""Events produced by the builder service: a build's life, keyed by build id."""

from __future__ import annotations

import uuid

from slipway_contracts.envelope import EventPayload

BUILD_TOPIC = "builder.build.v1"


class _BuildEvent(EventPayload):
    topic = BUILD_TOPIC

    build_id: uuid.UUID
    organization_id: uuid.UUID
    service_id: uuid.UUID
    deployment_id: uuid.UUID | None = None
    environment_id: uuid.UUID | None = None


class BuildQueued(_BuildEvent):
    event_type = "builder.BuildQueued"

    position: int = 0


class BuildStarted(_BuildEvent):
    event_type = "builder.BuildStarted"

    commit: str | None = None


class BuildSucceeded(_BuildEvent):
    """The image is in the registry: ``image`` (repository:tag) and its manifest ``digest``."""

    event_type = "builder.BuildSucceeded"

    image: str
    digest: str
    commit: str
    duration_s: float
    skipped: bool = False


class BuildFailed(_BuildEvent):
    event_type = "builder.BuildFailed"

    reason: str
    message: str
    last_lines: list[str] = []
    duration_s: float = 0.0


class BuildCanceled(_BuildEvent):
    event_type = "builder.BuildCanceled"

    duration_s: float = 0.0


PAYLOADS: tuple[type[EventPayload], ...] = (
    BuildQueued,
    BuildStarted,
    BuildSucceeded,
    BuildFailed,
    BuildCanceled,
)
