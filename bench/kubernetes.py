"""Kubernetes (issue 14): N environments of 3 container services each deployed at once on the
devstack's cluster, and the API server requests Slipway's account makes per deployed service,
against a naive apply-and-poll loop measured in the same run.

    flock /tmp/slipway-bench.lock .venv/bin/python bench/kubernetes.py [--envs 100] [--naive 30]

Needs the devstack's Kubernetes (``SLIPWAY_DEVSTACK_KUBERNETES=1 make infra-up``): a real
kube-apiserver whose pods kwok makes Ready without running them. Starts identity, catalog,
deployer and gateway as processes (fresh databases, their own topic prefix), signs a user up,
registers the devstack's cluster by Slipway's kubeconfig, creates N environments on it with 3
``container`` services each (busybox ``httpd``, one port) and waits until the deployer knows
every service. One environment is deployed first as a warm-up (not counted: the first
deployment reads the cluster's version and schemas); then the N ``POST
/environments/{id}/deploy`` go at once and each deployment is followed until its final event on
the deployer's topic, its timestamps read back with ``GET /deployments/{id}``:

- wall time: first deploy request sent → last final event received (every environment then
  checked ``DEPLOYED`` through ``GET /environments/{id}/status``);
- pickup = ``started_at`` - ``created_at``; total = ``finished_at`` - ``created_at``; runtime
  = the critical path of the runtime's applies (each stage's longest ``steps.deploy``: apply +
  rollout watched until ready); overhead = total - runtime. p50/p95 over the successes.

**API requests.** The API server's ``/metrics`` has no client label and the controllers and
kwok make most requests, so requests are counted in its audit log, which the devstack keeps for
Slipway's service account only (Metadata level, ``.devstack/logs/kube-apiserver-audit.log``;
one audit ID a request, a watch counted once when it starts). Only lines in the run's window
that name one of the run's namespaces (or are the namespace itself) count; the account's
requests naming no namespace in the window are shown apart (other engineers' tests may use the
same account). **Baseline, same run**: a naive client with the same account's token (httpx)
deploys the same objects (those Slipway applied, copied from one of its namespaces) for
``--naive`` services in namespaces of its own, all at once: per object GET then POST (absent) or
PUT (present), as a client-side apply does, then GET the Deployment every 250 ms until ready.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import ssl
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from deploy_overhead import (
    CONTAINER,
    Api,
    Outcomes,
    Stack,
    bounded,
    code_version,
    eventually,
    service_body,
)
from support import (
    Devstack,
    Latencies,
    bench_platform,
    load_devstack,
    machine_facts,
    machine_section,
    main_alone,
    other_work,
    postgres_version,
    verdict,
)

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import create_org, sign_up

SERVICES = ["identity", "catalog", "deployer", "gateway"]
REPO = Path(__file__).resolve().parents[1]
AUDIT_LOG = REPO / ".devstack" / "logs" / "kube-apiserver-audit.log"
MANAGED = "app.kubernetes.io/managed-by=slipway"
CLUSTER_DEPLOYMENTS = "/apis/apps/v1/deployments"
CLUSTER_WIDE = "deployments (every namespace)"
LABEL_SERVICE = "slipway.dev/service"
# the kinds Slipway applies for a container service, as (API path prefix, plural)
KINDS = {
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
}
TARGET_PER_OBJECT = 3.0  # "a few requests per object"
NOISY_SHARE = 0.10


@dataclass(frozen=True)
class Params:
    envs: int = 100
    services_per_env: int = 3
    naive_services: int = 30
    naive_poll_s: float = 0.25
    idle_s: float = 20.0  # after the batch: the requests of services that just run
    setup_concurrency: int = 8
    timeout_s: float = 900.0


# --- the cluster --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kube:
    """The devstack's API server as one account (a kubeconfig the devstack wrote)."""

    server: str
    ca_pem: str
    token: str
    text: str

    @classmethod
    def read(cls, path: str) -> Kube:
        text = Path(path).read_text()
        config = yaml.safe_load(text)
        cluster = config["clusters"][0]["cluster"]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        return cls(cluster["server"], ca, config["users"][0]["user"]["token"], text)

    def client(self) -> httpx.AsyncClient:
        ctx = ssl.create_default_context(cadata=self.ca_pem)
        return httpx.AsyncClient(
            base_url=self.server,
            verify=ctx,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
        )


