"""A small REST client of the Kubernetes API over kubernetes-asyncio's ``ApiClient`` (its
authentication, TLS and connection pool), working in plain JSON dicts: server-side apply, get,
list, merge patch, delete, watch and streamed logs of the few kinds Slipway renders.

Why not the generated typed APIs: server-side apply has no typed method, and the manifests are
dicts already (``render``); watching in dicts also spares a model per event.

Errors: a connection that cannot be made, or credentials the API server refuses (401), raise
``RuntimeFailure(CLUSTER_UNREACHABLE)`` (the execution must not fall back to another runtime);
any other refusal raises ``KubeError`` with the API server's status, reason and message (never a
request body: manifests hold secrets).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from kubernetes_asyncio.client import ApiClient, Configuration

from slipway_deployer.adapters.runtime.base import FailureReason, LogLine, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes.names import FIELD_MANAGER, Manifest

log = structlog.get_logger(__name__)

APPLY = "application/apply-patch+yaml"  # JSON is YAML: a manifest dict is sent as is
MERGE = "application/merge-patch+json"
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class Resource:
    group_version: str  # "v1", "apps/v1", ...
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        root = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{root}{scope}/{self.plural}" + (f"/{name}" if name else "")


RESOURCES: dict[str, Resource] = {
    "Namespace": Resource("v1", "namespaces", namespaced=False),
    "Secret": Resource("v1", "secrets"),
    "Service": Resource("v1", "services"),
    "Pod": Resource("v1", "pods"),
    "Event": Resource("v1", "events"),
    "PersistentVolumeClaim": Resource("v1", "persistentvolumeclaims"),
    "Deployment": Resource("apps/v1", "deployments"),
    "StatefulSet": Resource("apps/v1", "statefulsets"),
    "ReplicaSet": Resource("apps/v1", "replicasets"),
    "Job": Resource("batch/v1", "jobs"),
    "CronJob": Resource("batch/v1", "cronjobs"),
    "Ingress": Resource("networking.k8s.io/v1", "ingresses"),
}


class KubeError(RuntimeFailure):
    """The API server refused a request (not 401: that is CLUSTER_UNREACHABLE). A
    ``RuntimeFailure`` (INVALID_WORKLOAD for the server's own validation, 422; RUNTIME_ERROR
    otherwise, e.g. 403: the account lacks a permission), so the runtime's callers see only
    those."""

    def __init__(self, status: int, kube_reason: str, detail: str) -> None:
        reason = FailureReason.INVALID_WORKLOAD if status == 422 else FailureReason.RUNTIME_ERROR
        message = f"the cluster's API server refused ({status} {kube_reason}): {detail}"
        super().__init__(reason, message)
        self.status, self.kube_reason, self.detail = status, kube_reason, detail


def unreachable(detail: str) -> RuntimeFailure:
    return RuntimeFailure(FailureReason.CLUSTER_UNREACHABLE, detail)


class KubeClient:
    def __init__(self, api: ApiClient, *, request_timeout_s: float = 30.0) -> None:
        self._api = api
        # Timed: making a connection, and every read of the answer. Not timed: the wait for a
        # connection of the pool, which lasts while other rollouts' requests and watches hold it
        # (each ends by its own deadline) — a busy pool is not an unreachable API server (a
        # total timeout would count that wait and fail a healthy rollout as CLUSTER_UNREACHABLE).
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=request_timeout_s, sock_read=request_timeout_s
        )
        self._connect_timeout_s = request_timeout_s

    @classmethod
    def connect(
        cls,
        *,
        api_url: str,
        token: str | None,
        ca_cert: str | None,
        insecure: bool = False,
        request_timeout_s: float = 30.0,
        max_connections: int = 256,
    ) -> KubeClient:
        """A client of ``api_url`` authenticated by a bearer ``token``, trusting ``ca_cert``
        (PEM; None: the system's store). Nothing is sent until the first request."""
        config = Configuration(host=api_url.rstrip("/"))
        if token:
            config.api_key = {"BearerToken": token}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        config.verify_ssl = not insecure
        # a rollout holds two watches (each its own HTTP/1.1 connection) while it lasts: the
        # library's 100 would queue the requests of the 51st concurrent rollout behind them
        config.connection_pool_maxsize = max_connections
        with _ca_file(ca_cert) as path:
            config.ssl_ca_cert = path
            api = ApiClient(config)  # reads the CA file now: it may go afterwards
        return cls(api, request_timeout_s=request_timeout_s)

    async def close(self) -> None:
        await self._api.close()

    # -- requests --------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        response = await self._send(
            method, path, query=query, body=body, content_type=content_type, accept=accept
        )
        try:
            data = await response.read()
        finally:
            response.release()
        return json.loads(data) if data else {}

    async def version(self) -> dict[str, Any]:
        return await self.request("GET", "/version")

    async def apply(self, manifest: Manifest, *, manager: str = FIELD_MANAGER) -> Manifest:
        """Server-side apply, forcing: Slipway owns what it renders, and drift is taken back."""
        meta = manifest["metadata"]
        path = RESOURCES[manifest["kind"]].path(meta.get("namespace"), meta["name"])
        query = {"fieldManager": manager, "force": "true"}
        return await self.request("PATCH", path, query=query, body=manifest, content_type=APPLY)

    async def apply_all(self, manifests: list[Manifest]) -> list[Manifest]:
        """Each in order; a refusal names the object (never its content)."""
        applied = []
        for manifest in manifests:
            try:
                applied.append(await self.apply(manifest))
            except KubeError as error:
                meta = manifest["metadata"]
                what = f"{manifest['kind']} {meta.get('namespace', '')}/{meta['name']}".strip("/")
                message = f"the cluster refused {what}: {error.detail}"
                raise RuntimeFailure(error.reason, message) from None
        return applied

    async def patch(
        self, kind: str, namespace: str, name: str, body: Manifest, *, manager: str
    ) -> Manifest:
        """A JSON merge patch (an update by ``manager``, not an apply: it does not take
        ownership of what ``slipway`` applies away from it)."""
        path = RESOURCES[kind].path(namespace, name)
        query = {"fieldManager": manager}
        return await self.request("PATCH", path, query=query, body=body, content_type=MERGE)

    async def get(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        try:
            return await self.request("GET", RESOURCES[kind].path(namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
        metadata_only: bool = False,
    ) -> list[Manifest]:
        """The items (``namespace`` None: across every namespace); ``metadata_only``: their
        metadata alone (a Secret's values never leave the API server for a lookup)."""
        query = _selectors(labels, fields)
        accept = _METADATA_ONLY if metadata_only else "application/json"
        path = RESOURCES[kind].path(namespace)
        found = await self.request("GET", path, query=query, accept=accept)
        items: list[Manifest] = found.get("items") or []
        return items

    async def list_versioned(
        self, kind: str, namespace: str | None = None, *, labels: str | None = None
    ) -> tuple[builtins.list[Manifest], str]:
        """The items and the list's resourceVersion: where a watch of the same objects starts."""
        path, query = RESOURCES[kind].path(namespace), _selectors(labels, None)
        found = await self.request("GET", path, query=query)
        version = str((found.get("metadata") or {}).get("resourceVersion", ""))
        return found.get("items") or [], version

    async def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Deleted in the background (dependents too); False when it was not there."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            await self.request("DELETE", RESOURCES[kind].path(namespace, name), body=body)
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True

    # -- streams ---------------------------------------------------------------------------------

    async def watch(
        self,
        kind: str,
        namespace: str | None,
        *,
        labels: str | None = None,
        fields: str | None = None,
        timeout_s: float = 300.0,
        resource_version: str | None = None,
        bookmarks: bool = False,
        opened: Callable[[], None] | None = None,
    ) -> AsyncGenerator[tuple[str, Manifest], None]:
        """(type, object) events: without ``resource_version``, first an ADDED per existing
        object (the API server starts from its current state), else the changes after that
        version (410 Gone, a ``KubeError``, when it is too old); then changes, until
        ``timeout_s`` (the server ends the watch) or the caller stops iterating. ``bookmarks``:
        BOOKMARK events carry a newer version only. ``opened`` is called once the server has
        answered (the watch is live)."""
        query = {**_selectors(labels, fields), "watch": "true"}
        query["timeoutSeconds"] = str(max(1, int(timeout_s)))
        if resource_version:
            query["resourceVersion"] = resource_version
        if bookmarks:
            query["allowWatchBookmarks"] = "true"
        path = RESOURCES[kind].path(namespace)
        async for line in self.lines(path, query=query, opened=opened):
            event = json.loads(line)
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise KubeError(
                    int(status.get("code", 500)),
                    str(status.get("reason", "")),
                    str(status.get("message", "")),
                )
            yield str(event.get("type")), event.get("object") or {}

    async def watch_until(
        self,
        kind: str,
        namespace: str,
        name: str,
        done: Callable[[Manifest], bool],
        *,
        timeout_s: float,
        stuck: Callable[[Manifest], str | None] = lambda _: None,
    ) -> Manifest:
        """Watch one object until ``done(object)``; TimeoutError after ``timeout_s``, NOT_FOUND
        if it is deleted, TIMEOUT if ``stuck`` says why it will not get there."""
        async with asyncio.timeout(timeout_s):
            while True:  # a watch the server ends early is opened again (from the current state)
                async for kind_of_event, found in self.watch(
                    kind, namespace, fields=f"metadata.name={name}", timeout_s=timeout_s
                ):
                    if kind_of_event == "DELETED":
                        raise RuntimeFailure(FailureReason.NOT_FOUND, f"{kind} {name} was deleted")
                    if done(found):
                        return found
                    if why := stuck(found):
                        raise RuntimeFailure(FailureReason.TIMEOUT, f"{name}: {why}")

    async def pod_logs(
        self, namespace: str, pod: str, *, container: str, tail_lines: int
    ) -> AsyncIterator[LogLine]:
        """A pod's log, followed; a cluster that serves no logs (kwok) gives one line saying
        so, then the end."""
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        query = {
            "container": container,
            "follow": "true",
            "timestamps": "true",
            "tailLines": str(tail_lines),
        }
        try:
            async for line in self.lines(path, query=query):
                yield _log_line(line)
        except KubeError as error:
            text = f"the cluster does not serve this pod's logs ({error.status}: {error.detail})"
            yield LogLine("stderr", text, datetime.now(UTC))

    async def lines(
        self,
        path: str,
        *,
        query: Mapping[str, str],
        opened: Callable[[], None] | None = None,
    ) -> AsyncIterator[str]:
        """The lines of a streamed answer (a watch, a followed log), until it ends."""
        response = await self._send("GET", path, query=query, stream=True)
        if opened is not None:
            opened()
        try:
            while line := await response.content.readline():
                if text := line.decode(errors="replace").rstrip("\n"):
                    yield text
        except aiohttp.ClientError as error:
            raise unreachable(f"the API server's stream broke: {type(error).__name__}") from None
        finally:
            response.close()

    # -- plumbing --------------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        stream: bool = False,
    ) -> aiohttp.ClientResponse:
        # a stream has no total timeout (the server ends it), only one to connect
        timeout = (
            aiohttp.ClientTimeout(sock_connect=self._connect_timeout_s) if stream else self._timeout
        )
        headers = {"Accept": accept, "Content-Type": content_type}
        try:
            response: aiohttp.ClientResponse = await self._api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise unreachable(
                f"the API server could not be reached ({type(error).__name__})"
            ) from None
        if response.status >= 400:
            raise await _refusal(response)
        return response


async def _refusal(response: aiohttp.ClientResponse) -> Exception:
    try:
        status = json.loads(await response.read())
    except (ValueError, aiohttp.ClientError):
        status = {}
    finally:
        response.release()
    if response.status == 401:
        return unreachable("the API server refused the cluster's credentials (401)")
    message = str(status.get("message") or response.reason or "")
    return KubeError(response.status, str(status.get("reason") or response.reason), message)


def _log_line(line: str) -> LogLine:
    stamp, _, text = line.partition(" ")
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return LogLine("stdout", line, datetime.now(UTC))
    return LogLine("stdout", text, at)


def _selectors(labels: str | None, fields: str | None) -> dict[str, str]:
    query = {}
    if labels:
        query["labelSelector"] = labels
    if fields:
        query["fieldSelector"] = fields
    return query


@contextlib.contextmanager
def _ca_file(pem: str | None) -> Any:
    """The CA as a file for the SSL context to load (kubernetes-asyncio takes a path only)."""
    if pem is None:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="slipway-ca-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(pem)
        yield path
    finally:
        os.unlink(path)
