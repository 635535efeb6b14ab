"""Talking to a self-managed cluster's API server (the connectivity check)."""

from __future__ import annotations

import base64
import ssl
from typing import Any

import httpx

from slipway_catalog.domain.clusters import server_of


class KubernetesProbe:
    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s

    async def version(self, *, api_url: str, credentials: dict[str, Any]) -> str:
        token, verify = self._auth(credentials)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            async with httpx.AsyncClient(verify=verify, timeout=self._timeout) as client:
                response = await client.get(f"{api_url}/version", headers=headers)
        except httpx.ConnectError as exc:
            raise ConnectionError(f"cannot reach {api_url}: {exc}") from None
        except httpx.TimeoutException:
            raise ConnectionError(f"{api_url} did not answer within {self._timeout}s") from None
        except (httpx.HTTPError, ssl.SSLError) as exc:
            raise ConnectionError(f"{api_url}: {exc}") from None
        if response.status_code in (401, 403):
            raise ConnectionError(f"{api_url} refused the credentials ({response.status_code})")
        if response.status_code != 200:
            raise ConnectionError(f"{api_url}/version answered {response.status_code}")
        try:
            return str(response.json()["gitVersion"])
        except (ValueError, KeyError):
            raise ConnectionError(f"{api_url} does not look like a Kubernetes API") from None

    @staticmethod
    def _auth(credentials: dict[str, Any]) -> tuple[str | None, ssl.SSLContext | bool]:
        token, ca_pem = credentials.get("token"), credentials.get("ca_cert")
        insecure = False
        if credentials.get("kubeconfig"):
            _, from_config = server_of(credentials["kubeconfig"])
            token = from_config["token"] or token
            if from_config["ca_data"]:
                ca_pem = base64.b64decode(from_config["ca_data"]).decode()
            insecure = from_config["insecure"]
        if insecure:
            return token, False
        if ca_pem:
            context = ssl.create_default_context()
            try:
                context.load_verify_locations(cadata=ca_pem)
            except ssl.SSLError as exc:
                raise ConnectionError(f"the CA certificate is not valid PEM: {exc}") from None
            return token, context
        return token, True
