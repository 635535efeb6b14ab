"""Rendered manifests checked against the Kubernetes schemas of the cluster's version
(kubernetes-validate: the schemas ship with the package, nothing is fetched), strictly (an unknown
field is an error), before anything is applied.

A refusal names the object and the field, and for a Secret never the schema's message (it may
quote the value).
"""

from __future__ import annotations

import asyncio
import re

import kubernetes_validate

from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.render import Manifest

_MINOR = re.compile(r"v?(\d+)\.(\d+)")


class Validator:
    def __init__(self, client: KubeClient, version: str | None) -> None:
        self._client = client
        self._version = _schema_version(version) if version else None

    async def check(self, manifests: list[Manifest]) -> None:
        if self._version is None:
            self._version = _schema_version(await self._server_version())
        await asyncio.to_thread(validate_all, manifests, self._version)

    async def _server_version(self) -> str:
        found = await self._client.version()
        return f"{found.get('major', '')}.{str(found.get('minor', '')).rstrip('+')}"


def validate_all(manifests: list[Manifest], version: str) -> None:
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            meta = manifest.get("metadata") or {}
            where = ".".join(str(p) for p in error.path) or "(the object)"
            why = "" if manifest.get("kind") == "Secret" else f": {error.message}"
            message = (
                f"the rendered {manifest.get('kind')} {meta.get('name')} is not valid for "
                f"Kubernetes {version} at {where}{why}"
            )
            raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, message) from None


def _schema_version(version: str) -> str:
    """``major.minor``, capped at the newest schemas the package has (a newer cluster is
    checked against those)."""
    found = _MINOR.match(version)
    if found is None:
        raise RuntimeFailure(FailureReason.RUNTIME_ERROR, f"unknown Kubernetes version {version!r}")
    wanted = (int(found[1]), int(found[2]))
    latest = _MINOR.match(kubernetes_validate.latest_version())
    assert latest is not None
    newest = (int(latest[1]), int(latest[2]))
    major, minor = min(wanted, newest)
    return f"{major}.{minor}"
