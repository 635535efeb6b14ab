"""Kafka subscribers of the deployer: the catalog's full-state events (its projection), the
builder's build events and the scheduler's commands (job runs, deployment rules' stops and
starts, git pushes' deploys and new commits). Thin: each handler is a use case run in the
inbox transaction of its consumer group."""

from __future__ import annotations

from slipway_contracts.events import builder as build_events
from slipway_contracts.events import catalog as catalog_events
from slipway_contracts.events import scheduler as scheduler_events
from slipway_deployer.usecases import (
    builds,
    git_credentials,
    git_deploys,
    jobs,
    new_commits,
    projection,
    scheduled_actions,
)
from slipway_libs.bus import ConsumerSpec

CATALOG_GROUP = "deployer.catalog"
BUILDS_GROUP = "deployer.builds"
SCHEDULES_GROUP = "deployer.schedules"


def consumers() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=CATALOG_GROUP,
            topics=[
                catalog_events.CLUSTER_TOPIC,
                catalog_events.PROJECT_TOPIC,
                catalog_events.GIT_CREDENTIAL_TOPIC,
            ],
            handlers={
                **dict.fromkeys(projection.EVENT_TYPES, projection.apply),
                catalog_events.GitCredentialChanged.event_type: git_credentials.on_changed,
            },
        ),
        ConsumerSpec(
            group_id=BUILDS_GROUP,
            topics=[build_events.BUILD_TOPIC],
            handlers=dict.fromkeys(builds.EVENT_TYPES, builds.on_build_event),
        ),
        ConsumerSpec(
            group_id=SCHEDULES_GROUP,
            topics=[scheduler_events.COMMANDS_TOPIC],
            handlers={
                scheduler_events.JobRunRequested.event_type: jobs.on_run_requested,
                scheduler_events.EnvironmentActionRequested.event_type: (
                    scheduled_actions.on_action_requested
                ),
                scheduler_events.ServiceDeployRequested.event_type: (
                    git_deploys.on_deploy_requested
                ),
                scheduler_events.NewCommitAvailable.event_type: new_commits.on_new_commit,
            },
        ),
    ]
