"""The public API, as the CLI uses it: the gateway URL, the saved session, errors as messages."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict, cast

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


def config_dir() -> Path:
    base = os.environ.get("SLIPWAY_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "slipway"
    )
    return Path(base)


def api_url() -> str:
    return os.environ.get("SLIPWAY_API_URL", DEFAULT_URL).rstrip("/")


def save_session(tokens: dict[str, Any]) -> Path:
    """The session tokens, readable by this user only."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "session.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": api_url(), **tokens}, handle)
    return path


def _authorization() -> dict[str, str]:
    token = os.environ.get("SLIPWAY_TOKEN")  # an API token, for CI
    if token:
        return {"authorization": f"Token {token}"}
    path = config_dir() / "session.json"
    if path.exists():
        session = json.loads(path.read_text())
        return {"authorization": f"Bearer {session['access_token']}"}
    return {}


def auth_headers() -> dict[str, str]:
    """The credentials (and origin) every request of the CLI carries."""
    return {"x-slipway-origin": "cli", **_authorization()}


# read-your-writes: the catalog answers each write with its project's revision; handed back
# with the next requests, it makes the deployer serve them from a copy of the catalog that has
# the write (one CLI command after another may reach different gateways)
REVISION_HEADER = "x-slipway-catalog-revision"
_REVISIONS_KEPT = 16  # projects, the most recently written


def _revisions_path() -> Path:
    return config_dir() / "catalog-revisions.json"


def _load_revisions() -> dict[str, int]:
    try:
        saved = json.loads(_revisions_path().read_text())
    except (OSError, ValueError):
        return {}
    return (
        {str(k): v for k, v in saved.items() if isinstance(v, int)}
        if isinstance(saved, dict)
        else {}
    )