def cluster_settings(env: dict[str, str]) -> tuple[Kube, Kube]:
    """(Slipway's account, the admin) from the devstack's env file."""
    missing = [
        k
        for k in ("SLIPWAY_KUBERNETES_KUBECONFIG", "SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG")
        if k not in env
    ]
    if missing or not AUDIT_LOG.exists():
        raise RuntimeError(
            "the devstack's Kubernetes (with its audit log) is not running: "
            "SLIPWAY_DEVSTACK_KUBERNETES=1 make infra-up"
        )
    return (
        Kube.read(env["SLIPWAY_KUBERNETES_KUBECONFIG"]),
        Kube.read(env["SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG"]),
    )


# --- the audit log --------------------------------------------------------------------------


@dataclass
class Requests:
    """Requests of Slipway's account in a window of the audit log, split by namespace."""

    by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)  # (verb, resource) -> n
    total: int = 0
    outside: Counter[str] = field(default_factory=Counter)  # no namespace of ours: URI -> n

    def count(self, verb: str, resource: str) -> int:
        return self.by_kind.get((verb, resource), 0)

    def purposes(self) -> dict[str, int]:
        """The deployer's requests by what they are for. A live-log follow lists the service's
        pods then opens one pod's log; a status check (the monitor, every ``monitor_s``) reads
        the Deployment then lists the pods: the pod lists are split accordingly."""
        apply = sum(n for (verb, _), n in self.by_kind.items() if verb in ("patch", "create"))
        state = self.count("list", CLUSTER_WIDE) + self.count("watch", CLUSTER_WIDE)
        watch = sum(n for (verb, _), n in self.by_kind.items() if verb == "watch") - self.count(
            "watch", CLUSTER_WIDE
        )
        logs = self.count("get", "pods/log")
        status = self.count("get", "deployments")
        lists = self.count("list", "pods")
        split = min(lists, logs + status)
        return {
            "apply (server-side apply: patch)": apply,
            "rollout (watches: its pods; its Deployment's own only without the cluster-wide one)": (
                watch
            ),
            "running services' state (one cluster-wide LIST + WATCH of Deployments)": state,
            "status checks (GET Deployment + LIST pods)": status + max(0, split - logs),
            "live logs (LIST pods + GET pods/log, followed)": logs + min(logs, split),
            "other": self.total - apply - watch - state - logs - status - split,
        }

    def table(self) -> list[str]:
        return [
            f"| {verb} | {resource} | {n:,} |" for (verb, resource), n in self.by_kind.most_common()
        ]


def audit_offset() -> int:
    return AUDIT_LOG.stat().st_size


def count_requests(start: int, ours: set[str]) -> Requests:
    """Requests (one audit ID each) logged since byte ``start`` that concern namespaces in
    ``ours``; the others apart. The log rotates at 100 MB: a window that saw it rotate is
    refused rather than miscounted."""
    if audit_offset() < start:
        raise RuntimeError(f"{AUDIT_LOG} was rotated during the run: requests not counted")
    with AUDIT_LOG.open("rb") as log:
        log.seek(start)
        lines = log.read().splitlines()
    seen: set[str] = set()
    found = Requests()
    for line in lines:
        entry: Any = None
        with contextlib.suppress(ValueError):  # a line cut short by a rotation
            entry = json.loads(line)
        if not isinstance(entry, dict) or entry.get("auditID") in seen:
            continue
        seen.add(entry["auditID"])
        ref = entry.get("objectRef") or {}
        resource = ref.get("resource", "") + (
            f"/{ref['subresource']}" if "subresource" in ref else ""
        )
        namespace = ref.get("namespace") or (ref.get("name") if resource == "namespaces" else None)
        if namespace in ours:
            found.by_kind[(entry["verb"], resource or entry["requestURI"])] += 1
            found.total += 1
        elif entry["requestURI"].split("?")[0] == CLUSTER_DEPLOYMENTS:
            # the deployer's one watch of every Deployment (running services' state): theirs
            # too, if another client of the account lists them cluster-wide in the window
            found.by_kind[(entry["verb"], CLUSTER_WIDE)] += 1
            found.total += 1
        else:
            found.outside[f"{entry['verb']} {entry['requestURI'].split('?')[0]}"] += 1
    return found


