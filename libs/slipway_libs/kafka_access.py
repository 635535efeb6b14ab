"""Who may do what on Kafka: one principal per service, ACLs for exactly its topics.

The cluster authenticates every client (SASL/SCRAM) and its authorizer denies what no ACL allows
(DESIGN, security model): a deployed app on the host network, or a compromised service, cannot
publish the events other services trust (``identity.access.v1`` decides every request at the
gateways). Each service may

- write (and create, on a fresh cluster) only the topics it produces: its own ``<service>.``
  topics, plus the shared log-line topic for the builder and the deployer;
- read only the topics it consumes, in consumer groups named ``<service>.…``;
- write the dead-letter topics of its own groups (``dlq.<service>.…``).

Every name is under the installation's topic prefix (``SLIPWAY_TOPIC_PREFIX``): ``grant`` applies
the table for one prefix. The devstack's ``admin`` principal (a super user) creates the platform's
topics and grants the ACLs once per prefix: ``python -m slipway_libs.kafka_access`` (``make
migrate``) for the installation, and each test platform for its own random prefix, so that the
real services run in tests as their real principals, confined to their test's prefix.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request

from slipway_contracts import TOPICS
from slipway_contracts.events.audit import AUDIT_PAYLOADS
from slipway_contracts.events.builder import BUILD_TOPIC
from slipway_contracts.events.catalog import CLUSTER_TOPIC, GIT_CREDENTIAL_TOPIC, PROJECT_TOPIC
from slipway_contracts.events.deployer import BUILD_COMMANDS_TOPIC, DEPLOYMENT_TOPIC, SERVICE_TOPIC
from slipway_contracts.events.identity import ACCESS_TOPIC, ORGANIZATION_TOPIC
from slipway_contracts.events.logs import LINES_TOPIC
from slipway_contracts.events.scheduler import COMMANDS_TOPIC
from slipway_libs.bus import ensure_topics
from slipway_libs.settings import KafkaConnection, read_env_file


@dataclass(frozen=True)
class Access:
    """What one service's principal may do. A name ending in ``.`` is a prefix."""

    writes: tuple[str, ...]
    reads: tuple[str, ...]
    groups: bool = True  # reads in consumer groups (the gateway assigns partitions itself)


ACCESS: dict[str, Access] = {
    "identity": Access(
        writes=("identity.",), reads=tuple(sorted({p.topic for p in AUDIT_PAYLOADS.values()}))
    ),
    "catalog": Access(
        writes=("catalog.",), reads=(ORGANIZATION_TOPIC, SERVICE_TOPIC, COMMANDS_TOPIC)
    ),
    "builder": Access(writes=("builder.", LINES_TOPIC), reads=(BUILD_COMMANDS_TOPIC,)),
    "deployer": Access(
        writes=("deployer.", LINES_TOPIC),
        reads=(BUILD_TOPIC, COMMANDS_TOPIC, CLUSTER_TOPIC, PROJECT_TOPIC, GIT_CREDENTIAL_TOPIC),
    ),
    "scheduler": Access(
        writes=("scheduler.",), reads=(PROJECT_TOPIC, DEPLOYMENT_TOPIC, GIT_CREDENTIAL_TOPIC)
    ),
    "logs": Access(writes=("logs.",), reads=(LINES_TOPIC, DEPLOYMENT_TOPIC)),
    # the deployments topic: the organizations' live event streams (``…/events``)
    "gateway": Access(
        writes=(),
        reads=(ACCESS_TOPIC, CLUSTER_TOPIC, PROJECT_TOPIC, DEPLOYMENT_TOPIC),
        groups=False,
    ),
}


# Kafka's wire codes (org.apache.kafka.common.acl / resource)
class Resource(IntEnum):
    TOPIC = 2
    GROUP = 3


class Operation(IntEnum):
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


class Pattern(IntEnum):
    LITERAL = 3
    PREFIXED = 4


ALLOW = 3


@dataclass(frozen=True)
class Binding:
    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    def row(self) -> tuple[Any, ...]:
        """The fields of a CreateAcls v1 creation (and of a DeleteAcls v1 exact filter)."""
        return (
            int(self.resource),
            self.name,
            int(self.pattern),
            f"User:{self.principal}",
            "*",
            int(self.operation),
            ALLOW,
        )


def _resource(name: str, prefix: str) -> tuple[str, Pattern]:
    return prefix + name, Pattern.PREFIXED if name.endswith(".") else Pattern.LITERAL


def bindings(service: str, prefix: str = "") -> list[Binding]:
    """The ACLs of one service's principal under one topic prefix."""
    access = ACCESS[service]
    out: list[Binding] = []

    def allow(resource: Resource, target: tuple[str, Pattern], *ops: Operation) -> None:
        out.extend(Binding(service, resource, target[0], target[1], op) for op in ops)

    for name in access.writes:
        allow(Resource.TOPIC, _resource(name, prefix), Operation.WRITE, Operation.CREATE)
        allow(Resource.TOPIC, _resource(name, prefix), Operation.DESCRIBE)
    for name in access.reads:
        allow(Resource.TOPIC, _resource(name, prefix), Operation.READ)
    if access.reads and access.groups:
        dead_letters = _resource(f"dlq.{service}.", prefix)
        allow(Resource.TOPIC, dead_letters, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE)
        allow(Resource.GROUP, _resource(f"{service}.", prefix), Operation.READ)
    return out


