"""How the role-by-route matrix calls each public route so that an allowed call really succeeds.

Each route gets the ids it points at and a body its service accepts. A route that destroys or
uses up what it touches (a DELETE, a transfer, accepting an invitation) gets, in each allowed
cell, a fresh resource of the same standing as the shared one (a custom role holds the same
grants on both), made by the owner. A few routes may refuse an allowed caller for a business
reason the test knows; ``accepts`` names each such answer and why.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.gateway.tests.expected_permissions import Target
from slipway_libs.testing.public_api import PASSWORD, User, create_org, eventually, token_auth

Ids = dict[str, str]
Json = dict[str, Any] | None

# a self-managed cluster's API: a public address, never connected to (only the local cluster is
# checked), so that no egress rule refuses it
KUBE_API = "https://8.8.8.8:6443"
APP = {"kind": "application", "git": {"url": "https://example.com/a/b.git"}}
# an outgoing webhook's target: a public address, never delivered to (no deployment event of
# the matrix's organization matches its event)
WEBHOOK = {"url": "https://8.8.8.8/hooks", "events": ["environment.stopped"]}
# a git credential's body: an https token for a host the matrix never builds from
GIT_CREDENTIAL = {"name": "spare", "kind": "token", "host": "git.example.com", "token": "t0ken"}
MODE = "staging"  # the shared environment's mode; clones go to CLONE_MODE
CLONE_MODE = "development"


@dataclass
class Cast:
    """The organization every cell works in, and who set it up."""

    api: httpx.AsyncClient  # the public API, /api/v1
    org: str
    owner: User
    heir: User  # becomes owner of throwaway organizations (transfer-ownership)
    leaver: User  # joins, then is removed (DELETE member)
    ids: Ids = field(default_factory=dict)


@dataclass(frozen=True)
class Caller:
    """Who sends a cell's request: the principal, or a stand-in of the same role."""

    headers: dict[str, str]
    kind: str  # "user" | "token"
    user: User | None = None


Fresh = Callable[[Cast, Caller], Awaitable[tuple[Ids, Caller]]]


@dataclass(frozen=True)
class Call:
    params: Mapping[str, str] = field(default_factory=dict)  # path parameter -> key of Cast.ids
    body: Callable[[Ids], Json] | None = None
    query: Callable[[Ids], str] | None = None
    fresh: Fresh | None = None
    accepts: Mapping[tuple[int, str], str] = field(default_factory=dict)  # (status, code): why
    # what the route touches, as a custom role's grants see it (default: from the path)
    target: Callable[[Ids], Target] | None = None


def _name(prefix: str = "n") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def env_target(ids: Ids) -> Target:
    return Target(project=ids["project"], mode=MODE, cluster=ids["local"])


def default_target(path: str, ids: Ids, params: Mapping[str, str]) -> Target:
    """The shared resource a path names: a cluster, a project, the organization, or (anything
    under an environment) the shared environment."""
    if "{cluster}" in path:
        return Target(cluster=ids[params.get("cluster", "cluster")])
    if "{project}" in path:
        return Target(project=ids[params.get("project", "project")])
    if path.startswith("/organizations/{org}"):
        return Target()
    return env_target(ids)


# --- fresh resources, made by the owner ----------------------------------------------------


async def _post(
    cast: Cast, path: str, body: dict[str, Any], by: User | None = None
) -> dict[str, Any]:
    made = await cast.api.post(path, json=body, headers=(by or cast.owner).auth)
    assert made.status_code == 201, f"{path}: {made.status_code} {made.text}"
    result: dict[str, Any] = made.json()
    return result


def _fresh(key: str, make: Callable[[Cast], Awaitable[str]]) -> Fresh:
    async def fresh(cast: Cast, caller: Caller) -> tuple[Ids, Caller]:
        return {**cast.ids, key: await make(cast)}, caller

    return fresh


async def new_environment(cast: Cast) -> str:
    body = {"name": _name(), "mode": MODE, "cluster_id": cast.ids["local"]}
    return str((await _post(cast, f"/projects/{cast.ids['project']}/environments", body))["id"])


async def deployer_knows(cast: Cast, status_path: str) -> None:
    """Until the deployer has heard of a new environment or service (over Kafka: under load,
    later than its own wait for an unknown one lasts)."""

    async def known() -> bool:
        status = await cast.api.get(status_path, headers=cast.owner.auth)
        return status.status_code == 200

    await eventually(known, within_s=30)


