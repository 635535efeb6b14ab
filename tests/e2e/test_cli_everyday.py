"""The ``slipway`` command line as a user runs it every day, against the real platform (identity,
catalog, builder, deployer, logs, scheduler and gateway as processes; Kafka, PostgreSQL, git,
buildah, the registry): sign up and log in, create a project, an environment and an
application from a git repository, set a variable and a secret, ``deploy --watch`` to success
(exit 0, the app's URL printed), ``status``, ``deployments list|show``, a new commit deployed,
``rollback --to`` the first deployment, a failing deployment that exits 1 naming why, outgoing
webhooks with their deliveries, and ``--output json|yaml`` that parses. Every command goes
through the CLI and its typed client only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from services.scheduler.tests.receiver import Receiver
from slipway_cli.main import app
from slipway_libs.testing.platform import Platform
from tests.e2e.deploying import commit_page, web_repo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DELIVERY_DEADLINE_S = 120


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
async def platform(platform_factory, repos, devstack, receiver) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "logs", "scheduler", "gateway"],
        extra_env={
            "SLIPWAY_GIT_LOCAL_ROOTS": str(repos),
            "SLIPWAY_SCHEDULER_EGRESS_ALLOW": f"127.0.0.1:{receiver.port}",
        },
    )


@dataclass
class Cli:
    """``slipway`` with its own configuration directory (its saved session), on this platform."""

    platform: Platform
    config: Path

    def __call__(self, *args: str, code: int | None = 0, token: str = "") -> Result:
        env = {
            "SLIPWAY_API_URL": self.platform.url("gateway"),
            "SLIPWAY_CONFIG_DIR": str(self.config),
            "SLIPWAY_TOKEN": token,  # "": the saved session, never an ambient token
        }
        result = CliRunner().invoke(app, list(args), env=env)
        if code is not None:
            assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    async def run(self, *args: str, code: int | None = 0, token: str = "") -> Result:
        return await asyncio.to_thread(self, *args, code=code, token=token)

    async def out(self, *args: str) -> str:
        return (await self.run(*args)).stdout.strip()

    async def json(self, *args: str) -> object:
        return json.loads(await self.out(*args, "-o", "json"))


@pytest.fixture
async def cli(platform, tmp_path) -> Cli:
    slipway = Cli(platform, tmp_path / "config")
    email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    await slipway.run("signup", "--email", email, "--name", "Ada", "--password", password)
    await slipway.run("login", "--email", email, "--password", password)
    return slipway


async def _environment(cli: Cli) -> tuple[str, str]:
    org = await cli.out("orgs", "create", f"Acme {uuid.uuid4().hex[:6]}")
    project = await cli.out("projects", "create", "--org", org, "Shop")
    env = await cli.out("envs", "create", "--project", project, "--org", org, "staging")
    return org, env


async def _page(url: str, path: str = "") -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{url}{path}")).text


async def test_deploy_watch_status_rollback_and_formats(cli, repos, devstack, receiver) -> None:
    repo = web_repo(
        repos / f"cli-{uuid.uuid4().hex[:6]}", devstack.env["SLIPWAY_BASE_IMAGE"], "one"
    )
    org, env = await _environment(cli)
    hook = await cli.json(
        "webhooks", "create", "--org", org, "--url", receiver.url("/cli"),
        "--event", "deployment.succeeded",
    )  # fmt: skip
    assert hook["secret"]  # type: ignore[index]  # shown once, at creation
    listed = await cli.json("webhooks", "list", "--org", org)
    assert [h["id"] for h in listed] == [hook["id"]]  # type: ignore[index]
    assert all("secret" not in h for h in listed)  # type: ignore[union-attr]

    web = await cli.out(
        "services", "create", env, "--name", "web", "--kind", "application",
        "--repo", str(repo), "--branch", "main", "--port", "8080",
    )  # fmt: skip
    assert yaml.safe_load(await cli.out("services", "show", web, "-o", "yaml"))["git"] == {
        "url": str(repo), "branch": "main", "commit": None, "root_path": "/",
        "dockerfile_path": "Dockerfile", "build_args": {},
    }  # fmt: skip
    assert (await cli.out("services", "list", env)).split("\t")[:3] == [web, "web", "application"]
    await cli.run("vars", "set", "--env", env, "GREETING=hello world")
    await cli.run("vars", "set", "--env", env, "API_KEY=s3cr3t", "--secret")
    variables = await cli.json("vars", "list", "--env", env)
    assert {v["key"]: v.get("value") for v in variables} == {  # type: ignore[union-attr]
        "API_KEY": None,  # a secret is never answered
        "GREETING": "hello world",
    }
    resolved = {v["key"]: v for v in await cli.json("vars", "list", web, "--resolved")}  # type: ignore[union-attr]
    assert resolved["GREETING"]["source_scope"] == "environment"
    assert resolved["API_KEY"]["value"] is None and resolved["API_KEY"]["is_secret"]
    table = await cli.out("vars", "list", web, "--resolved")
    assert "API_KEY\t********\tenvironment" in table and "s3cr3t" not in table

    # created a moment ago: the CLI hands the catalog's revision back, so the deploy has it
    first = await cli.run("deploy", env, "--watch")
    assert "ended: SUCCESS" in first.stdout, first.output
    # live: the stage and service transitions, and the build's lines from the logs' stream
    assert "stage applications: DONE" in first.stdout, first.output
    assert "STEP 2/3: COPY index.html /www/index.html" in first.stdout, first.output
    url = next(w for w in first.stdout.split() if w.startswith("http://127.0.0.1:"))
    assert await _page(url) == "one"
    seen = await _page(url, "/env.txt")
    assert "GREETING=hello world" in seen and "API_KEY=s3cr3t" in seen

    status = await cli.json("status", env)
    assert status["state"] == "DEPLOYED" and status["freshness"] == "UP_TO_DATE"  # type: ignore[index]
    assert status["services"][0]["urls"] == [url]  # type: ignore[index]
    assert "DEPLOYED" in await cli.out("envs", "status", env)
    history = await cli.json("deployments", "list", env)
    assert [(d["action"], d["status"]) for d in history] == [("DEPLOY", "SUCCESS")]  # type: ignore[union-attr]
    first_id = history[0]["id"]  # type: ignore[index]
    shown = yaml.safe_load(await cli.out("deployments", "show", first_id, "-o", "yaml"))
    assert shown["status"] == "SUCCESS" and shown["stages"][0]["services"][0]["name"] == "web"

    commit_page(repo, "two")
    second = await cli.run("envs", "deploy", env, "--watch", "-o", "json")
    assert json.loads(second.stdout)["status"] == "SUCCESS"  # stdout: the deployment alone
    assert await _page(url) == "two"

    back = await cli.run("deployments", "rollback", env, "--to", first_id, "--watch")
    assert "ended: SUCCESS" in back.stdout, back.output
    assert await _page(url) == "one"  # the first deployment's image, nothing built
    latest = (await cli.json("deployments", "list", env, "--limit", "1"))[0]  # type: ignore[index]
    assert latest["rollback_of"] == first_id

    await cli.run("services", "restart", web, "--watch")
    assert (await cli.json("services", "status", web))["running_status"] == "RUNNING"  # type: ignore[index]
    assert await _page(url) == "one"

    schedule = await cli.json("envs", "schedule", env)
    assert schedule["environment_id"] == env and schedule["auto_stop"] is False  # type: ignore[index]

    # the webhook heard the four successes (deploy, deploy, rollback, restart); its delivery log
    # says so; redeliver sends one again
    await receiver.wait_for("/cli", 4, DELIVERY_DEADLINE_S)
    deliveries = await _deliveries(cli, org, hook["id"], 4)  # type: ignore[index]
    await cli.run("webhooks", "redeliver", hook["id"], deliveries[0]["id"], "--org", org)  # type: ignore[index]
    resent = await receiver.wait_for("/cli", 5, DELIVERY_DEADLINE_S)
    assert resent[4].body in [r.body for r in resent[:4]]  # the same event, sent again
    await cli.run("webhooks", "delete", hook["id"], "--org", org, "--yes")  # type: ignore[index]
    assert await cli.json("webhooks", "list", "--org", org) == []


async def _deliveries(cli: Cli, org: str, hook: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while time.monotonic() < deadline:
        found = await cli.json("webhooks", "deliveries", hook, "--org", org)
        done = [d for d in found if d["last_response_code"] == 200]  # type: ignore[index, union-attr]
        if len(done) >= count:
            return done  # type: ignore[return-value]
        await asyncio.sleep(0.5)
    raise AssertionError(f"{count} delivered deliveries not logged within {DELIVERY_DEADLINE_S}s")


async def test_a_failing_deployment_exits_1_and_errors_are_one_clear_line(
    cli, repos, devstack
) -> None:
    repo = web_repo(repos / f"bad-{uuid.uuid4().hex[:6]}", devstack.env["SLIPWAY_BASE_IMAGE"], "x")
    _, env = await _environment(cli)
    await cli.run(
        "services", "create", env, "--name", "broken", "--kind", "application",
        "--repo", str(repo), "--dockerfile", "missing.Dockerfile", "--port", "8080",
    )  # fmt: skip
    failed = await cli.run("deploy", env, "--watch", code=1)
    assert "ended: ERROR" in failed.stdout, failed.output
    assert "broken: BUILD_FAILED" in failed.stdout, failed.output
    assert (await cli.json("deployments", "list", env))[0]["status"] == "ERROR"  # type: ignore[index]

    missing = await cli.run("services", "show", str(uuid.uuid4()), code=1)
    assert (
        missing.stderr.strip() == "SERVICE_NOT_FOUND: " + missing.stderr.split(": ", 1)[1].strip()
    )
    usage = await cli.run("services", "create", env, "--name", "db", "--kind", "database", code=2)
    assert "--engine" in usage.stderr
    ended = await cli.run(
        "deployments", "cancel", (await cli.json("status", env))["deployment_id"], code=1
    )  # type: ignore[index]
    assert "NOT_CANCELABLE" in ended.stderr


async def test_every_kind_is_created_from_its_options(cli, devstack) -> None:
    """The options of each kind make a body the catalog accepts (nothing deployed here)."""
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    org, env = await _environment(cli)
    created = {}
    for name, *options in (
        ("api", "--kind", "container", "--image", base, "--port", "9000/tcp", "--private"),
        ("db", "--kind", "database", "--engine", "postgresql"),  # the cluster's default version
        ("nightly", "--kind", "cronjob", "--image", base, "--schedule", "0 3 * * *",
         "--timezone", "Europe/Paris", "--command", "sh -c 'echo nightly run'"),
        ("seed", "--kind", "job", "--image", base, "--trigger", "start", "--trigger", "stop"),
    ):  # fmt: skip
        created[name] = await cli.json("services", "create", env, "--name", name, *options)
    api, db, cron, job = (created[n] for n in ("api", "db", "nightly", "seed"))
    registry, _, rest = base.partition("/")
    name, _, tag = rest.partition(":")
    assert api["image"] == {"registry": registry, "name": name, "tag": tag or "latest"}  # type: ignore[index]
    assert api["ports"][0]["port"] == 9000 and api["ports"][0]["public"] is False  # type: ignore[index]
    assert db["engine"] == "postgresql" and db["version"]  # type: ignore[index]
    assert cron["command"] == ["sh", "-c", "echo nightly run"]  # type: ignore[index]
    assert (cron["schedule"], cron["timezone"]) == ("0 3 * * *", "Europe/Paris")  # type: ignore[index]
    assert job["kind"] == "lifecycle" and job["triggers"] == ["start", "stop"]  # type: ignore[index]
    changed = await cli.json(
        "services", "update", api["id"], "--set", "min_instances=2", "--set", "image.tag=other",
    )  # type: ignore[index]  # fmt: skip
    assert changed["min_instances"] == 2 and changed["image"]["tag"] == "other"  # type: ignore[index]
    assert changed["image"]["registry"] == registry  # merged, not replaced  # type: ignore[index]
    invalid = await cli.run("services", "update", api["id"], "--set", "min_instances=-1", code=1)  # type: ignore[index]
    code, *details = invalid.stderr.splitlines()  # the code, then each invalid field
    assert code == "VALIDATION_ERROR: The service is invalid." and details, invalid.stderr
    assert details[0].startswith("  min_instances: "), invalid.stderr
    listed = await cli.json("services", "list", env)
    assert sorted(s["name"] for s in listed) == ["api", "db", "nightly", "seed"]  # type: ignore[index, union-attr]

    # a refusal of the catalog is its code and message, exit 1
    clash = await cli.run(
        "services", "create", env, "--name", "db", "--kind", "database", "--engine", "postgresql",
        code=1,
    )  # fmt: skip
    assert clash.stderr.splitlines() == [
        "SERVICE_NAME_TAKEN: A service with this name exists in the environment.",
        "  field: name",
    ]
    refused = await cli.run(
        "services", "create", env, "--name", "cache", "--kind", "database", "--engine", "redis",
        code=1,
    )  # fmt: skip
    assert refused.stderr.startswith("DATABASE_ENGINE_NOT_AVAILABLE: "), refused.stderr

    await cli.run("vars", "set", "--service", api["id"], "A=1", "B=2")  # type: ignore[index]
    await cli.run("vars", "set", "--service", api["id"], "A=3")  # type: ignore[index]
    await cli.run("vars", "unset", "--service", api["id"], "B")  # type: ignore[index]
    await cli.run("vars", "set", "--env", env, "CONF=a=1", "--file", "/etc/app.conf", "--secret")
    (conf,) = await cli.json("vars", "list", "--env", env)  # type: ignore[misc]
    assert (conf["kind"], conf["mount_path"], conf["is_secret"]) == ("file", "/etc/app.conf", True)  # type: ignore[index]
    mismatch = await cli.run("vars", "set", "--env", env, "CONF=b", code=1)  # not a secret now?
    assert "exists and is a secret" in mismatch.stderr, mismatch.stderr
    mine = await cli.json("vars", "list", api["id"])  # type: ignore[index]
    assert [(v["key"], v["value"]) for v in mine] == [("A", "3")]  # type: ignore[index, union-attr]
    copy = await cli.out("envs", "clone", env, "--name", "copy", "--mode", "development")
    assert sorted(s["name"] for s in await cli.json("services", "list", copy)) == [  # type: ignore[index, union-attr]
        "api", "db", "nightly", "seed",
    ]  # fmt: skip
    assert (await cli.json("envs", "show", copy))["mode"] == "development"  # type: ignore[index]
    await cli.run("envs", "delete", copy, "--yes")
    assert (await cli.run("envs", "show", copy, code=1)).stderr.startswith("ENVIRONMENT_NOT_FOUND")
    await cli.run("services", "delete", job["id"], "--yes")  # type: ignore[index]
    gone = await cli.run("services", "show", job["id"], code=1)  # type: ignore[index]
    assert gone.stderr.startswith("SERVICE_NOT_FOUND: ")

    # an API token for CI, of the viewer role: it reads, and it is refused a change
    assert [m["role"] for m in await cli.json("members", "list", "--org", org)] == ["owner"]  # type: ignore[index, union-attr]
    (local,) = await cli.json("clusters", "list", "--org", org)  # type: ignore[misc]
    assert local["kind"] == "local"  # type: ignore[index]
    assert (await cli.json("clusters", "check", local["id"]))["ok"] is True  # type: ignore[index]
    await cli.run("members", "invite", "bob@example.com", "--role", "devops", "--org", org)
    (pending,) = await cli.json("invitations", "list", "--org", org)  # type: ignore[misc]
    assert (pending["email"], pending["role"]) == ("bob@example.com", "devops")  # type: ignore[index]
    await cli.run("invitations", "cancel", pending["id"], "--org", org)  # type: ignore[index]
    assert await cli.json("invitations", "list", "--org", org) == []
    assert "viewer" in [r["name"] for r in await cli.json("roles", "list", "--org", org)]  # type: ignore[index, union-attr]
    viewer = (await cli.run("tokens", "create", "ci", "--role", "viewer", "--org", org)).stdout
    token = viewer.strip()
    listed = await cli.run("services", "list", env, "-o", "json", token=token)
    assert len(json.loads(listed.stdout)) == 3
    refused = await cli.run("services", "delete", api["id"], "-y", code=1, token=token)  # type: ignore[index]
    assert refused.stderr.split(":")[0] in ("FORBIDDEN", "PERMISSION_DENIED"), refused.stderr
    tokens = await cli.json("tokens", "list", "--org", org)
    assert [t["name"] for t in tokens] == ["ci"] and token not in json.dumps(tokens)  # type: ignore[index, union-attr]

    hook = await cli.json("git-webhooks", "create", "--org", org, "--description", "push")
    assert hook["secret"] and hook["path"].endswith(hook["id"])  # type: ignore[index]
    assert await cli.json("git-webhooks", "deliveries", hook["id"], "--org", org) == []  # type: ignore[index]
    await cli.run("git-webhooks", "delete", hook["id"], "--org", org, "-y")  # type: ignore[index]
    assert await cli.json("git-webhooks", "list", "--org", org) == []


# Ctrl-C reaches a terminal's foreground job with SIGINT at its default. A test run started in
# the background of a script (`make test &`, no job control) has SIGINT ignored, its children
# inherit that, and Python keeps an inherited ignore: the watcher would never see the signal
# (it then watched to the deployment's end: exit 1, its lines on stdout, nothing on stderr).
# So the watcher is started as from a terminal: SIGINT back to its default, then exec.
_SIGINT_AS_IN_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


async def test_ctrl_c_stops_watching_not_the_deployment(cli, repos, devstack) -> None:
    """The real ``slipway`` process, interrupted while it watches: exit 130, no traceback, and
    the deployment it watched still ends well."""
    repo = web_repo(repos / f"int-{uuid.uuid4().hex[:6]}", devstack.env["SLIPWAY_BASE_IMAGE"], "z")
    _, env = await _environment(cli)
    await cli.run(
        "services", "create", env, "--name", "web", "--kind", "application",
        "--repo", str(repo), "--port", "8080",
    )  # fmt: skip
    binary = Path(sys.executable).with_name("slipway")
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SIGINT_AS_IN_A_TERMINAL, str(binary), "deploy", env, "--watch",
        env={
            **os.environ,
            "SLIPWAY_API_URL": cli.platform.url("gateway"),
            "SLIPWAY_CONFIG_DIR": str(cli.config),
            "SLIPWAY_TOKEN": "",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert watcher.stderr is not None
        queued = (await watcher.stderr.readline()).decode()  # the watch has begun
        assert "queued: deployment" in queued, queued
        watcher.send_signal(signal.SIGINT)
        out, raw = await asyncio.wait_for(watcher.communicate(), timeout=30)
        err = raw.decode()
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.wait()
    assert watcher.returncode == 130, (err, out.decode()[-2000:])  # stdout: what it watched
    assert "Traceback" not in err and "stopped watching" in err, err
    deployment = queued.split("deployment ")[1].split()[0]
    deadline = time.monotonic() + 300
    while (ended := await cli.json("deployments", "show", deployment))["status"] not in (  # type: ignore[index]
        "SUCCESS", "ERROR", "CANCELED",
    ):  # fmt: skip
        assert time.monotonic() < deadline, f"deployment {deployment} still {ended}"
        await asyncio.sleep(1)
    assert ended["status"] == "SUCCESS", ended  # type: ignore[index]


async def test_a_running_deployment_is_canceled_by_its_id(cli, repos, devstack) -> None:
    """A build that takes a minute: ``deployments cancel <id>`` stops it; watching it then ends
    with CANCELED and exit 1; ``envs delete --keep-config`` deletes what runs, not the env."""
    repo = web_repo(repos / f"slow-{uuid.uuid4().hex[:6]}", devstack.env["SLIPWAY_BASE_IMAGE"], "s")
    dockerfile = repo / "Dockerfile"
    slow = dockerfile.read_text().replace("COPY", f"RUN sleep 60 # {uuid.uuid4()}\nCOPY", 1)
    dockerfile.write_text(slow)
    commit_page(repo, "slow")
    _, env = await _environment(cli)
    await cli.run(
        "services", "create", env, "--name", "web", "--kind", "application",
        "--repo", str(repo), "--port", "8080",
    )  # fmt: skip
    queued = await cli.json("deploy", env)
    deployment = queued["deployment_id"]  # type: ignore[index]
    await cli.run("deployments", "cancel", deployment)
    watched = await cli.run("deployments", "watch", deployment, code=1)
    assert "ended: CANCELED" in watched.stdout, watched.output
    again = await cli.run("deployments", "cancel", deployment, code=1)
    assert again.stderr.startswith("NOT_CANCELABLE: "), again.stderr

    await cli.run("envs", "delete", env, "--keep-config", "--yes", "--watch")
    assert (await cli.json("envs", "show", env))["id"] == env  # type: ignore[index]


async def test_a_cron_job_deployed_and_run_now(cli, devstack) -> None:
    """``services run`` runs a deployed cron job now; ``services runs`` shows it ending; the
    schedule lists its next run."""
    _, env = await _environment(cli)
    cron = await cli.out(
        "services", "create", env, "--name", "tick", "--kind", "cronjob",
        "--image", devstack.env["SLIPWAY_BASE_IMAGE"], "--schedule", "0 3 * * *",
        "--command", "sh -c 'echo tick'",
    )  # fmt: skip
    await cli.run("deploy", env, "--watch")
    run = await cli.json("services", "run", cron)
    deadline = time.monotonic() + 120
    while True:
        runs = await cli.json("services", "runs", cron)
        mine = next(r for r in runs if r["run_id"] == run["run_id"])  # type: ignore[index, union-attr]
        if mine["status"] in ("SUCCEEDED", "FAILED"):
            break
        assert time.monotonic() < deadline, f"run still {mine}"
        await asyncio.sleep(0.5)
    assert (mine["status"], mine["trigger"], mine["exit_code"]) == ("SUCCEEDED", "user", 0), mine
    # the scheduler learns of the job from the catalog's events, a moment after it was created
    deadline = time.monotonic() + 30
    while not (jobs := (await cli.json("envs", "schedule", env))["jobs"]):  # type: ignore[index]
        assert time.monotonic() < deadline, "the schedule lists no job"
        await asyncio.sleep(0.5)
    assert [j["service_id"] for j in jobs] == [cron]  # type: ignore[union-attr, index]
