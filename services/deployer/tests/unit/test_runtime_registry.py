"""The runtime registry (``adapters/runtime/registry.py``) on its own: one runtime per cluster
version (a changed cluster gets a new one), the API server reached at every placement, and
the monitor's ``known`` not reaching a failed cluster again before ``retry_after_s``."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from services.deployer.tests.unit.fakes import FakeRuntime, NoDatabases
from slipway_deployer.adapters.runtime import (
    ClusterAccess,
    Databases,
    FailureReason,
    Runtime,
    RuntimeFailure,
)
from slipway_deployer.adapters.runtime.registry import Runtimes
from slipway_deployer.domain.catalog import CatalogCluster
from slipway_libs.crypto import Sealer, new_key_setting

SEALER = Sealer.from_setting(new_key_setting("t"))


def cluster(version: int = 1, **changes: Any) -> CatalogCluster:
    cluster_id = changes.pop("id", uuid.UUID(int=7))
    access = {"api_url": "https://k8s.example.com", "token": "tok", "ca_cert": None}
    sealed = SEALER.seal(json.dumps(access).encode(), aad=cluster_id.bytes)
    fields: dict[str, Any] = {
        "id": cluster_id,
        "organization_id": uuid.UUID(int=1),
        "name": "prod",
        "kind": "self_managed",
        "api_url": access["api_url"],
        "credentials_sealed": base64.b64encode(sealed).decode(),
        "capabilities": None,
        "settings": None,
        "deleted": False,
        "version": version,
    }
    return CatalogCluster(**(fields | changes))


class Cluster:
    """The API server (``reach``) and the runtimes made for it (``open``)."""

    def __init__(self) -> None:
        self.up = True
        self.reached = 0
        self.made: list[FakeRuntime] = []

    async def reach(self, access: ClusterAccess) -> None:
        self.reached += 1
        if not self.up:
            raise RuntimeFailure(FailureReason.CLUSTER_UNREACHABLE, "connection refused")

    async def open(self, access: ClusterAccess) -> tuple[Runtime, Databases]:
        self.made.append(FakeRuntime())
        return self.made[-1], NoDatabases()  # type: ignore[return-value]


def runtimes(api: Cluster, local: FakeRuntime | None = None) -> Runtimes:
    return Runtimes(
        local_runtime=local or FakeRuntime(),
        local_databases=NoDatabases(),  # type: ignore[arg-type]
        transport=SEALER,
        reach=api.reach,
        opener=api.open,
        retry_after_s=3600,
    )


async def test_one_runtime_per_cluster_version_reached_every_time() -> None:
    api = Cluster()
    registry = runtimes(api)
    first = await registry.placement(uuid.UUID(int=7), cluster())
    again = await registry.placement(uuid.UUID(int=7), cluster())
    assert first.runtime is again.runtime and len(api.made) == 1
    assert api.reached == 2  # a deployment never starts on a cluster not answering now

    changed = await registry.placement(uuid.UUID(int=7), cluster(version=2))
    assert changed.runtime is not first.runtime and len(api.made) == 2
    monitored = await registry.known(uuid.UUID(int=7), cluster(version=2))
    assert monitored is not None and monitored.runtime is changed.runtime


async def test_a_down_cluster_is_unreachable_and_the_monitor_does_not_hammer_it() -> None:
    api = Cluster()
    api.up = False
    registry = runtimes(api)
    with pytest.raises(RuntimeFailure) as failed:
        await registry.placement(uuid.UUID(int=7), cluster())
    assert failed.value.reason is FailureReason.CLUSTER_UNREACHABLE
    assert "'prod'" in failed.value.message and "connection refused" in failed.value.message
    assert api.made == []

    assert await registry.known(uuid.UUID(int=7), cluster()) is None
    assert await registry.known(uuid.UUID(int=7), cluster()) is None
    assert api.reached == 2  # the placement's, then the first ``known``'s only
    api.up = True
    assert await registry.known(uuid.UUID(int=7), cluster(version=2)) is not None  # changed


async def test_the_local_cluster_is_the_local_runtime_and_never_reached() -> None:
    api, local = Cluster(), FakeRuntime()
    where = await runtimes(api, local).placement(
        uuid.UUID(int=8), replace(cluster(), kind="local", credentials_sealed=None)
    )
    assert (where.kind, where.runtime, api.reached) == ("local", local, 0)