# --- Slipway: the platform, the environments, the deployments -------------------------------------


@dataclass
class Sample:
    env_id: str
    namespace: str
    request_id: str = ""
    sent: float = math.nan
    detail: dict[str, Any] = field(default_factory=dict)
    state: str = ""

    @property
    def status(self) -> str:
        return str(self.detail.get("status", "NOT_ANSWERED"))

    def at(self, key: str) -> float:
        value = self.detail.get(key)
        return datetime.fromisoformat(value).timestamp() if value else math.nan

    def runtime_s(self) -> float:
        """The runtime's critical path: each stage's longest apply (services of a stage run in
        parallel)."""
        stages = self.detail.get("stages", [])
        return sum(
            max((float(s["steps"].get("deploy", 0.0)) for s in st["services"]), default=0.0)
            for st in stages
        )

    def parts(self) -> dict[str, float]:
        created, started, finished = (
            self.at("created_at"),
            self.at("started_at"),
            self.at("finished_at"),
        )
        return {
            "pickup": started - created,
            "total": finished - created,
            "runtime": self.runtime_s(),
            "overhead": finished - created - self.runtime_s(),
        }


@dataclass
class SlipwayRun:
    samples: list[Sample]
    wall_s: float
    objects_per_service: float
    requests: Requests
    warmup: Requests
    idle: Requests
    idle_s: float
    errors: list[str]

    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status == "SUCCESS" and s.state == "DEPLOYED"]

    def stats(self, part: str) -> Latencies:
        values = [s.parts()[part] for s in self.ok()]
        return Latencies.of([v for v in values if not math.isnan(v)])


@dataclass
class NaiveRun:
    services: int
    objects: int
    wall_s: float
    requests: Requests
    polls: int
    errors: list[str]


@contextlib.asynccontextmanager
async def platform_on(devstack: Devstack, stack: Stack, kube: Kube) -> AsyncIterator[Platform]:
    allow = urlsplit(kube.server).netloc  # the API server is on loopback: allow-listed
    env = stack.platform_env() | {"SLIPWAY_EGRESS_ALLOW": allow}
    async with bench_platform(devstack, SERVICES, env) as platform:
        yield platform


async def tenant_on_cluster(api: Api, kube: Kube) -> tuple[str, str]:
    """A user, an organization with the devstack's cluster registered, a project: (project id,
    cluster id)."""
    owner = await sign_up(api.client, "Bench")
    api.auth = owner.auth
    org = await create_org(api.client, owner, "Bench")
    cluster = await api.call(
        "POST",
        f"/organizations/{org}/clusters",
        {"name": "devstack", "kubeconfig": kube.text},
        expect=201,
    )
    project = await api.call("POST", f"/organizations/{org}/projects", {"name": "Fleet"}, 201)
    return project["id"], cluster["id"]


async def create_environments(
    api: Api, stack: Stack, project: str, cluster: str, n: int, label: str, params: Params
) -> list[Sample]:
    async def one(index: int) -> Sample:
        created = await api.call(
            "POST",
            f"/projects/{project}/environments",
            {"name": f"{label}-{index}", "mode": "staging", "cluster_id": cluster},
            expect=201,
        )
        for k in range(params.services_per_env):
            body = service_body(CONTAINER, stack) | {"name": f"box-{k}"}
            await api.call("POST", f"/environments/{created['id']}/services", body, expect=201)
        return Sample(created["id"], f"slipway-{created['id']}")

    samples = await bounded(params.setup_concurrency, (one(i) for i in range(n)))

    async def known(sample: Sample) -> None:
        async def listed() -> bool:
            response = await api.client.get(
                f"/environments/{sample.env_id}/status", headers=api.auth
            )
            services = response.json().get("services", []) if response.status_code == 200 else []
            return len(services) == params.services_per_env

        await eventually(listed, within_s=120, what=f"environment {sample.env_id} in the deployer")

    await bounded(params.setup_concurrency, (known(s) for s in samples))
    return samples


