"""What every service of an environment shares on a cluster — its Namespace and the platform
registry's pull Secret — applied once per environment per deployment, not once per service
(three services were three applies of each).

Invariants:
- ``apply`` applies the shared objects of a namespace once (concurrent callers wait on the same
  apply; a changed object, e.g. a new registry password, is applied again), then the caller's
  own objects, in order.
- ``renew`` (a deployment of the environment begins) forgets what was applied there, so each
  deployment applies the shared objects once more: manual drift (a label edited, the pull
  Secret deleted) is taken back by the next deployment, as for every other object.
- A failed shared apply is not remembered: the next caller tries again.
- The memo holds a digest of the objects, never their content (the pull Secret is a secret).
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.names import REGISTRY_SECRET, Manifest


def shared(manifest: Manifest) -> bool:
    """An object of the whole environment (every service renders the same one)."""
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    return kind == "Namespace" or (kind == "Secret" and name == REGISTRY_SECRET)


class Namespaces:
    def __init__(self, client: KubeClient) -> None:
        self._client = client
        # namespace -> (digest of its shared objects, their apply)
        self._applied: dict[str, tuple[str, asyncio.Future[list[Manifest]]]] = {}

    async def apply(self, manifests: list[Manifest]) -> list[Manifest]:
        """The shared objects (once), then the others; what the API server answered for the
        others, in order."""
        common = [m for m in manifests if shared(m)]
        own = [m for m in manifests if not shared(m)]
        if common:
            await self._once(common)
        return await self._client.apply_all(own)

    def renew(self, namespace: str) -> None:
        self._applied.pop(namespace, None)

    async def _once(self, common: list[Manifest]) -> None:
        namespace = _namespace_of(common)
        digest = hashlib.sha256(json.dumps(common, sort_keys=True).encode()).hexdigest()
        known = self._applied.get(namespace)
        if known is None or known[0] != digest or _failed(known[1]):
            applying = asyncio.ensure_future(self._client.apply_all(common))
            known = self._applied[namespace] = (digest, applying)
        # shielded: one caller canceled (its deployment) does not cancel the others' apply
        await asyncio.shield(known[1])


def _namespace_of(common: list[Manifest]) -> str:
    meta = common[0]["metadata"]
    return str(meta["name"] if common[0]["kind"] == "Namespace" else meta["namespace"])


def _failed(applying: asyncio.Future[list[Manifest]]) -> bool:
    return applying.done() and (applying.cancelled() or applying.exception() is not None)
