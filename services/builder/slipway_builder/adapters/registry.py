"""The OCI registry, over its HTTP API: does an image exist, and what is its digest (with the
builder's credentials: the platform's registry refuses anonymous requests)."""

from __future__ import annotations

import httpx

from slipway_libs.registries import RegistryCredentials

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


class Registry:
    def __init__(
        self,
        address: str,
        *,
        tls: bool = False,
        timeout_s: float = 10,
        credentials: RegistryCredentials | None = None,
    ) -> None:
        self.address = address
        self._base = f"{'https' if tls else 'http'}://{address}/v2"
        auth = (credentials.username, credentials.password) if credentials else None
        # one client for the life of the process: creating one costs tens of milliseconds
        self._client = httpx.AsyncClient(timeout=timeout_s, auth=auth, trust_env=False)

    def image(self, repository: str, tag: str) -> str:
        return f"{self.address}/{repository}:{tag}"

    async def digest(self, repository: str, tag: str) -> str | None:
        """The manifest digest of ``repository:tag``, or None when it is not there."""
        response = await self._client.head(
            f"{self._base}/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers.get("Docker-Content-Digest")