async def deploy_all(
    api: Api, outcomes: Outcomes, samples: list[Sample], params: Params
) -> tuple[float, list[str]]:
    """Every deploy at once, each followed to its final event, then read back: (wall time from
    the first request to the last final event, errors)."""
    errors: list[str] = []

    async def one(sample: Sample) -> None:
        sample.sent = time.time()
        for _ in range(30):  # 503/504 from the gateway: sent again, as a client would
            response = await api.client.post(
                f"/environments/{sample.env_id}/deploy", headers=api.auth
            )
            if response.status_code not in (503, 504):
                break
            await asyncio.sleep(1.0)
        if response.status_code != 202:
            errors.append(f"deploy {sample.env_id}: {response.status_code} {response.text[:200]}")
            return
        sample.request_id = response.json()["request_id"]

    await asyncio.gather(*(one(s) for s in samples))
    asked = [s.request_id for s in samples if s.request_id]
    unfinished = await outcomes.wait(asked, params.timeout_s)
    errors += [f"deployment {i} did not finish within {params.timeout_s:g}s" for i in unfinished]
    seen = [outcomes.finals[i].seen for i in asked if i in outcomes.finals]
    wall_s = (max(seen) if seen else time.time()) - min(s.sent for s in samples)

    async def read(sample: Sample) -> None:
        if sample.request_id:
            sample.detail = await api.call("GET", f"/deployments/{sample.request_id}")
        sample.state = (await api.call("GET", f"/environments/{sample.env_id}/status"))["state"]

    await bounded(params.setup_concurrency, (read(s) for s in samples))
    errors += [
        f"{s.env_id}: {s.status} {s.detail.get('reason')}: {s.detail.get('message')} "
        f"(environment {s.state})"
        for s in samples
        if s.request_id and (s.status != "SUCCESS" or s.state != "DEPLOYED")
    ]
    return wall_s, errors


async def slipway_run(
    devstack: Devstack, stack: Stack, kube: Kube, admin: Kube, params: Params
) -> tuple[SlipwayRun, list[dict[str, Any]]]:
    """The deployments through the platform; and the objects of one deployed namespace."""
    async with platform_on(devstack, stack, kube) as platform:
        api = Api(platform.url("gateway"))
        outcomes = Outcomes(devstack.kafka, platform.prefix)
        samples: list[Sample] = []
        try:
            await outcomes.start()
            project, cluster = await tenant_on_cluster(api, kube)
            print("kubernetes: warm-up, one environment (not counted)...", flush=True)
            warm = await create_environments(api, stack, project, cluster, 1, "warm", params)
            samples += warm
            start = audit_offset()
            _, warm_errors = await deploy_all(api, outcomes, warm, params)
            warmup = count_requests(start, {warm[0].namespace})
            if warm_errors:
                raise RuntimeError(f"the warm-up deployment failed: {warm_errors}")
            print(f"kubernetes: creating {params.envs} environments...", flush=True)
            batch = await create_environments(
                api, stack, project, cluster, params.envs, "env", params
            )
            samples += batch
            await asyncio.sleep(2)  # the creations' events settle before the clock starts
            print(f"kubernetes: deploying {params.envs} environments at once...", flush=True)
            start = audit_offset()
            wall_s, errors = await deploy_all(api, outcomes, batch, params)
            await asyncio.sleep(1)  # the audit log's last lines (written after the answers)
            requests = count_requests(start, {s.namespace for s in batch})
            print(f"kubernetes: {params.idle_s:g} s with everything running...", flush=True)
            start, idle_began = audit_offset(), time.monotonic()
            await asyncio.sleep(params.idle_s)
            idle = count_requests(start, {s.namespace for s in batch})
            idle_s = time.monotonic() - idle_began
            template = await namespace_objects(admin, batch[0].namespace)
        finally:
            await outcomes.stop()
            await api.close()
            await delete_namespaces(admin, [s.namespace for s in samples])
    services = len(batch) * params.services_per_env
    per_service = len([o for o in template if o["metadata"].get("labels", {}).get(LABEL_SERVICE)])
    objects = (per_service / params.services_per_env) if template else math.nan
    result = SlipwayRun(batch, wall_s, objects, requests, warmup, idle, idle_s, errors)
    ok = result.ok()
    print(
        f"kubernetes: {len(ok)}/{params.envs} DEPLOYED in {wall_s:.1f} s; "
        f"{requests.total:,} API requests = {requests.total / services:.2f} per service",
        flush=True,
    )
    return result, template