async def _environment_the_deployer_knows(cast: Cast) -> str:
    env = await new_environment(cast)
    await deployer_knows(cast, f"/environments/{env}/status")
    return env


async def _new_cluster(cast: Cast) -> str:
    body = {"name": _name(), "api_url": KUBE_API, "token": "t"}
    return str((await _post(cast, f"/organizations/{cast.org}/clusters", body))["id"])


async def _new_project(cast: Cast) -> str:
    return str((await _post(cast, f"/organizations/{cast.org}/projects", {"name": _name()}))["id"])


async def _new_service(cast: Cast) -> str:
    env = cast.ids["environment"]
    return str((await _post(cast, f"/environments/{env}/services", {**APP, "name": _name()}))["id"])


async def _new_stage(cast: Cast) -> str:
    env = cast.ids["environment"]
    return str((await _post(cast, f"/environments/{env}/stages", {"name": _name()}))["id"])


async def _new_variable(cast: Cast) -> str:
    return str((await _post(cast, "/variables", _variable(cast.ids)))["id"])


def _variable(ids: Ids) -> dict[str, Any]:
    key = _name("K").upper()
    return {"scope": "environment", "parent_id": ids["environment"], "key": key, "value": "v"}


async def _new_role(cast: Cast) -> str:
    return str((await _post(cast, f"/organizations/{cast.org}/roles", {"name": _name()}))["id"])


async def _new_token(cast: Cast) -> str:
    body = {"name": _name(), "role": "viewer"}
    return str((await _post(cast, f"/organizations/{cast.org}/api-tokens", body))["id"])


async def _new_webhook(cast: Cast) -> str:
    return str((await _post(cast, f"/organizations/{cast.org}/webhooks", dict(WEBHOOK)))["id"])


async def _new_git_webhook(cast: Cast) -> str:
    made = await _post(cast, f"/organizations/{cast.org}/git-webhooks", {"description": "x"})
    return str(made["id"])


async def _new_git_credential(cast: Cast) -> str:
    body = {**GIT_CREDENTIAL, "name": _name()}
    return str((await _post(cast, f"/organizations/{cast.org}/git-credentials", body))["id"])


async def _new_invitation(cast: Cast) -> str:
    body = {"email": f"{_name('i')}@example.com", "role": "viewer"}
    return str((await _post(cast, f"/organizations/{cast.org}/members", body))["id"])


async def _joined_leaver(cast: Cast) -> str:
    await join(cast, cast.org, cast.leaver, "viewer")
    return cast.leaver.id


async def join(cast: Cast, org: str, who: User, role: str) -> None:
    invited = await _post(cast, f"/organizations/{org}/members", {"email": who.email, "role": role})
    accepted = await cast.api.post(
        f"/invitations/{invited['id']}/accept",
        json={"token": invited.get("accept_token")},
        headers=who.auth,
    )
    assert accepted.status_code == 200, accepted.text


async def _throwaway_org(cast: Cast, caller: Caller) -> tuple[Ids, Caller]:
    """A new organization (the heir a member of it) that the caller, as its owner, may lose."""
    org = await create_org(cast.api, cast.owner, "Doomed")
    await join(cast, org, cast.heir, "admin")
    headers = cast.owner.auth
    if caller.kind == "token":
        made = await _post(cast, f"/organizations/{org}/api-tokens", {"name": "x", "role": "owner"})
        headers = token_auth(made["token"])

    async def known() -> bool:
        return (await cast.api.get(f"/organizations/{org}", headers=headers)).status_code == 200

    await eventually(known)
    return {**cast.ids, "org": org, "heir": cast.heir.id}, Caller(headers, caller.kind)


async def _invitation_for(cast: Cast, caller: Caller) -> tuple[Ids, Caller]:
    """An invitation of the caller (a user) to another organization (the heir's: the owner
    would be inviting itself), with its token."""
    assert caller.user is not None
    org = await create_org(cast.api, cast.heir, "Inviting")
    body = {"email": caller.user.email, "role": "viewer"}
    invited = await _post(cast, f"/organizations/{org}/members", body, by=cast.heir)
    return {
        **cast.ids,
        "invitation": invited["id"],
        "accept_token": str(invited.get("accept_token")),
    }, caller


