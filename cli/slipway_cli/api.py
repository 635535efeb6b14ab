"""The typed client of the public API: one method per route the CLI uses.

Results are the API's JSON objects typed as TypedDicts (``total=False``: the API may add fields;
the CLI reads only the ones named here). Errors raise ``client.ApiError`` with the API's stable
code; the transport (credentials, read-your-writes revisions, safe retries) is ``client.call``.
The end-to-end tests may drive the platform with it too.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, cast

from slipway_cli.client import call


class Accepted(TypedDict, total=False):
    """``202`` of a deploy/redeploy/stop/restart/cancel/rollback request."""

    request_id: str
    deployment_id: str
    environment_id: str
    action: str
    status: str
    merged: bool


class Service(TypedDict, total=False):
    """What every service answers (``ServiceOut`` of the document); ``kind`` says which of the
    ``*Service`` below it is, with its kind's fields (the catalog's spec of that kind)."""

    id: str
    name: str
    kind: str
    description: str
    environment_id: str
    project_id: str
    stage_id: str | None
    created_at: str | None
    updated_at: str | None
    resource_version: int


class GitSource(TypedDict, total=False):
    url: str
    branch: str
    commit: str | None
    root_path: str
    dockerfile_path: str
    build_args: dict[str, str]


class ImageSource(TypedDict, total=False):
    registry: str
    name: str
    tag: str


class Port(TypedDict, total=False):
    port: int
    protocol: Literal["http", "grpc", "tcp"]
    public: bool
    name: str | None
    default: bool


class Probe(TypedDict, total=False):
    type: Literal["http", "tcp", "exec"]
    path: str | None
    port: int | None
    command: list[str] | None
    initial_delay_s: int
    period_s: int
    timeout_s: int
    failure_threshold: int
    success_threshold: int


class Healthchecks(TypedDict, total=False):
    liveness: Probe | None
    readiness: Probe | None


class _Resources(Service, total=False):
    cpu_millicores: int
    memory_mib: int


class _Runtime(_Resources, total=False):
    ports: list[Port]
    healthchecks: Healthchecks
    min_instances: int
    max_instances: int
    command: list[str] | None
    args: list[str] | None


class ApplicationService(_Runtime, total=False):
    git: GitSource
    auto_deploy: bool
    path_filters: list[str]


class ContainerService(_Runtime, total=False):
    image: ImageSource
    auto_deploy: bool


class DatabaseService(_Resources, total=False):
    engine: Literal["postgresql", "mysql", "mongodb", "redis"]
    version: str
    storage_gib: int
    public: bool
    mode: Literal["container"]


class _Job(_Resources, total=False):
    image: ImageSource | None
    git: GitSource | None
    command: list[str] | None
    max_duration_s: int


class CronJobService(_Job, total=False):
    schedule: str
    timezone: str
    concurrency_policy: Literal["allow", "forbid", "replace"]


class LifecycleService(_Job, total=False):
    triggers: list[Literal["start", "stop", "delete"]]
    output_variables: bool


class RepositoryChart(TypedDict, total=False):
    source: Literal["repository"]
    repository_url: str
    name: str
    version: str


class GitChart(TypedDict, total=False):
    source: Literal["git"]
    url: str
    branch: str
    commit: str | None
    path: str


class HelmService(Service, total=False):
    chart: RepositoryChart | GitChart
    values_yaml: str
    set: dict[str, str]
    set_string: dict[str, str]
    release_name: str
    timeout_s: int


AnyService = (
    ApplicationService
    | ContainerService
    | DatabaseService
    | CronJobService
    | LifecycleService
    | HelmService
)
SERVICE_OF_KIND: dict[str, type[Service]] = {
    "application": ApplicationService,
    "container": ContainerService,
    "database": DatabaseService,
    "cronjob": CronJobService,
    "lifecycle": LifecycleService,
    "helm": HelmService,
}


class Variable(TypedDict, total=False):
    id: str
    key: str
    scope: str
    parent_id: str
    kind: str
    is_secret: bool
    value: str  # absent for a secret
    mount_path: str | None
    resource_version: int


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

    def cluster(self, cluster: str) -> dict[str, Any]:
        return cast(dict[str, Any], call("GET", f"/clusters/{cluster}"))

    def register_cluster(self, org: str, body: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], call("POST", f"/organizations/{org}/clusters", body))

    def check_cluster(self, cluster: str) -> dict[str, Any]:
        return cast(dict[str, Any], call("POST", f"/clusters/{cluster}/check"))

    def delete_cluster(self, cluster: str) -> None:
        call("DELETE", f"/clusters/{cluster}")

    def invitations(self, org: str) -> Items:
        return cast(Items, call("GET", f"/organizations/{org}/invitations")["items"])

    def cancel_invitation(self, org: str, invitation: str) -> None:
        call("DELETE", f"/organizations/{org}/invitations/{invitation}")

    def accept_invitation(self, invitation: str, token: str) -> dict[str, Any]:
        path = f"/invitations/{invitation}/accept"
        return cast(dict[str, Any], call("POST", path, {"token": token}) or {})

    def roles(self, org: str) -> Items:
        return cast(Items, call("GET", f"/organizations/{org}/roles")["items"])

    def role(self, org: str, role: str) -> dict[str, Any]:
        return cast(dict[str, Any], call("GET", f"/organizations/{org}/roles/{role}"))

    def create_role(self, org: str, body: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], call("POST", f"/organizations/{org}/roles", body))

    def delete_role(self, org: str, role: str) -> None:
        call("DELETE", f"/organizations/{org}/roles/{role}")

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
    def services(self, env: str) -> list[AnyService]:
        return cast(list[AnyService], call("GET", f"/environments/{env}/services")["items"])

    def service(self, service: str) -> AnyService:
        return cast(AnyService, call("GET", f"/services/{service}"))

    def create_service(self, env: str, body: dict[str, Any]) -> AnyService:
        return cast(AnyService, call("POST", f"/environments/{env}/services", body))

    def update_service(self, service: str, patch: dict[str, Any]) -> AnyService:
        """A JSON merge patch of the service's configuration."""
        return cast(AnyService, call("PATCH", f"/services/{service}", patch))

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

    # -- git credentials (organization level; secrets are never answered)
    def git_credentials(self, org: str) -> Items:
        return cast(Items, call("GET", f"/organizations/{org}/git-credentials")["items"])

    def git_credential(self, org: str, credential: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], call("GET", f"/organizations/{org}/git-credentials/{credential}")
        )

    def create_git_credential(self, org: str, body: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], call("POST", f"/organizations/{org}/git-credentials", body))

    def delete_git_credential(self, org: str, credential: str) -> None:
        call("DELETE", f"/organizations/{org}/git-credentials/{credential}")
