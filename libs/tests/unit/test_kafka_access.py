"""The Kafka ACL table: each service writes only its own topics, reads only what it consumes."""

from __future__ import annotations

from slipway_contracts import TOPICS
from slipway_libs.kafka_access import ACCESS, Operation, Pattern, Resource, bindings, may_create


def _writable(service: str, prefix: str = "") -> set[tuple[str, Pattern]]:
    return {
        (b.name, b.pattern)
        for b in bindings(service, prefix)
        if b.resource is Resource.TOPIC and b.operation is Operation.WRITE
    }


def test_only_identity_writes_the_access_topic() -> None:
    writers = {s for s in ACCESS if may_create(s, "identity.access.v1")}
    assert writers == {"identity"}
    assert _writable("gateway") == set()


def test_every_topic_has_a_producer_and_write_grants_stay_under_the_prefix() -> None:
    for topic in TOPICS:
        assert any(may_create(s, topic.name) for s in ACCESS), topic.name
    for service in ACCESS:
        for name, _ in _writable(service, "t1234."):
            assert name.startswith("t1234.")
    assert ("t1234.catalog.", Pattern.PREFIXED) in _writable("catalog", "t1234.")
    assert ("t1234.dlq.catalog.", Pattern.PREFIXED) in _writable("catalog", "t1234.")


def test_reads_are_literal_topics_and_groups_are_the_services_own() -> None:
    reads = [b for b in bindings("gateway", "p.") if b.operation is Operation.READ]
    topics = {b.name for b in reads if b.resource is Resource.TOPIC}
    assert topics == {
        "p.identity.access.v1",
        "p.catalog.cluster.v1",
        "p.catalog.project.v1",
        "p.deployer.deployment.v1",
    }
    assert all(b.pattern is Pattern.LITERAL for b in reads if b.resource is Resource.TOPIC)
    groups = {(b.name, b.pattern) for b in bindings("deployer") if b.resource is Resource.GROUP}
    assert groups == {("deployer.", Pattern.PREFIXED)}