async def _new_session(cast: Cast, caller: Caller) -> tuple[Ids, Caller]:
    """Logging out ends a session: a new one of the caller's, not the one the matrix uses."""
    assert caller.user is not None
    login = await cast.api.post(
        "/auth/login", json={"email": caller.user.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    bearer = {"authorization": f"Bearer {login.json()['access_token']}"}
    return cast.ids, Caller(bearer, caller.kind, caller.user)


async def _busy(cast: Cast, caller: Caller) -> tuple[Ids, Caller]:
    """A deployment queued or running in the shared environment, so that there is something to
    stop, restart or cancel (no builder runs here: it never finishes by itself)."""
    env = cast.ids["environment"]
    deployed = await cast.api.post(f"/environments/{env}/deploy", headers=cast.owner.auth)
    assert deployed.status_code == 202, deployed.text
    return cast.ids, caller


async def _deploying(cast: Cast, caller: Caller) -> tuple[Ids, Caller]:
    """A new environment with a deployment under way, for a cancel of its own: on the shared
    environment, requests merge and earlier cancels race with the queue."""
    env = await new_environment(cast)
    service = (await _post(cast, f"/environments/{env}/services", {**APP, "name": "web"}))["id"]
    # else the deployment, of nothing, is over at once
    await deployer_knows(cast, f"/services/{service}/status")
    deployed = await cast.api.post(f"/environments/{env}/deploy", headers=cast.owner.auth)
    assert deployed.status_code == 202, deployed.text

    async def taken() -> bool:
        # once the deployer's worker holds it: a cancel racing with the worker's claim of a
        # queued request may be told NOTHING_TO_CANCEL (a deployer race, reported)
        status = await cast.api.get(f"/environments/{env}/status", headers=cast.owner.auth)
        return status.status_code == 200 and status.json()["state"] != "QUEUED"

    await eventually(taken)
    return {**cast.ids, "environment": env}, caller


async def _ordered_stages(cast: Cast, caller: Caller) -> tuple[Ids, Caller]:
    listed = await cast.api.get(
        f"/environments/{cast.ids['environment']}/stages", headers=cast.owner.auth
    )
    order = ",".join(stage["id"] for stage in listed.json()["items"])
    return {**cast.ids, "stage_order": order}, caller


# --- every route ---------------------------------------------------------------------------

ORG = "/organizations/{org}"
ENV = "/environments/{environment}"
SVC = "/services/{service}"
CALLS: dict[tuple[str, str], Call] = {
    ("POST", "/auth/logout"): Call(fresh=_new_session),
    ("GET", "/me"): Call(),
    ("GET", "/organizations"): Call(),
    ("POST", "/organizations"): Call(body=lambda ids: {"name": _name("Org")}),
    ("POST", "/invitations/{invitation}/accept"): Call(
        body=lambda ids: {"token": ids.get("accept_token")}, fresh=_invitation_for
    ),
    ("GET", ORG): Call(),
    ("PATCH", ORG): Call(body=lambda ids: {"description": _name("d")}),
    ("DELETE", ORG): Call(fresh=_throwaway_org),
    ("POST", f"{ORG}/transfer-ownership"): Call(
        body=lambda ids: {"user_id": ids["heir"]},
        fresh=_throwaway_org,
        accepts={(403, "OWNER_ONLY"): "an API token is no person to hand ownership from"},
    ),
    ("GET", f"{ORG}/members"): Call(),
    ("POST", f"{ORG}/members"): Call(
        body=lambda ids: {"email": f"{_name('m')}@example.com", "role": "viewer"}
    ),
    # the viewer keeps its role: nothing changes, the call still succeeds
    ("PATCH", f"{ORG}/members/{{user}}"): Call(
        params={"user": "viewer_user"}, body=lambda ids: {"role": "viewer"}
    ),
    ("DELETE", f"{ORG}/members/{{user}}"): Call(
        params={"user": "leaver"}, fresh=_fresh("leaver", _joined_leaver)
    ),
    ("GET", f"{ORG}/invitations"): Call(),
    ("DELETE", f"{ORG}/invitations/{{invitation}}"): Call(
        fresh=_fresh("invitation", _new_invitation)
    ),
    ("GET", f"{ORG}/roles"): Call(),
    ("POST", f"{ORG}/roles"): Call(body=lambda ids: {"name": _name("R")}),
    ("GET", f"{ORG}/roles/{{role}}"): Call(),
    ("PATCH", f"{ORG}/roles/{{role}}"): Call(body=lambda ids: {"description": _name("d")}),
    ("DELETE", f"{ORG}/roles/{{role}}"): Call(fresh=_fresh("role", _new_role)),
    ("GET", f"{ORG}/api-tokens"): Call(),
    ("POST", f"{ORG}/api-tokens"): Call(body=lambda ids: {"name": _name(), "role": "viewer"}),
    ("DELETE", f"{ORG}/api-tokens/{{token}}"): Call(fresh=_fresh("token", _new_token)),
    ("GET", f"{ORG}/audit-events"): Call(),
    ("GET", f"{ORG}/clusters"): Call(),
    ("POST", f"{ORG}/clusters"): Call(
        body=lambda ids: {"name": _name(), "api_url": KUBE_API, "token": "t"}
    ),
    ("GET", "/clusters/{cluster}"): Call(params={"cluster": "local"}),
    ("PATCH", "/clusters/{cluster}"): Call(
        params={"cluster": "managed"}, body=lambda ids: {"name": _name()}
    ),
    # a cluster no custom role holds a grant on, as the fresh ones
    ("DELETE", "/clusters/{cluster}"): Call(
        params={"cluster": "spare_cluster"}, fresh=_fresh("spare_cluster", _new_cluster)
    ),
    ("POST", "/clusters/{cluster}/check"): Call(params={"cluster": "local"}),
    ("GET", f"{ORG}/projects"): Call(),
    ("POST", f"{ORG}/projects"): Call(body=lambda ids: {"name": _name()}),
    ("GET", "/projects/{project}"): Call(),
    ("PATCH", "/projects/{project}"): Call(body=lambda ids: {"description": _name("d")}),
    ("DELETE", "/projects/{project}"): Call(
        params={"project": "spare_project"}, fresh=_fresh("spare_project", _new_project)
    ),
    ("GET", "/projects/{project}/environments"): Call(),
    ("POST", "/projects/{project}/environments"): Call(
        body=lambda ids: {"name": _name(), "mode": MODE, "cluster_id": ids["local"]},
        target=env_target,
    ),
    ("GET", ENV): Call(),
    ("PATCH", ENV): Call(body=lambda ids: {"name": _name()}),
    ("DELETE", ENV): Call(fresh=_fresh("environment", new_environment)),
    ("POST", f"{ENV}/clone"): Call(
        body=lambda ids: {"name": _name(), "mode": CLONE_MODE, "cluster_id": ids["local"]},
        target=lambda ids: Target(
            project=ids["project"], mode=CLONE_MODE, cluster=ids["local"], source_mode=MODE
        ),
    ),
    ("GET", f"{ENV}/services"): Call(),
    ("POST", f"{ENV}/services"): Call(body=lambda ids: {**APP, "name": _name()}),
    ("GET", f"{ENV}/stages"): Call(),
    ("POST", f"{ENV}/stages"): Call(body=lambda ids: {"name": _name()}),
    ("PUT", f"{ENV}/stages/order"): Call(
        body=lambda ids: {"stage_ids": ids.get("stage_order", ids["stage"]).split(",")},
        fresh=_ordered_stages,
    ),
    ("PATCH", "/stages/{stage}"): Call(body=lambda ids: {"name": _name()}),
    ("DELETE", "/stages/{stage}"): Call(fresh=_fresh("stage", _new_stage)),
    ("GET", f"{ENV}/deployment-rule"): Call(),
    ("PUT", f"{ENV}/deployment-rule"): Call(body=lambda ids: {"auto_stop": False}),
    ("GET", SVC): Call(),
    ("PATCH", SVC): Call(body=lambda ids: {"name": _name()}),
    ("DELETE", SVC): Call(fresh=_fresh("service", _new_service)),
    ("PUT", f"{SVC}/stage"): Call(body=lambda ids: {"stage_id": ids["stage"]}),
    ("GET", f"{SVC}/variables/resolved"): Call(),
    ("GET", "/variables"): Call(
        query=lambda ids: f"scope=environment&parent_id={ids['environment']}"
    ),
    ("POST", "/variables"): Call(body=_variable),
    ("GET", "/variables/{variable}"): Call(),
    ("PATCH", "/variables/{variable}"): Call(body=lambda ids: {"value": _name("v")}),
    ("DELETE", "/variables/{variable}"): Call(fresh=_fresh("variable", _new_variable)),
    ("POST", f"{ENV}/deploy"): Call(),
    # the empty environment, whose deployment succeeded (no builder runs in the matrix)
    ("POST", f"{ENV}/redeploy"): Call(params={"environment": "quiet_environment"}),
    ("POST", f"{ENV}/stop"): Call(fresh=_busy),
    ("POST", f"{ENV}/restart"): Call(fresh=_busy),
    ("POST", f"{ENV}/delete"): Call(fresh=_fresh("environment", _environment_the_deployer_knows)),
    ("POST", f"{ENV}/cancel"): Call(fresh=_deploying),
    ("GET", f"{ENV}/status"): Call(),
    ("GET", f"{ENV}/deployments"): Call(),
    ("POST", f"{SVC}/deploy"): Call(),
    ("POST", f"{SVC}/stop"): Call(fresh=_busy),
    ("POST", f"{SVC}/restart"): Call(fresh=_busy),
    ("POST", f"{SVC}/run"): Call(
        accepts={(422, "NOT_A_JOB"): "the shared service is an application, not a job"}
    ),
    ("GET", f"{SVC}/runs"): Call(),
    ("GET", f"{SVC}/status"): Call(),
    ("GET", f"{SVC}/deployments"): Call(),
    ("GET", "/deployments/{deployment}"): Call(),
    ("POST", "/deployments/{deployment}/rollback"): Call(),
    ("GET", "/deployments/{deployment}/logs"): Call(),
    ("GET", f"{SVC}/logs"): Call(),
    ("GET", f"{ORG}/log-retention"): Call(),
    ("PUT", f"{ORG}/log-retention"): Call(body=lambda ids: {"days": 14}),
    # what is there, then the end: the cell reads a whole answer
    ("GET", f"{ORG}/events"): Call(query=lambda ids: "follow=false"),
    ("GET", f"{ENV}/schedule"): Call(),
    ("GET", f"{ORG}/webhooks"): Call(),
    ("POST", f"{ORG}/webhooks"): Call(body=lambda ids: dict(WEBHOOK)),
    ("GET", f"{ORG}/webhooks/{{webhook}}"): Call(),
    ("DELETE", f"{ORG}/webhooks/{{webhook}}"): Call(fresh=_fresh("webhook", _new_webhook)),
    ("GET", f"{ORG}/webhooks/{{webhook}}/deliveries"): Call(),
    ("POST", f"{ORG}/webhooks/{{webhook}}/deliveries/{{delivery}}/redeliver"): Call(
        params={"delivery": "webhook"},  # an id that names no delivery of it
        accepts={
            (404, "DELIVERY_NOT_FOUND"): "the shared webhook has no delivery: nothing of the"
            " matrix's organization matches its event"
        },
    ),
    ("GET", f"{ORG}/git-webhooks"): Call(),
    ("POST", f"{ORG}/git-webhooks"): Call(body=lambda ids: {"description": "matrix"}),
    ("GET", f"{ORG}/git-webhooks/{{git_webhook}}"): Call(),
    ("DELETE", f"{ORG}/git-webhooks/{{git_webhook}}"): Call(
        fresh=_fresh("git_webhook", _new_git_webhook)
    ),
    ("GET", f"{ORG}/git-webhooks/{{git_webhook}}/deliveries"): Call(),
    ("GET", f"{ORG}/git-polls"): Call(),
    ("GET", f"{ORG}/git-credentials"): Call(),
    ("POST", f"{ORG}/git-credentials"): Call(body=lambda ids: {**GIT_CREDENTIAL, "name": _name()}),
    ("GET", f"{ORG}/git-credentials/{{git_credential}}"): Call(),
    ("DELETE", f"{ORG}/git-credentials/{{git_credential}}"): Call(
        fresh=_fresh("git_credential", _new_git_credential)
    ),
}


def request_path(path: str, call: Call, ids: Ids) -> str:
    values = {name: ids[call.params.get(name, name)] for name in _parameters(path)}
    url = "/api/v1" + path.format(**values)
    return f"{url}?{call.query(ids)}" if call.query else url


def _parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