async def namespace_objects(admin: Kube, namespace: str) -> list[dict[str, Any]]:
    """What Slipway applied in ``namespace``, as a client would send it again: the
    namespace's own objects (a pull secret, say) first, then each service's."""
    found: list[dict[str, Any]] = []
    async with admin.client() as client:
        for kind, (prefix, plural) in KINDS.items():
            response = await client.get(
                f"{prefix}/namespaces/{namespace}/{plural}", params={"labelSelector": MANAGED}
            )
            response.raise_for_status()
            for item in response.json()["items"]:
                meta = item["metadata"]
                clean = {k: meta[k] for k in ("name", "labels", "annotations") if k in meta}
                api_version = "v1" if prefix == "/api/v1" else prefix.removeprefix("/apis/")
                obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": clean}
                obj |= {k: v for k, v in item.items() if k not in ("metadata", "status")}
                obj["apiVersion"], obj["kind"] = api_version, kind
                if kind == "Service":  # allocated by the cluster: a new object gets its own
                    for key in ("clusterIP", "clusterIPs"):
                        obj["spec"].pop(key, None)
                found.append(obj)
    return sorted(found, key=lambda o: bool(o["metadata"].get("labels", {}).get(LABEL_SERVICE)))


async def delete_namespaces(admin: Kube, namespaces: list[str]) -> None:
    """Not waited for: the namespace controller removes the rest in its own time."""
    async with admin.client() as client:

        async def one(name: str) -> None:
            with contextlib.suppress(httpx.HTTPError):
                await client.delete(f"/api/v1/namespaces/{name}")

        await bounded(8, (one(n) for n in namespaces))


# --- the naive baseline -------------------------------------------------------------------------


def _path(obj: dict[str, Any], namespace: str) -> str:
    prefix, plural = KINDS[obj["kind"]]
    return f"{prefix}/namespaces/{namespace}/{plural}"


async def naive_apply(client: httpx.AsyncClient, obj: dict[str, Any], namespace: str) -> None:
    """A client-side apply: GET, then POST when absent or PUT (with its resourceVersion)."""
    body = json.loads(json.dumps(obj))
    body["metadata"]["namespace"] = namespace
    url = f"{_path(obj, namespace)}/{obj['metadata']['name']}"
    current = await client.get(url)
    if current.status_code == 404:
        created = await client.post(_path(obj, namespace), json=body)
        created.raise_for_status()
        return
    current.raise_for_status()
    body["metadata"]["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
    (await client.put(url, json=body)).raise_for_status()


def _ready(deployment: dict[str, Any]) -> bool:
    status, spec = deployment.get("status", {}), deployment["spec"]
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("readyReplicas", 0) >= spec.get("replicas", 1)
        and status.get("updatedReplicas", 0) >= spec.get("replicas", 1)
    )


