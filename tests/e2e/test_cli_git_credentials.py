"""``slipway git-credentials`` against a real gateway and catalog (issue 13, items 4 and 7): a
token read from standard input and an SSH key read from a file are added, listed and shown
without their secrets, a bad host is refused with its code, and a deleted credential is gone."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from slipway_cli.main import app
from slipway_libs.testing.platform import Platform

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TOKEN = "ghp_cli-private-token-31415"
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
KNOWN = (
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
)


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "catalog", "gateway"])


async def slipway(
    platform: Platform, config: Path, *args: str, stdin: str = "", code: int = 0
) -> Result:
    env = {
        "SLIPWAY_API_URL": platform.url("gateway"),
        "SLIPWAY_CONFIG_DIR": str(config),
        "SLIPWAY_TOKEN": "",
    }
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), input=stdin, env=env)
    assert result.exit_code == code, (args, result.exit_code, result.output)
    return result


async def test_git_credentials_from_the_command_line(platform: Platform, tmp_path: Path) -> None:
    config = tmp_path / "config"
    email, password = f"cli-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple"
    await slipway(
        platform, config, "signup", "--email", email, "--name", "Ada", "--password", password
    )
    await slipway(platform, config, "login", "--email", email, "--password", password)
    org = (await slipway(platform, config, "orgs", "create", "Acme")).stdout.strip()

    added = await slipway(
        platform, config, "git-credentials", "add-token", "forge", "--host", "git.example.com",
        "--token-file", "-", "--org", org, "-o", "json", stdin=TOKEN + "\n",
    )  # fmt: skip
    token = json.loads(added.stdout)
    assert (token["name"], token["kind"], token["host"]) == ("forge", "token", "git.example.com")
    key_file, known_file = tmp_path / "id_ed25519", tmp_path / "known_hosts"
    key_file.write_text(KEY)
    known_file.write_text(KNOWN)
    key = json.loads(
        (
            await slipway(
                platform,
                config,
                "git-credentials",
                "add-ssh-key",
                "deploy key",
                "--key-file",
                str(key_file),
                "--known-hosts",
                str(known_file),
                "--org",
                org,
                "-o",
                "json",
            )
        ).stdout
    )
    assert (key["kind"], key["host"]) == ("ssh_key", None)

    listed = await slipway(platform, config, "git-credentials", "list", "--org", org, "-o", "json")
    assert sorted(c["name"] for c in json.loads(listed.stdout)) == ["deploy key", "forge"]
    table = await slipway(platform, config, "git-credentials", "list", "--org", org)
    shown = await slipway(platform, config, "git-credentials", "show", token["id"], "--org", org)
    for output in (added.output, listed.output, table.output, shown.output):
        assert TOKEN not in output and "b3BlbnNzaC1rZXkt" not in output
    assert "git.example.com" in table.stdout and "forge" in shown.stdout

    bad = await slipway(
        platform, config, "git-credentials", "add-token", "bad", "--host", "not a host/",
        "--token-file", "-", "--org", org, stdin=TOKEN, code=1,
    )  # fmt: skip
    assert "INVALID_HOST" in bad.output and TOKEN not in bad.output

    await slipway(platform, config, "git-credentials", "delete", token["id"], "--org", org, "--yes")
    gone = await slipway(
        platform, config, "git-credentials", "show", token["id"], "--org", org, code=1
    )
    assert "GIT_CREDENTIAL_NOT_FOUND" in gone.output