def all_bindings(prefix: str = "") -> list[Binding]:
    return [b for service in ACCESS for b in bindings(service, prefix)]


def may_create(service: str, topic: str) -> bool:
    """Whether the service's principal may create this (unprefixed) topic."""
    writes = ACCESS[service].writes if service in ACCESS else ()
    return any(topic.startswith(w) if w.endswith(".") else topic == w for w in writes)


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._rows = list(rows)

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._rows)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 31

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._rows = list(rows)

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._rows)


class _DescribeAcls(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]
    """Every ACL the broker's authorizer holds (filters: ANY, no name, no principal)."""

    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        any_ = 1
        return request_struct_class(any_, None, any_, None, None, any_, any_)


class AclError(RuntimeError):
    pass


async def _send(kafka: KafkaConnection, request: Request[Any]) -> Any:
    admin = AIOKafkaAdminClient(**kafka.options(), client_id="slipway-acls")
    await admin.start()
    try:
        # aiokafka has no public ACL calls; its protocol module has the requests
        return await admin._send_request(request)
    finally:
        await admin.close()


async def create_acls(kafka: KafkaConnection, acls: Iterable[Binding]) -> None:
    rows = [b.row() for b in acls]
    if not rows:
        return
    response = await _send(kafka, _CreateAcls(rows))
    errors = [(code, msg) for code, msg in response.creation_responses if code]
    if errors:
        raise AclError(f"CreateAcls failed: {errors[:3]}")


async def effective_acls(kafka: KafkaConnection, prefix: str) -> set[tuple[Any, ...]]:
    """The ACLs the broker's authorizer holds on resources named under ``prefix``, as rows."""
    response = await _send(kafka, _DescribeAcls())
    return {
        (r[0], r[1], r[2], acl[0], acl[1], acl[2], acl[3])
        for r in response.resources
        if r[1].startswith(prefix)
        for acl in r[3]
    }


async def wait_effective(
    kafka: KafkaConnection, acls: Iterable[Binding], prefix: str, *, timeout_s: float = 30
) -> None:
    """Until the broker authorizes with ``acls``: a creation is acknowledged by the controller
    before the broker has applied it, and a client that starts at once is refused (a consumer
    that starts refused stops its process)."""
    wanted = {b.row() for b in acls}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while missing := wanted - await effective_acls(kafka, prefix):
        if asyncio.get_running_loop().time() > deadline:
            raise AclError(f"{len(missing)} ACLs not in effect after {timeout_s:g} s")
        await asyncio.sleep(0.1)


async def delete_acls(kafka: KafkaConnection, acls: Iterable[Binding]) -> None:
    rows = [b.row() for b in acls]
    if rows:
        await _send(kafka, _DeleteAcls(rows))


async def grant(admin: KafkaConnection, prefix: str = "") -> None:
    """As the admin principal: create the platform's topics under ``prefix`` (a service may
    create only its own, and its consumers need the others' to exist) and every service's ACLs."""
    await ensure_topics(admin, [replace(t, name=prefix + t.name) for t in TOPICS])
    await create_acls(admin, all_bindings(prefix))
    await wait_effective(admin, all_bindings(prefix), prefix)


async def revoke(admin: KafkaConnection, prefix: str) -> None:
    await delete_acls(admin, all_bindings(prefix))


def admin_connection(env: dict[str, str]) -> KafkaConnection:
    """The admin principal's connection from an environment (the devstack's env file)."""
    return KafkaConnection(
        env.get("SLIPWAY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
        username=env.get("SLIPWAY_KAFKA_ADMIN_USERNAME"),
        password=env.get("SLIPWAY_KAFKA_ADMIN_PASSWORD"),
        mechanism="SCRAM-SHA-512"
        if env.get("SLIPWAY_KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512"
        else "SCRAM-SHA-256",
    )


def main() -> None:
    """``python -m slipway_libs.kafka_access``: topics and ACLs of the installation's prefix."""
    env = {**read_env_file(), **{k: v for k, v in os.environ.items() if k.startswith("SLIPWAY_")}}
    admin = admin_connection(env)
    if admin.username is None:
        sys.stderr.write("kafka_access: no SLIPWAY_KAFKA_ADMIN_USERNAME: nothing to grant\n")
        return
    asyncio.run(grant(admin, env.get("SLIPWAY_TOPIC_PREFIX", "")))
    sys.stdout.write(f"kafka_access: topics and ACLs of {len(ACCESS)} principals granted\n")


if __name__ == "__main__":
    main()
