"""Environments as code end to end (issue 15, item 7), through the ``slipway`` CLI only, on the
real platform (identity, catalog, builder, deployer, logs and gateway as processes; Kafka,
PostgreSQL, git, buildah, the registry): a project created from ``slipway.yaml`` (an
environment, an application from a git repository, variables at three scopes and a secret by
reference), ``plan`` then ``apply`` twice (the second changes nothing), ``deploy --watch`` to
success driven by the event stream, ``status``, a change of the file planned and applied as
updates, deployed, ``rollback``, ``logs``, ``events``, and ``export`` round-tripping to an
equivalent file (it plans no change). Two tests: what needs no build, and what deploys."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from slipway_cli.blueprint.plan import differs
from slipway_libs.testing.platform import Platform
from tests.e2e.deploying import web_repo
from tests.e2e.test_cli_everyday import Cli

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
async def platform(platform_factory, repos, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "logs", "gateway"],
        extra_env={"SLIPWAY_GIT_LOCAL_ROOTS": str(repos)},
    )


@pytest.fixture
async def cli(platform, tmp_path, monkeypatch) -> Cli:
    slipway = Cli(platform, tmp_path / "config")
    email = f"code-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    await slipway.run("signup", "--email", email, "--name", "Ada", "--password", password)
    await slipway.run("login", "--email", email, "--password", password)
    return slipway


def _file(repo: Path, greeting: str) -> dict[str, object]:
    return {
        "version": 1,
        "project": f"shop-{uuid.uuid4().hex[:6]}",
        "variables": {"COMPANY": "Acme"},
        "environments": {
            "staging": {
                "mode": "staging",
                "variables": {"GREETING": greeting},
                "secrets": {"API_KEY": {"from_env": "SHOP_API_KEY"}},
                "services": {
                    "web": {
                        "kind": "application",
                        "git": {"url": str(repo), "branch": "main"},
                        "ports": [{"port": 8080, "public": True}],
                        "variables": {"ROLE": "frontend"},
                    }
                },
            }
        },
    }


async def _page(url: str, path: str = "") -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{url}{path}")).text


async def _applied(cli: Cli, repo: Path, path: Path) -> tuple[str, dict[str, object]]:
    org = await cli.out("orgs", "create", f"Code {uuid.uuid4().hex[:6]}")
    wanted = _file(repo, "hello")
    path.write_text(yaml.safe_dump(wanted))
    await cli.run("apply", "-f", str(path), "--org", org, "--yes")
    return org, wanted


async def test_a_project_from_its_file_applied_twice_changed_and_exported(
    cli: Cli, repos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repos / f"plan-{uuid.uuid4().hex[:6]}"  # nothing is built here
    org = await cli.out("orgs", "create", f"Code {uuid.uuid4().hex[:6]}")
    wanted = _file(repo, "hello")
    path = tmp_path / "slipway.yaml"
    path.write_text(yaml.safe_dump(wanted))

    planned = await cli.out("plan", "-f", str(path), "--org", org)
    assert f"+ project {wanted['project']}" in planned
    assert "+ environment staging" in planned and "+ service staging/web (application)" in planned
    assert "+ secret API_KEY (environment staging) from $SHOP_API_KEY" in planned
    assert "7 to create, 0 to change, 0 to delete" in planned, planned

    # the secret's value is read from the environment: without it, nothing is applied
    monkeypatch.delenv("SHOP_API_KEY", raising=False)
    refused = await cli.run("apply", "-f", str(path), "--org", org, "--yes", code=2)
    assert "$SHOP_API_KEY" in refused.stderr
    assert await cli.json("projects", "list", "--org", org) == []
    monkeypatch.setenv("SHOP_API_KEY", "s3cr3t")
    applied = await cli.run("apply", "-f", str(path), "--org", org, "--yes")
    assert "applied: 7 to create" in applied.stdout, applied.output
    assert "s3cr3t" not in applied.output
    again = await cli.run("apply", "-f", str(path), "--org", org, "--yes")
    assert "no changes; 0 to create, 0 to change, 0 to delete; 6 unchanged" in again.stdout, (
        again.output
    )

    # a change of the file is one update, applied with the version it was planned from
    changed = _file(repo, "bonjour") | {"project": wanted["project"]}
    changed["environments"]["staging"]["services"]["web"]["min_instances"] = 2  # type: ignore[index]
    path.write_text(yaml.safe_dump(changed))
    planned = await cli.out("plan", "-f", str(path), "--org", org)
    assert "~ variable GREETING (environment staging): value changes" in planned, planned
    assert "~ service staging/web: min_instances" in planned, planned
    assert "0 to create, 2 to change, 0 to delete" in planned
    await cli.run("apply", "-f", str(path), "--org", org, "--yes")
    assert (await cli.out("plan", "-f", str(path), "--org", org)).startswith("no changes")

    # export: the project's file again, equivalent to the one applied
    out = tmp_path / "exported.yaml"
    await cli.run("export", "--org", org, "--project", wanted["project"], "-f", str(out))
    exported = yaml.safe_load(out.read_text())
    # a secret is exported by its own name (the variable its value will be read from)
    assert exported["environments"]["staging"]["secrets"] == {"API_KEY": {"from_env": "API_KEY"}}
    changed["environments"]["staging"]["secrets"] = {"API_KEY": {"from_env": "API_KEY"}}  # type: ignore[index]
    assert not differs(changed, exported), yaml.safe_dump(exported)
    assert "s3cr3t" not in out.read_text()
    replanned = await cli.out("plan", "-f", str(out), "--org", org)
    assert replanned.startswith("no changes"), replanned


async def test_a_project_from_its_file_deployed_watched_rolled_back(
    cli: Cli, repos: Path, devstack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = web_repo(
        repos / f"code-{uuid.uuid4().hex[:6]}", devstack.env["SLIPWAY_BASE_IMAGE"], "one"
    )
    monkeypatch.setenv("SHOP_API_KEY", "s3cr3t")
    path = tmp_path / "slipway.yaml"
    org, wanted = await _applied(cli, repo, path)
    project = next(
        p["id"]
        for p in await cli.json("projects", "list", "--org", org)  # type: ignore[union-attr]
        if p["name"] == wanted["project"]
    )
    env = (await cli.json("envs", "list", "--project", project))[0]["id"]  # type: ignore[index]
    first = await cli.run("deploy", env, "--watch")
    assert "ended: SUCCESS" in first.stdout, first.output
    assert "stage applications: DONE" in first.stdout, first.output
    url = next(w for w in first.stdout.split() if w.startswith("http://127.0.0.1:"))
    seen = await _page(url, "/env.txt")
    for line in ("COMPANY=Acme", "GREETING=hello", "ROLE=frontend", "API_KEY=s3cr3t"):
        assert line in seen, seen
    assert (await cli.json("status", env))["state"] == "DEPLOYED"  # type: ignore[index]
    first_id = (await cli.json("deployments", "list", env))[0]["id"]  # type: ignore[index]

    # the file changes a variable; deployed again (the same commit: nothing built), then the
    # first deployment rolled back to: its snapshot's variables again
    path.write_text(yaml.safe_dump(_file(repo, "bonjour") | {"project": wanted["project"]}))
    await cli.run("apply", "-f", str(path), "--org", org, "--yes")
    second = await cli.run("deploy", env, "--watch")
    assert "ended: SUCCESS" in second.stdout, second.output
    assert "GREETING=bonjour" in await _page(url, "/env.txt")
    back = await cli.run("deployments", "rollback", env, "--to", first_id, "--watch")
    assert "ended: SUCCESS" in back.stdout, back.output
    assert "GREETING=hello" in await _page(url, "/env.txt")
    web = (await cli.json("services", "list", env))[0]["id"]  # type: ignore[index]
    assert "STEP" in await cli.out("deployments", "logs", first_id)
    await cli.run("logs", web)

    # the event stream, as a script reads it: the rollback's events, in order, to its end
    events = [
        json.loads(line)
        for line in (
            await cli.out("events", "--org", org, "--after", _zero(), "--no-follow", "-o", "json")
        ).splitlines()
    ]
    rollback = [e["type"] for e in events if e["deployment_id"] == back_id(back.stdout)]
    assert rollback[0] == "deployer.DeploymentQueued"
    assert rollback[-1] == "deployer.DeploymentSucceeded"
    assert {e["organization_id"] for e in events} == {org}


def _zero() -> str:
    """The position before every record (6 partitions): the whole topic, read back."""
    return "-".join(["0"] * 6)


def back_id(stdout: str) -> str:
    """The rollback's deployment id, as the watch's last line says it."""
    line = next(li for li in stdout.splitlines() if li.startswith("deployment ") and "ended" in li)
    return line.split()[1]
