"""Rendered manifests checked against the Kubernetes schemas of the cluster's version
(kubernetes-validate: the schemas ship with the package, nothing is fetched), strictly (an unknown
field is an error), before anything is applied.

The package's own ``validate`` reads and compiles the schema and its (large) definitions on every
call, ~50 ms a manifest; the compiled validator of each (kind, apiVersion, version) is kept here
instead, so a deploy pays for it once per process.

A refusal names the object and the field, and for a Secret never the schema's message (it may
quote the value).
"""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as schemas
from referencing import Registry, Resource

from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.names import Manifest

_MINOR = re.compile(r"v?(\d+)\.(\d+)")
_GROUP_DOMAIN = re.compile(r"^([^./]*)(?:\.[^/]*)?/")  # networking.k8s.io/v1 -> networking-v1


class Validator:
    def __init__(self, client: KubeClient, version: str | None) -> None:
        self._client = client
        self._version = schema_version(version) if version else None

    async def check(self, manifests: list[Manifest]) -> None:
        if self._version is None:
            self._version = schema_version(await self._server_version())
        await asyncio.to_thread(validate_all, manifests, self._version)

    async def _server_version(self) -> str:
        found = await self._client.version()
        return f"{found.get('major', '')}.{str(found.get('minor', '')).rstrip('+')}"


def validate_all(manifests: list[Manifest], version: str) -> None:
    for manifest in manifests:
        kind, api_version = str(manifest.get("kind")), str(manifest.get("apiVersion"))
        error = jsonschema.exceptions.best_match(
            _validator(kind, api_version, version).iter_errors(manifest)
        )
        if error is None:
            continue
        meta = manifest.get("metadata") or {}
        where = ".".join(str(p) for p in error.absolute_path) or "(the object)"
        why = "" if kind == "Secret" else f": {error.message}"
        message = (
            f"the rendered {kind} {meta.get('name')} is not valid for Kubernetes {version} at "
            f"{where}{why}"
        )
        raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, message)


def schema_version(version: str) -> str:
    """``major.minor``, capped at the newest schemas the package has (a newer cluster is
    checked against those)."""
    wanted = _minor(version)
    if wanted is None:
        raise RuntimeFailure(FailureReason.RUNTIME_ERROR, f"unknown Kubernetes version {version!r}")
    newest = _minor(kubernetes_validate.latest_version())
    assert newest is not None
    major, minor = min(wanted, newest)
    return f"{major}.{minor}"


@functools.lru_cache(maxsize=64)
def _validator(kind: str, api_version: str, version: str) -> Any:
    """The compiled strict schema of ``kind`` at the newest schemas not newer than ``version``."""
    wanted = _minor(version) or (0, 0)
    full = [v for v in schemas.all_versions() if (m := _minor(v)) is not None and m <= wanted][-1]
    directory = f"kubernetes-json-schema/v{full}-local-strict"
    group = _GROUP_DOMAIN.sub(r"\1-", api_version)
    try:
        schema = schemas.schema_contents(f"{directory}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        message = f"no schema of {kind} {api_version} for Kubernetes {version}"
        raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, message) from None
    definitions = schemas.schema_contents(f"{directory}/_definitions.json", version)
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _minor(version: str) -> tuple[int, int] | None:
    found = _MINOR.match(version)
    return (int(found[1]), int(found[2])) if found else None