async def naive_run(
    kube: Kube, admin: Kube, template: list[dict[str, Any]], params: Params
) -> NaiveRun:
    """``params.naive_services`` services (the template's, namespace by namespace), deployed at
    once by apply-and-poll with Slipway's token."""
    shared = [o for o in template if not o["metadata"].get("labels", {}).get(LABEL_SERVICE)]
    by_service: dict[str, list[dict[str, Any]]] = {}
    for obj in template:
        if sid := obj["metadata"].get("labels", {}).get(LABEL_SERVICE):
            by_service.setdefault(sid, []).append(obj)
    if not by_service:
        raise RuntimeError("no service objects to copy from Slipway's namespace")
    groups = list(by_service.values())
    run = uuid.uuid4().hex[:6]
    count = math.ceil(params.naive_services / len(groups))
    namespaces = [f"bench-naive-{run}-{i}" for i in range(count)]
    polls, errors = 0, list[str]()
    start = audit_offset()
    began = time.monotonic()
    async with kube.client() as client:

        async def deploy(namespace: str, objects: list[dict[str, Any]]) -> None:
            nonlocal polls
            for obj in objects:
                await naive_apply(client, obj, namespace)
            [deployment] = [o for o in objects if o["kind"] == "Deployment"]
            url = f"{_path(deployment, namespace)}/{deployment['metadata']['name']}"
            deadline = time.monotonic() + params.timeout_s
            while True:
                polls += 1
                response = await client.get(url)
                response.raise_for_status()
                if _ready(response.json()):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{namespace}/{deployment['metadata']['name']} not ready")
                await asyncio.sleep(params.naive_poll_s)

        async def one_namespace(index: int, namespace: str) -> None:
            created = await client.post(
                "/api/v1/namespaces", json={"metadata": {"name": namespace}}
            )
            created.raise_for_status()
            for obj in shared:
                await naive_apply(client, obj, namespace)
            first = index * len(groups)
            mine = groups[: max(0, min(len(groups), params.naive_services - first))]
            results = await asyncio.gather(
                *(deploy(namespace, objects) for objects in mine), return_exceptions=True
            )
            errors.extend(f"{namespace}: {r!r}" for r in results if isinstance(r, BaseException))

        try:
            await asyncio.gather(*(one_namespace(i, ns) for i, ns in enumerate(namespaces)))
            wall_s = time.monotonic() - began
            await asyncio.sleep(1)
            requests = count_requests(start, set(namespaces))
        finally:
            await delete_namespaces(admin, namespaces)
    objects = (
        sum(len(g) for g in groups) / len(groups) * params.naive_services + len(shared) * count
    )
    print(
        f"kubernetes: naive apply-and-poll, {params.naive_services} services in {wall_s:.1f} s: "
        f"{requests.total:,} requests = {requests.total / params.naive_services:.2f} per service",
        flush=True,
    )
    return NaiveRun(params.naive_services, round(objects), wall_s, requests, polls, errors)


# --- the run and its report ---------------------------------------------------------------------


async def run(devstack: Devstack | None = None, params: Params | None = None) -> str:
    devstack = devstack or load_devstack()
    params = params or Params()
    stack = Stack.of(devstack)
    kube, admin = cluster_settings(stack.env)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    code = await code_version()
    async with other_work(devstack) as other:
        slipway, template = await slipway_run(devstack, stack, kube, admin, params)
        naive = await naive_run(kube, admin, template, params)
    facts = machine_facts(devstack, await postgres_version(devstack))
    async with admin.client() as client:
        version = (await client.get("/version")).json().get("gitVersion", "?")
    facts["Kubernetes"] = (
        f"kube-apiserver {version} + controller manager + scheduler, kwok fake node (devstack)"
    )
    facts["Code"] = code
    facts["Other work during the run"] = (
        f"{other.share:.0%} of all cores ({other.cpu_s:.0f} CPU-s in {other.wall_s:.0f} s) used "
        "by processes other than the benchmark's and the devstack's"
    )
    facts["Load average (1, 5, 15 min)"] = (
        f"{' '.join(f'{x:.2f}' for x in load_before)} before the run, "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at its end"
    )
    return render(params, started, slipway, naive, facts, other.share)


def _rollout_watches(requests: Requests) -> str:
    pods, own = requests.count("watch", "pods"), requests.count("watch", "deployments")
    polls = requests.count("get", "deployments")
    return (
        f"{pods:,} pod watches, {own:,} Deployment watches of their own (the cluster-wide one "
        f"followed the others), {polls:,} Deployment GETs"
    )


