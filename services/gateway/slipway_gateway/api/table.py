"""The public route table: every public route, its action, and where it goes.

Each route declares who may call it: ``public`` (no credentials), ``user`` (a signed-in user,
not an API token), or ``member`` (a principal of the organization named in the path, allowed
``action`` by the policy). A route with ``access="member"`` and no action fails the test suite,
as does any public route registered outside this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slipway_gateway.domain.policy import Action

Access = Literal["public", "user", "member"]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    upstream: str
    upstream_path: str
    summary: str
    access: Access = "member"
    action: Action | None = None
    success: int = 200
    # for the test matrix: calling it with an allowed principal destroys its organization
    destructive: bool = False
    upstream_method: str | None = None  # when the internal API uses another verb
    # what the request touches, for the policy: the path parameter naming it ("org",
    # "cluster", "project", "environment", "service", "stage", "variable"), or where a variable's
    # parent is named ("variable_query", "variable_body")
    target: str = "org"
    # the mode and cluster of the environment to be created come from the body
    target_from_body: bool = False
    # list answers: keep only the items the principal may read (custom roles)
    filter_items: str | None = None  # "project" | "environment"
    # request headers passed on to the service besides the usual ones (a public route's own
    # authentication: a git provider's signature and delivery headers)
    passed_headers: tuple[str, ...] = ()


ORG = "/organizations/{org}"
I = "/internal/v1"  # noqa: E741


def _identity(
    method: str,
    path: str,
    summary: str,
    action: Action | None,
    *,
    access: Access = "member",
    upstream_path: str | None = None,
    success: int = 200,
    destructive: bool = False,
    upstream_method: str | None = None,
) -> RouteSpec:
    return RouteSpec(
        method=method,
        path=path,
        upstream="identity",
        upstream_path=upstream_path or I + path,
        summary=summary,
        access=access,
        action=action,
        success=success,
        destructive=destructive,
        upstream_method=upstream_method,
    )


def _catalog(
    method: str,
    path: str,
    summary: str,
    action: Action,
    target: str,
    *,
    success: int = 200,
    target_from_body: bool = False,
    filter_items: str | None = None,
) -> RouteSpec:
    return RouteSpec(
        method=method,
        path=path,
        upstream="catalog",
        upstream_path=I + path,
        summary=summary,
        action=action,
        target=target,
        success=success,
        target_from_body=target_from_body,
        filter_items=filter_items,
    )


A = Action
CATALOG_ROUTES: tuple[RouteSpec, ...] = (
    _catalog("GET", f"{ORG}/clusters", "List clusters", A.CLUSTER_READ, "org"),
    _catalog(
        "POST",
        f"{ORG}/clusters",
        "Register a self-managed cluster",
        A.CLUSTER_MANAGE,
        "org",
        success=201,
    ),
    _catalog("GET", "/clusters/{cluster}", "Read a cluster", A.CLUSTER_READ, "cluster"),
    _catalog("PATCH", "/clusters/{cluster}", "Update a cluster", A.CLUSTER_MANAGE, "cluster"),
    _catalog(
        "DELETE",
        "/clusters/{cluster}",
        "Delete a cluster",
        A.CLUSTER_MANAGE,
        "cluster",
        success=204,
    ),
    _catalog(
        "POST",
        "/clusters/{cluster}/check",
        "Check a cluster: version, nodes, Slipway's permissions",
        A.CLUSTER_READ,
        "cluster",
    ),
    # an organization's git credentials (private repositories): write-only secrets, owner/admin
    *(
        _catalog(
            method,
            f"{ORG}/git-credentials{tail}",
            summary,
            A.GIT_CREDENTIALS_MANAGE,
            "org",
            success=success,
        )
        for method, tail, summary, success in (
            ("GET", "", "List the organization's git credentials (never their secrets)", 200),
            ("POST", "", "Add a git credential: an https token or an SSH private key", 201),
            ("GET", "/{git_credential}", "Read a git credential (never its secret)", 200),
            ("DELETE", "/{git_credential}", "Delete a git credential", 204),
        )
    ),
    _catalog("GET", f"{ORG}/projects", "List projects", A.ORG_READ, "org", filter_items="project"),
    _catalog("POST", f"{ORG}/projects", "Create a project", A.PROJECT_CREATE, "org", success=201),
    _catalog("GET", "/projects/{project}", "Read a project", A.PROJECT_READ, "project"),
    _catalog("PATCH", "/projects/{project}", "Update a project", A.PROJECT_MANAGE, "project"),
    _catalog(
        "DELETE",
        "/projects/{project}",
        "Delete a project and everything in it",
        A.PROJECT_MANAGE,
        "project",
        success=204,
    ),
    _catalog(
        "GET",
        "/projects/{project}/environments",
        "List environments",
        A.PROJECT_READ,
        "project",
        filter_items="environment",
    ),
    _catalog(
        "POST",
        "/projects/{project}/environments",
        "Create an environment",
        A.ENV_CREATE,
        "project",
        success=201,
        target_from_body=True,
    ),
    _catalog(
        "GET", "/environments/{environment}", "Read an environment", A.ENV_READ, "environment"
    ),
    _catalog(
        "PATCH", "/environments/{environment}", "Update an environment", A.ENV_MANAGE, "environment"
    ),
    _catalog(
        "DELETE",
        "/environments/{environment}",
        "Delete an environment",
        A.ENV_DELETE,
        "environment",
        success=204,
    ),
    _catalog(
        "POST",
        "/environments/{environment}/clone",
        "Clone an environment",
        A.ENV_CREATE,
        "environment",
        success=201,
        target_from_body=True,
    ),
    _catalog(
        "GET", "/environments/{environment}/services", "List services", A.ENV_READ, "environment"
    ),
    _catalog(
        "POST",
        "/environments/{environment}/services",
        "Create a service",
        A.ENV_MANAGE,
        "environment",
        success=201,
    ),
    _catalog(
        "GET",
        "/environments/{environment}/stages",
        "List deployment stages",
        A.ENV_READ,
        "environment",
    ),
    _catalog(
        "POST",
        "/environments/{environment}/stages",
        "Create a stage",
        A.ENV_MANAGE,
        "environment",
        success=201,
    ),
    _catalog(
        "PUT",
        "/environments/{environment}/stages/order",
        "Reorder stages",
        A.ENV_MANAGE,
        "environment",
    ),
    _catalog("PATCH", "/stages/{stage}", "Rename a stage", A.ENV_MANAGE, "stage"),
    _catalog(
        "DELETE", "/stages/{stage}", "Delete an empty stage", A.ENV_MANAGE, "stage", success=204
    ),
    _catalog(
        "GET",
        "/environments/{environment}/deployment-rule",
        "Read the deployment rule",
        A.ENV_READ,
        "environment",
    ),
    _catalog(
        "PUT",
        "/environments/{environment}/deployment-rule",
        "Set the deployment rule",
        A.ENV_MANAGE,
        "environment",
    ),
    _catalog("GET", "/services/{service}", "Read a service", A.ENV_READ, "service"),
    _catalog("PATCH", "/services/{service}", "Update a service", A.ENV_MANAGE, "service"),
    _catalog(
        "DELETE", "/services/{service}", "Delete a service", A.ENV_MANAGE, "service", success=204
    ),
    _catalog(
        "PUT", "/services/{service}/stage", "Move a service to a stage", A.ENV_MANAGE, "service"
    ),
    _catalog(
        "GET",
        "/services/{service}/variables/resolved",
        "Every variable the service receives and where it comes from (secrets masked)",
        A.ENV_READ,
        "service",
    ),
    _catalog(
        "GET",
        "/variables",
        "List variables of a scope (?scope=&parent_id=)",
        A.ENV_READ,
        "variable_query",
    ),
    _catalog(
        "POST",
        "/variables",
        "Create a variable or secret",
        A.ENV_MANAGE,
        "variable_body",
        success=201,
    ),
    _catalog(
        "GET",
        "/variables/{variable}",
        "Read a variable (a secret's value never)",
        A.ENV_READ,
        "variable",
    ),
    _catalog("PATCH", "/variables/{variable}", "Update a variable", A.ENV_MANAGE, "variable"),
    _catalog(
        "DELETE",
        "/variables/{variable}",
        "Delete a variable",
        A.ENV_MANAGE,
        "variable",
        success=204,
    ),
)


def _deployer(
    method: str, path: str, summary: str, action: Action, target: str, *, success: int = 200
) -> RouteSpec:
    return RouteSpec(
        method=method,
        path=path,
        upstream="deployer",
        upstream_path=I + path,
        summary=summary,
        action=action,
        target=target,
        success=success,
    )


ENV = "/environments/{environment}"
SVC = "/services/{service}"
DEPLOYER_ROUTES: tuple[RouteSpec, ...] = (
    _deployer(
        "POST", f"{ENV}/deploy", "Deploy the environment", A.ENV_DEPLOY, "environment", success=202
    ),
    _deployer(
        "POST",
        f"{ENV}/redeploy",
        "Deploy again what the last successful deployment deployed",
        A.ENV_DEPLOY,
        "environment",
        success=202,
    ),
    _deployer(
        "POST", f"{ENV}/stop", "Stop the environment", A.ENV_DEPLOY, "environment", success=202
    ),
    _deployer(
        "POST",
        f"{ENV}/restart",
        "Restart the environment",
        A.ENV_DEPLOY,
        "environment",
        success=202,
    ),
    _deployer(
        "POST",
        f"{ENV}/delete",
        "Delete what runs of the environment (its configuration stays)",
        A.ENV_DELETE,
        "environment",
        success=202,
    ),
    _deployer(
        "POST",
        f"{ENV}/cancel",
        "Cancel the running (else the next queued) deployment",
        A.ENV_DEPLOY,
        "environment",
        success=202,
    ),
    _deployer(
        "GET",
        f"{ENV}/status",
        "Deployment state, running status and URLs of the environment and its services",
        A.ENV_READ,
        "environment",
    ),
    _deployer(
        "GET", f"{ENV}/deployments", "Deployment history, newest first", A.ENV_READ, "environment"
    ),
    _deployer(
        "POST",
        f"{SVC}/deploy",
        "Deploy one service (optionally at a commit or image tag)",
        A.ENV_DEPLOY,
        "service",
        success=202,
    ),
    _deployer("POST", f"{SVC}/stop", "Stop one service", A.ENV_DEPLOY, "service", success=202),
    _deployer(
        "POST", f"{SVC}/restart", "Restart one service", A.ENV_DEPLOY, "service", success=202
    ),
    _deployer(
        "POST",
        f"{SVC}/run",
        "Run a deployed cron or lifecycle job now",
        A.ENV_DEPLOY,
        "service",
        success=202,
    ),
    _deployer("GET", f"{SVC}/runs", "A job's runs outside deployments", A.ENV_READ, "service"),
    _deployer("GET", f"{SVC}/status", "One service's status", A.ENV_READ, "service"),
    _deployer(
        "GET", f"{SVC}/deployments", "Deployments that touched the service", A.ENV_READ, "service"
    ),
    _deployer(
        "GET",
        "/deployments/{deployment}",
        "One deployment: stages, services, steps and durations",
        A.ENV_READ,
        "deployment",
    ),
    _deployer(
        "POST",
        "/deployments/{deployment}/rollback",
        "Deploy that deployment's snapshot again",
        A.ENV_DEPLOY,
        "deployment",
        success=202,
    ),
)


def _logs(path: str, summary: str, target: str) -> RouteSpec:
    return RouteSpec(
        method="GET",
        path=path,
        upstream="logs",
        upstream_path=I + path,
        summary=summary,
        action=A.ENV_READ,
        target=target,
    )


LOGS_ROUTES: tuple[RouteSpec, ...] = (
    # ?since=&until= (ISO times), stream=, q= (text), tail=N, limit=, after= / before= (cursors)
    _logs("/deployments/{deployment}/logs", "A deployment's build and deploy lines", "deployment"),
    _logs(f"{SVC}/logs", "A service's live lines (and its job runs')", "service"),
    RouteSpec(
        method="GET",
        path=f"{ORG}/log-retention",
        upstream="logs",
        upstream_path=f"{I}{ORG}/log-retention",
        summary="How many days the organization's log lines are kept",
        action=A.ORG_READ,
    ),
    RouteSpec(
        method="PUT",
        path=f"{ORG}/log-retention",
        upstream="logs",
        upstream_path=f"{I}{ORG}/log-retention",
        summary="Keep the organization's log lines fewer days (null: the installation's)",
        action=A.ORG_UPDATE,
    ),
)


# served by the gateway itself (``api/org_events.py``), from the deployer's topic
EVENT_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        method="GET",
        path=f"{ORG}/events",
        upstream="gateway",
        upstream_path=f"{ORG}/events",  # no upstream: api/event_docs.py documents it
        summary="Follow the organization's deployment and status events (Server-Sent Events)",
        # every member may open it; each event is sent only to whom may read its environment
        action=A.ORG_READ,
    ),
)


SCHEDULER_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        method="GET",
        path=f"{ENV}/schedule",
        upstream="scheduler",
        upstream_path=I + f"{ENV}/schedule",
        summary="When the deployment rule next stops and starts the environment, and its cron"
        " jobs' next runs",
        action=A.ENV_READ,
        target="environment",
    ),
    *(
        RouteSpec(
            method=method,
            path=f"{ORG}/webhooks{tail}",
            upstream="scheduler",
            upstream_path=f"{I}{ORG}/webhooks{tail}",
            summary=summary,
            action=A.WEBHOOKS_MANAGE,
            success=success,
        )
        for method, tail, summary, success in (
            ("GET", "", "List the organization's outgoing webhooks", 200),
            ("POST", "", "Create an outgoing webhook (its signing secret is shown once)", 201),
            ("GET", "/{webhook}", "Read an outgoing webhook (never its secret)", 200),
            ("DELETE", "/{webhook}", "Delete an outgoing webhook", 204),
            (
                "GET",
                "/{webhook}/deliveries",
                "An outgoing webhook's deliveries, newest first, with their attempts",
                200,
            ),
            (
                "POST",
                "/{webhook}/deliveries/{delivery}/redeliver",
                "Send a delivery again, now",
                202,
            ),
        )
    ),
)


# what a git provider's delivery is read from: its event, its id, its signature
GIT_DELIVERY_HEADERS = (
    "x-github-event",
    "x-github-delivery",
    "x-hub-signature-256",
    "x-gitlab-event",
    "x-gitlab-event-uuid",
    "x-gitlab-token",
    "x-gitea-event",
    "x-gitea-delivery",
    "x-gitea-signature",
)
GIT_WEBHOOK_ROUTES: tuple[RouteSpec, ...] = (
    *(
        RouteSpec(
            method=method,
            path=f"{ORG}/git-webhooks{tail}",
            upstream="scheduler",
            upstream_path=f"{I}{ORG}/git-webhooks{tail}",
            summary=summary,
            action=A.WEBHOOKS_MANAGE,
            success=success,
        )
        for method, tail, summary, success in (
            ("GET", "", "List the organization's git webhook endpoints", 200),
            ("POST", "", "Create a git webhook endpoint (its secret is shown once)", 201),
            ("GET", "/{git_webhook}", "Read a git webhook endpoint (never its secret)", 200),
            ("DELETE", "/{git_webhook}", "Delete a git webhook endpoint", 204),
            (
                "GET",
                "/{git_webhook}/deliveries",
                "A git webhook endpoint's deliveries, newest first: event, result, what each"
                " triggered",
                200,
            ),
        )
    ),
    RouteSpec(
        method="GET",
        path=f"{ORG}/git-polls",
        upstream="scheduler",
        upstream_path=f"{I}{ORG}/git-polls",
        summary="The branches polled for new commits (repositories without a git webhook): the"
        " last head seen, the last failure",
        action=A.WEBHOOKS_MANAGE,
        success=200,
    ),
    # no credentials: the provider's signature of the body, checked by the scheduler, is the
    # authentication; the body is limited like every request's
    RouteSpec(
        method="POST",
        path="/hooks/git/{git_webhook}",
        upstream="scheduler",
        upstream_path=f"{I}/hooks/git/{{git_webhook}}",
        summary="A GitHub, GitLab or Gitea/Forgejo delivery, signed with the endpoint's secret"
        " (a push deploys the matching applications)",
        access="public",
        success=202,
        passed_headers=GIT_DELIVERY_HEADERS,
    ),
)


ROUTES: tuple[RouteSpec, ...] = (
    _identity(
        "POST",
        "/auth/signup",
        "Create an account",
        None,
        access="public",
        upstream_path=f"{I}/users",
        success=201,
    ),
    _identity(
        "POST",
        "/auth/login",
        "Sign in: session and refresh tokens",
        None,
        access="public",
        upstream_path=f"{I}/sessions",
    ),
    _identity(
        "POST",
        "/auth/refresh",
        "Exchange a refresh token for new tokens",
        None,
        access="public",
        upstream_path=f"{I}/sessions/refresh",
    ),
    _identity(
        "POST",
        "/auth/logout",
        "End this session",
        None,
        access="user",
        upstream_path=f"{I}/sessions/{{session_id}}",
        success=204,
        upstream_method="DELETE",
    ),
    _identity(
        "GET",
        "/me",
        "The signed-in user, their organizations and invitations",
        None,
        access="user",
        upstream_path=f"{I}/users/{{user_id}}",
    ),
    _identity(
        "GET",
        "/organizations",
        "Organizations you belong to",
        None,
        access="user",
        upstream_path=f"{I}/users/{{user_id}}/organizations",
    ),
    _identity(
        "POST",
        "/organizations",
        "Create an organization (you become its owner)",
        None,
        access="user",
        success=201,
    ),
    _identity(
        "POST", "/invitations/{invitation}/accept", "Accept an invitation", None, access="user"
    ),
    _identity("GET", ORG, "Read an organization", Action.ORG_READ),
    _identity("PATCH", ORG, "Update an organization", Action.ORG_UPDATE),
    _identity(
        "DELETE", ORG, "Delete an organization", Action.ORG_DELETE, success=204, destructive=True
    ),
    _identity(
        "POST", f"{ORG}/transfer-ownership", "Transfer ownership to a member", Action.ORG_TRANSFER
    ),
    _identity("GET", f"{ORG}/members", "List members", Action.MEMBERS_READ),
    _identity(
        "POST", f"{ORG}/members", "Invite a member by email", Action.MEMBERS_MANAGE, success=201
    ),
    _identity("PATCH", f"{ORG}/members/{{user}}", "Change a member's role", Action.MEMBERS_MANAGE),
    _identity(
        "DELETE", f"{ORG}/members/{{user}}", "Remove a member", Action.MEMBERS_MANAGE, success=204
    ),
    _identity("GET", f"{ORG}/invitations", "List pending invitations", Action.MEMBERS_MANAGE),
    _identity(
        "DELETE",
        f"{ORG}/invitations/{{invitation}}",
        "Revoke an invitation",
        Action.MEMBERS_MANAGE,
        success=204,
    ),
    _identity("GET", f"{ORG}/roles", "List built-in and custom roles", Action.ROLES_READ),
    _identity("POST", f"{ORG}/roles", "Create a custom role", Action.ROLES_MANAGE, success=201),
    _identity("GET", f"{ORG}/roles/{{role}}", "Read a custom role", Action.ROLES_READ),
    _identity("PATCH", f"{ORG}/roles/{{role}}", "Update a custom role", Action.ROLES_MANAGE),
    _identity(
        "DELETE", f"{ORG}/roles/{{role}}", "Delete a custom role", Action.ROLES_MANAGE, success=204
    ),
    _identity("GET", f"{ORG}/api-tokens", "List API tokens", Action.API_TOKENS_MANAGE),
    _identity(
        "POST",
        f"{ORG}/api-tokens",
        "Create an API token (shown once)",
        Action.API_TOKENS_MANAGE,
        success=201,
    ),
    _identity(
        "DELETE",
        f"{ORG}/api-tokens/{{token}}",
        "Revoke an API token",
        Action.API_TOKENS_MANAGE,
        success=204,
    ),
    _identity("GET", f"{ORG}/audit-events", "The organization's audit log", Action.AUDIT_READ),
    *CATALOG_ROUTES,
    *DEPLOYER_ROUTES,
    *LOGS_ROUTES,
    *EVENT_ROUTES,
    *SCHEDULER_ROUTES,
    *GIT_WEBHOOK_ROUTES,
)
