"""Every Kafka topic of the platform, in one place.

Names follow ``<producer>.<aggregate>.v<major>``; events are keyed by aggregate id. The specs are
applied at start-up by ``slipway_libs.bus.ensure_topics`` (create missing topics, never delete).
Each consumer group has a dead-letter topic ``dlq.<consumer-group>`` created on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    name: str
    description: str
    partitions: int = 3
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False
    public: bool = False
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        cfg = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "retention.ms": str(-1 if self.compacted else self.retention_ms),
        }
        cfg.update(self.extra_config)
        return cfg


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name="identity.user.v1",
        description="Users signing up and changing their profile.",
        compacted=False,
    ),
    TopicSpec(
        name="identity.organization.v1",
        description="Organizations created, renamed and deleted.",
        public=True,
    ),
    TopicSpec(
        name="identity.access.v1",
        description="Memberships, custom roles, API tokens, revoked sessions and signing keys, "
        "as versioned state, for access projections such as the gateway's.",
    ),
    TopicSpec(
        name="catalog.cluster.v1",
        description="Clusters of every organization, as full state (credentials never included).",
        public=True,
    ),
    TopicSpec(
        name="catalog.project.v1",
        description="Everything inside a project, as full state with tombstones: the project, "
        "its environments, services, stages, deployment rules and variables (secrets sealed).",
        partitions=6,
        public=True,
    ),
    TopicSpec(
        name="catalog.git_credential.v1",
        description="Organizations' git credentials for private repositories, as full state "
        "with tombstones (the token or key sealed with the transport key); keyed by credential.",
    ),
    TopicSpec(
        name="deployer.build.v1",
        description="Build commands from the deployer to the builder, keyed by build.",
    ),
    TopicSpec(
        name="builder.build.v1",
        description="A build's life: queued, started, succeeded (image and digest), failed "
        "(reason and last lines), canceled; keyed by build.",
        public=True,
    ),
    TopicSpec(
        name="deployer.deployment.v1",
        description="Deployments of every environment: queued, started, stage changes, service "
        "status changes, succeeded, failed, canceled; keyed by environment (one queue, in order).",
        partitions=6,
        public=True,
    ),
    TopicSpec(
        name="deployer.service.v1",
        description="What deployed services expose to the rest of the platform, such as a "
        "database's connection (password sealed), as full state; keyed by service.",
        public=True,
    ),
    TopicSpec(
        name="scheduler.command.v1",
        description="Commands from the scheduler: run a cron job now (its schedule fired).",
    ),
    *(
        TopicSpec(
            name=f"{producer}.audit.v1",
            description=f"Audit records of the {producer} service's state-changing actions.",
            retention_ms=30 * DAY_MS,
        )
        for producer in ("identity", "catalog", "builder", "deployer", "scheduler")
    ),
    TopicSpec(
        name="logs.lines.v1",
        description="Build, deployment and live log lines, keyed by deployment or service.",
        partitions=6,
        retention_ms=2 * DAY_MS,
    ),
)

TOPICS_BY_NAME: dict[str, TopicSpec] = {t.name: t for t in TOPICS}


def dead_letter_topic(consumer_group: str) -> str:
    """The dead-letter topic of one consumer group: events it could not process."""
    return f"dlq.{consumer_group}"


def dead_letter_spec(consumer_group: str) -> TopicSpec:
    return TopicSpec(
        name=dead_letter_topic(consumer_group),
        description=f"Events the consumer group {consumer_group} gave up on.",
        partitions=1,
        retention_ms=30 * DAY_MS,
    )