def _s(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _pair(stats: Latencies) -> str:
    return f"{_s(stats.p50)} / {_s(stats.p95)} / {_s(stats.max)}"


def _top(requests: Requests) -> str:
    return ", ".join(f"{v} {r} x{n:,}" for (v, r), n in requests.by_kind.most_common(4)) or "-"


def _listed(title: str, items: list[str], most: int) -> list[str]:
    return [title, "", *(f"- {e}" for e in items[:most]), ""] if items else []


def render(
    params: Params,
    started: datetime,
    slipway: SlipwayRun,
    naive: NaiveRun,
    facts: dict[str, str],
    other_share: float,
) -> str:
    services = params.envs * params.services_per_env
    ours = slipway.requests.total / services
    theirs = naive.requests.total / naive.services if naive.services else math.nan
    per_object = ours / slipway.objects_per_service if slipway.objects_per_service else math.nan
    naive_polls = naive.requests.by_kind.get(("get", "deployments"), 0)
    purposes = slipway.requests.purposes()
    deploy_path = sum(n for p, n in purposes.items() if p.startswith(("apply", "rollout")))
    path_per_object = deploy_path / services / slipway.objects_per_service
    idle_rate = slipway.idle.total / slipway.idle_s if slipway.idle_s else math.nan
    ok = slipway.ok()
    outside = slipway.requests.outside
    noisy = other_share > NOISY_SHARE
    return "\n".join(
        [
            f"# Kubernetes runtime: {params.envs} environments deployed at once, and its API "
            "requests",
            "",
            f"Run {started:%Y-%m-%d %H:%M} UTC by `bench/kubernetes.py` (`bench/run.py --only "
            f"kubernetes`): {params.envs} environments of {params.services_per_env} container "
            "services each (busybox `httpd`, one port) on the devstack's Kubernetes (a real "
            "kube-apiserver, kwok's fake node: pods become Ready without running), deployed at "
            "once through the gateway; identity, catalog, deployer and gateway as processes. "
            "Seconds; percentiles nearest-rank over the deployments that succeeded.",
            "",
            *(
                [
                    f"**Noisy run**: other processes used {other_share:.0%} of the cores "
                    "during it; the times are inflated by that much CPU taken away (the request "
                    "counts are not).",
                    "",
                ]
                if noisy
                else []
            ),
            "## Deployments",
            "",
            "| | |",
            "|---|---:|",
            f"| Environments `DEPLOYED` (deployment SUCCESS and status DEPLOYED) | "
            f"{len(ok)}/{params.envs} |",
            f"| Failures | {params.envs - len(ok)} |",
            f"| Wall time: first deploy request → last deployment's final event | "
            f"{slipway.wall_s:.1f} s |",
            f"| Pickup (`started_at` - `created_at`) p50 / p95 / max | "
            f"{_pair(slipway.stats('pickup'))} |",
            f"| Duration (`finished_at` - `created_at`) p50 / p95 / max | "
            f"{_pair(slipway.stats('total'))} |",
            f"| Runtime (apply + rollout watched to ready, critical path) p50 / p95 / max | "
            f"{_pair(slipway.stats('runtime'))} |",
            f"| Overhead (duration - runtime) p50 / p95 / max | "
            f"{_pair(slipway.stats('overhead'))} |",
            "",
            *(
                ["Failures:", "", *(f"- {e}" for e in slipway.errors[:20]), ""]
                if slipway.errors
                else []
            ),
            "## API-server requests (audit log of Slipway's account)",
            "",
            "| | Slipway (deployer, watches) | Naive apply-and-poll (same objects) |",
            "|---|---:|---:|",
            f"| Services deployed | {services:,} | {naive.services:,} |",
            f"| Requests | {slipway.requests.total:,} | {naive.requests.total:,} |",
            f"| **Requests per deployed service** | **{_s(ours)}** | **{_s(theirs)}** |",
            f"| Requests per environment (deployment) | "
            f"{_s(slipway.requests.total / params.envs)} | n/a |",
            f"| Objects per service (Deployment, Service, Secret…) | "
            f"{_s(slipway.objects_per_service)} | {_s(slipway.objects_per_service)} |",
            f"| Requests per object | {_s(per_object)} | "
            f"{_s(theirs / slipway.objects_per_service)} |",
            f"| Wall time | {slipway.wall_s:.1f} s | {naive.wall_s:.1f} s |",
            "",
            f"**Naive / Slipway, requests per deployed service: {_s(theirs / ours)}x in all, "
            f"{_s(theirs / (deploy_path / services))}x against Slipway's deploy path alone** "
            f"(apply + rollout; of the naive client's requests, {naive_polls:,} are Deployment "
            f"polls every {params.naive_poll_s * 1000:.0f} ms: kwok makes pods Ready in about a "
            "second, so a naive poll loop is at its cheapest here; a real app's start of tens of "
            "seconds costs it 4 GETs a second per service, Slipway's watches none).",
            "",
            "| Target | Figure | Verdict |",
            "|---|---:|---|",
            f"| A few requests per object (≤ {TARGET_PER_OBJECT:g}), the deploy path | "
            f"{_s(path_per_object)} | {verdict(path_per_object <= TARGET_PER_OBJECT)} |",
            f"| The same, everything in the batch's window (status checks and logs included) | "
            f"{_s(per_object)} | {verdict(per_object <= TARGET_PER_OBJECT)} |",
            f"| Watches, not polls: rollouts | {_rollout_watches(slipway.requests)} for "
            f"{services:,} services | "
            f"{verdict(slipway.requests.count('get', 'deployments') == 0)} |",
            f"| Watches, not polls: running services (status) | {_s(idle_rate / services * 60)} "
            f"requests per service per minute at rest | {verdict(idle_rate == 0)} |",
            "",
            "Slipway's requests of the batch by purpose (per deployed service):",
            "",
            "| Purpose | Requests | Per service |",
            "|---|---:|---:|",
            *(
                f"| {purpose} | {n:,} | {_s(n / services)} |"
                for purpose, n in slipway.requests.purposes().items()
            ),
            "",
            f"The deploy path alone (apply + rollout): **{_s(deploy_path / services)} per "
            f"service, {_s(deploy_path / services / slipway.objects_per_service)} per object**. "
            "The deployer's monitor reads every running service's state every `monitor_s` (2 s): "
            "from its one watch of the cluster's Deployments (opened once, at the warm-up), a "
            "pod LIST only while a service is not ready. With the "
            f"{services:,} services deployed and nothing else happening, for "
            f"{slipway.idle_s:.0f} s: "
            f"**{slipway.idle.total:,} requests = {_s(idle_rate)}/s, "
            f"{_s(idle_rate / services * 60)} per service per minute** "
            f"({_top(slipway.idle)}).",
            "",
            "Slipway's requests by verb and resource (the environments' namespaces):",
            "",
            "| Verb | Resource | Requests |",
            "|---|---|---:|",
            *slipway.requests.table(),
            "",
            "The naive client's:",
            "",
            "| Verb | Resource | Requests |",
            "|---|---|---:|",
            *naive.requests.table(),
            "",
            f"Warm-up deployment (1 environment, not counted above): "
            f"{slipway.warmup.total} requests in its namespace, "
            f"{sum(slipway.warmup.outside.values())} naming no namespace of the run "
            f"({', '.join(f'{k} x{v}' for k, v in slipway.warmup.outside.most_common(6)) or '-'}).",
            f"Requests of the account in the batch's window naming no namespace of the run "
            f"(not counted; other engineers' tests use the same account): "
            f"{sum(outside.values())} "
            f"({', '.join(f'{k} x{v}' for k, v in outside.most_common(6)) or '-'}).",
            *(
                ["", "Naive client errors:", *(f"- {e}" for e in naive.errors[:10])]
                if naive.errors
                else []
            ),
            "",
            "## How it is measured",
            "",
            "Requests are counted in the kube-apiserver's audit log, which the devstack writes for "
            "Slipway's service account only (Metadata level, `RequestReceived` omitted; one "
            "audit ID per request, a watch once when it starts), between the first deploy "
            "request and 1 s after the last deployment ended, keeping the lines whose object "
            "is in (or is) one of the run's namespaces. The naive baseline uses the same "
            "account's token with httpx, the objects Slipway applied in one of its namespaces "
            "(cluster-allocated fields dropped), in namespaces of its own "
            f"({params.naive_services} services, all at once): create the namespace, per object "
            "GET then POST or PUT, then GET the Deployment every "
            f"{params.naive_poll_s * 1000:.0f} ms until ready (observed generation, ready and "
            "updated replicas). `steps.deploy` is the deployer's own timing of the runtime's "
            "apply (server-side apply of the objects, then the Deployment followed until rolled "
            "out through the deployer's one cluster-wide watch of Deployments, its pods watched "
            "for the reason of a failure). Pods never run: kwok marks them Ready about a second "
            "after scheduling, so the runtime time is the cluster's control loop, not an app's "
            "start.",
            "",
            *machine_section(facts),
        ]
    )


def parse_args() -> Params:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Params()
    parser.add_argument("--envs", type=int, default=defaults.envs)
    parser.add_argument("--naive", type=int, default=defaults.naive_services)
    args = parser.parse_args()
    return Params(envs=args.envs, naive_services=args.naive)


if __name__ == "__main__":
    params = parse_args()
    main_alone("kubernetes", lambda: run(params=params))
    sys.exit(0)