def _remember_revisions(header: str) -> None:
    revisions = _load_revisions()
    for item in header.split(","):
        project, _, number = item.strip().partition(":")
        if project and number.isdigit():
            revisions[project] = max(int(number), revisions.pop(project, 0))  # now the newest
    kept = dict(list(revisions.items())[-_REVISIONS_KEPT:])
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(_revisions_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(kept, handle)


def _revision_headers() -> dict[str, str]:
    revisions = _load_revisions()
    if not revisions:
        return {}
    return {REVISION_HEADER: ",".join(f"{p}:{n}" for p, n in revisions.items())}


# Safe retries: a POST that creates or triggers carries an Idempotency-Key, the same on every
# attempt, so a retry after a timeout or a gateway 502/503/504 answers the first attempt's result
# and never queues a second deployment. A GET is retried as it is. The /auth routes (signup,
# login) are not retried: they are the user's to try again.
_ATTEMPTS = 4
_RETRIED_STATUSES = frozenset({502, 503, 504})
# asked to come back: the key's first request still runs, the deployer's copy of the catalog is
# a moment behind a write (both answer Retry-After)
_RETRIED_CODES = frozenset({"IDEMPOTENCY_KEY_IN_USE", "CATALOG_NOT_CAUGHT_UP"})
_MAX_PAUSE_S = 5.0


def _retried(method: str, path: str) -> bool:
    return method in ("GET", "POST") and not path.startswith("/auth/")


def call(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    *,
    auth: bool = True,
) -> Any:
    headers = {
        "x-slipway-origin": "cli",
        **(_authorization() if auth else {}),
        **_revision_headers(),
    }
    if method == "POST" and _retried(method, path):
        headers["idempotency-key"] = str(uuid.uuid4())
    attempts = _ATTEMPTS if _retried(method, path) else 1
    for attempt in range(1, attempts + 1):
        try:
            return _attempt(method, path, body, params, headers)
        except ApiError as exc:
            if attempt == attempts or not _again(exc):
                raise
            time.sleep(min(_MAX_PAUSE_S, exc.retry_after or 0.25 * 2**attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _again(exc: ApiError) -> bool:
    return exc.status == 0 or exc.status in _RETRIED_STATUSES or exc.code in _RETRIED_CODES


def _attempt(
    method: str,
    path: str,
    body: dict[str, Any] | None,
    params: dict[str, str] | None,
    headers: dict[str, str],
) -> Any:
    try:
        response = httpx.request(
            method,
            f"{api_url()}/api/v1{path}",
            json=body,
            params=params,
            headers=headers,
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise ApiError(0, "UNREACHABLE", f"cannot reach {api_url()}: {exc}") from None
    if response.headers.get(REVISION_HEADER):
        _remember_revisions(response.headers[REVISION_HEADER])
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "HTTP_ERROR", response.text[:200]
        raise ApiError(response.status_code, code, message, _seconds(response))
    return response.json() if response.content else None


def _seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


# --- the typed client: one method per public route the CLI uses ---------------------------------
# Results are the API's JSON objects, typed as TypedDicts (``total=False``: the API may add
# fields; the CLI reads only the ones named here).


class Accepted(TypedDict, total=False):
    """``202`` of a deploy/redeploy/stop/restart/cancel/rollback request."""

    request_id: str
    deployment_id: str
    environment_id: str
    action: str
    status: str
    merged: bool


class Service(TypedDict, total=False):
    id: str
    name: str
    kind: str
    environment_id: str
    project_id: str
    stage_id: str | None


class Variable(TypedDict, total=False):
    id: str
    key: str
    scope: str
    parent_id: str
    kind: str
    is_secret: bool
    value: str  # absent for a secret
    mount_path: str | None


class ResolvedVariable(TypedDict, total=False):
    key: str
    value: str | None  # None for a secret
    is_secret: bool
    source_scope: str
    source_id: str
    kind: str
    via: list[str]


class StageRun(TypedDict, total=False):
    name: str
    status: str
    duration_s: float | None
    services: list[dict[str, Any]]


class Deployment(TypedDict, total=False):
    id: str
    environment_id: str
    action: str
    status: str
    trigger: str
    rollback_of: str | None
    reason: str | None
    message: str | None
    created_at: str
    duration_s: float | None
    stages: list[StageRun]


class ServiceStatus(TypedDict, total=False):
    id: str
    name: str
    kind: str
    state: str
    status: str
    running_status: str | None
    urls: list[str]
    freshness: str
    message: str | None


class EnvironmentStatus(TypedDict, total=False):
    environment_id: str
    state: str
    action: str | None
    status: str
    freshness: str
    deployment_id: str | None
    queued: list[str]
    stages: list[StageRun]
    services: list[ServiceStatus]


class Webhook(TypedDict, total=False):
    id: str
    url: str
    events: list[str]
    format: str
    secret: str  # only in the answer to its creation


class JobRun(TypedDict, total=False):
    run_id: str
    service_id: str
    trigger: str
    status: str
    exit_code: int | None
    message: str | None
    created_at: str


class GitWebhook(TypedDict, total=False):
    id: str
    description: str
    path: str  # the public route a git provider delivers to
    secret: str  # only in the answer to its creation


Items = list[dict[str, Any]]
ENV_ACTIONS = ("deploy", "redeploy", "stop", "restart", "cancel", "delete")
SERVICE_ACTIONS = ("deploy", "stop", "restart")


class Slipway:
    """The public API's routes the CLI uses; errors raise ``ApiError`` (code and message)."""

    # -- account
    def signup(self, email: str, name: str, password: str) -> dict[str, Any]:
        body = {"email": email, "name": name, "password": password}
        return cast(dict[str, Any], call("POST", "/auth/signup", body, auth=False))

    def login(self, email: str, password: str) -> dict[str, Any]:
        body = {"email": email, "password": password}
        return cast(dict[str, Any], call("POST", "/auth/login", body, auth=False))

    # -- organizations, members, API tokens, clusters
    def organizations(self) -> Items:
        return cast(Items, call("GET", "/organizations")["items"])

    def create_organization(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], call("POST", "/organizations", {"name": name}))

    def members(self, org: str) -> Items:
        return cast(Items, call("GET", f"/organizations/{org}/members")["items"])

    def invite(self, org: str, email: str, role: str) -> dict[str, Any]:
        body = {"email": email, "role": role}
        return cast(dict[str, Any], call("POST", f"/organizations/{org}/members", body))

    def remove_member(self, org: str, user: str) -> None:
        call("DELETE", f"/organizations/{org}/members/{user}")

    def api_tokens(self, org: str) -> Items:
        return cast(Items, call("GET", f"/organizations/{org}/api-tokens")["items"])

    def create_api_token(self, org: str, name: str, role: str) -> dict[str, Any]:
        body = {"name": name, "role": role}
        return cast(dict[str, Any], call("POST", f"/organizations/{org}/api-tokens", body))

    def delete_api_token(self, org: str, token: str) -> None:
        call("DELETE", f"/organizations/{org}/api-tokens/{token}")

    def clusters(self, org: str) -> Items:
        return cast(Items, call("GET", f"/organizations/{org}/clusters")["items"])

    # -- projects
    def projects(self, org: str) -> Items:
        return cast(Items, call("GET", f"/organizations/{org}/projects")["items"])

    def create_project(self, org: str, name: str) -> dict[str, Any]:
        body = {"name": name}
        return cast(dict[str, Any], call("POST", f"/organizations/{org}/projects", body))

    # -- environments
    def environments(self, project: str) -> Items:
        return cast(Items, call("GET", f"/projects/{project}/environments")["items"])

    def create_environment(
        self, project: str, name: str, mode: str, cluster: str
    ) -> dict[str, Any]:
        body = {"name": name, "mode": mode, "cluster_id": cluster}
        return cast(dict[str, Any], call("POST", f"/projects/{project}/environments", body))

    def environment(self, env: str) -> dict[str, Any]:
        return cast(dict[str, Any], call("GET", f"/environments/{env}"))

    def delete_environment(self, env: str) -> None:
        call("DELETE", f"/environments/{env}")

    def clone_environment(
        self, env: str, name: str, mode: str | None, cluster: str | None
    ) -> dict[str, Any]:
        body = {"name": name, "mode": mode, "cluster_id": cluster}
        return cast(
            dict[str, Any],
            call(
                "POST",
                f"/environments/{env}/clone",
                {k: v for k, v in body.items() if v is not None},
            ),
        )

    def act(self, env: str, action: str) -> Accepted:
        if action not in ENV_ACTIONS:
            raise ValueError(action)
        return cast(Accepted, call("POST", f"/environments/{env}/{action}"))

    def status(self, env: str) -> EnvironmentStatus:
        return cast(EnvironmentStatus, call("GET", f"/environments/{env}/status"))

    def schedule(self, env: str) -> dict[str, Any]:
        return cast(dict[str, Any], call("GET", f"/environments/{env}/schedule"))

    # -- services
    def services(self, env: str) -> list[Service]:
        return cast(list[Service], call("GET", f"/environments/{env}/services")["items"])

    def service(self, service: str) -> Service:
        return cast(Service, call("GET", f"/services/{service}"))

    def create_service(self, env: str, body: dict[str, Any]) -> Service:
        return cast(Service, call("POST", f"/environments/{env}/services", body))

    def delete_service(self, service: str) -> None:
        call("DELETE", f"/services/{service}")

    def act_on_service(
        self, service: str, action: str, version: dict[str, str] | None = None
    ) -> Accepted:
        if action not in SERVICE_ACTIONS:
            raise ValueError(action)
        return cast(Accepted, call("POST", f"/services/{service}/{action}", version or None))

    def service_status(self, service: str) -> ServiceStatus:
        return cast(ServiceStatus, call("GET", f"/services/{service}/status"))

    def run_job(self, service: str) -> JobRun:
        return cast(JobRun, call("POST", f"/services/{service}/run"))

    def job_runs(self, service: str, limit: int = 20) -> list[JobRun]:
        page = call("GET", f"/services/{service}/runs", params={"limit": str(limit)})
        return cast(list[JobRun], page["items"])

    # -- variables
    def variables(self, scope: str, parent: str) -> list[Variable]:
        page = call("GET", "/variables", params={"scope": scope, "parent_id": parent})
        return cast(list[Variable], page["items"])

    def resolved(self, service: str) -> list[ResolvedVariable]:
        page = call("GET", f"/services/{service}/variables/resolved")
        return cast(list[ResolvedVariable], page["items"])

    def create_variable(self, body: dict[str, Any]) -> Variable:
        return cast(Variable, call("POST", "/variables", body))

    def update_variable(self, variable: str, value: str) -> Variable:
        return cast(Variable, call("PATCH", f"/variables/{variable}", {"value": value}))

    def delete_variable(self, variable: str) -> None:
        call("DELETE", f"/variables/{variable}")

    # -- deployments
    def deployments(self, env: str, limit: int = 20) -> list[Deployment]:
        page = call("GET", f"/environments/{env}/deployments", params={"limit": str(limit)})
        return cast(list[Deployment], page["items"])

    def deployment(self, deployment: str) -> Deployment:
        return cast(Deployment, call("GET", f"/deployments/{deployment}"))

    def rollback(self, deployment: str) -> Accepted:
        return cast(Accepted, call("POST", f"/deployments/{deployment}/rollback"))

    # -- outgoing webhooks (organization level)
    def webhooks(self, org: str) -> list[Webhook]:
        return cast(list[Webhook], call("GET", f"/organizations/{org}/webhooks")["items"])

    def webhook(self, org: str, webhook: str) -> Webhook:
        return cast(Webhook, call("GET", f"/organizations/{org}/webhooks/{webhook}"))

    def create_webhook(self, org: str, body: dict[str, Any]) -> Webhook:
        return cast(Webhook, call("POST", f"/organizations/{org}/webhooks", body))

    def delete_webhook(self, org: str, webhook: str) -> None:
        call("DELETE", f"/organizations/{org}/webhooks/{webhook}")

    def deliveries(self, org: str, webhook: str) -> Items:
        page = call("GET", f"/organizations/{org}/webhooks/{webhook}/deliveries")
        return cast(Items, page["items"])

    def redeliver(self, org: str, webhook: str, delivery: str) -> dict[str, Any]:
        path = f"/organizations/{org}/webhooks/{webhook}/deliveries/{delivery}/redeliver"
        return cast(dict[str, Any], call("POST", path) or {})

    # -- git webhook endpoints (organization level)
    def git_webhooks(self, org: str) -> list[GitWebhook]:
        return cast(list[GitWebhook], call("GET", f"/organizations/{org}/git-webhooks")["items"])

    def git_webhook(self, org: str, hook: str) -> GitWebhook:
        return cast(GitWebhook, call("GET", f"/organizations/{org}/git-webhooks/{hook}"))

    def create_git_webhook(self, org: str, description: str) -> GitWebhook:
        body = {"description": description}
        return cast(GitWebhook, call("POST", f"/organizations/{org}/git-webhooks", body))

    def delete_git_webhook(self, org: str, hook: str) -> None:
        call("DELETE", f"/organizations/{org}/git-webhooks/{hook}")

    def git_deliveries(self, org: str, hook: str) -> Items:
        page = call("GET", f"/organizations/{org}/git-webhooks/{hook}/deliveries")
        return cast(Items, page["items"])
