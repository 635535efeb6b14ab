"""Events (and commands) produced by the deployer service."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from slipway_contracts.envelope import EventPayload

BUILD_COMMANDS_TOPIC = "deployer.build.v1"


class GitSourceSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str
    branch: str = "main"
    commit: str | None = None
    root_path: str = "/"
    dockerfile_path: str = "Dockerfile"


class BuildRequested(EventPayload):
    """Build this service's source into ``<registry>/<image_repository>:<commit>``.

    ``git_token_sealed``: an https token sealed with the installation's transport key (base64).
    """

    event_type = "deployer.BuildRequested"
    topic = BUILD_COMMANDS_TOPIC

    build_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID | None = None
    service_id: uuid.UUID
    deployment_id: uuid.UUID | None = None
    source: GitSourceSpec
    build_args: dict[str, str] = {}
    image_repository: str
    git_token_sealed: str | None = None


class BuildCancelRequested(EventPayload):
    event_type = "deployer.BuildCancelRequested"
    topic = BUILD_COMMANDS_TOPIC

    build_id: uuid.UUID
    organization_id: uuid.UUID


PAYLOADS: tuple[type[EventPayload], ...] = (BuildRequested, BuildCancelRequested)
