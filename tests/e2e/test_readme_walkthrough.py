"""The README's first walk-through runs as written (issue 15, item 8), so it cannot drift.

The shell blocks marked ``<!-- walkthrough -->`` in README.md are taken in order and run by
bash (``set -euo pipefail``), each in a process of its own that starts from the variables the
earlier blocks left (``export -p`` after each), against a real platform: identity, catalog,
builder, deployer, logs and gateway as processes, Kafka, PostgreSQL, git, buildah and the
devstack's registry. Each block must exit 0, and what it is for is checked: the ids it set, the
deployment's ``SUCCESS``, the app's page at the URL the status lists, the app's own log line
naming the port it was given, the CLI signed in and seeing ``DEPLOYED``.

What differs from a newcomer's machine, and only that:

- the README's gateway, ``http://127.0.0.1:8080`` (what ``make up`` prints), is replaced by the
  test platform's gateway URL, and only that exact string (the blocks must contain it);
- the README's base image is replaced by the devstack's ``SLIPWAY_BASE_IMAGE`` if it differs;
- ``HOME`` is a fresh directory (``~/web`` is made there; the builder may build from it as
  ``make up`` lets it build from a home directory), git has an author in the environment, and
  ``slipway`` and ``python3`` are found on ``PATH`` (this virtualenv's first).

The ``<!-- service-example -->`` JSON bodies (one per service kind) are checked against the
catalog's own specification models, without a platform.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slipway_catalog.domain.service_specs import SERVICE_KINDS, parse_spec
from slipway_libs.testing.platform import Platform

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
WALKTHROUGH = "<!-- walkthrough -->"
SERVICE_EXAMPLE = "<!-- service-example -->"
EXPECTED_BLOCKS = 6  # account, project, repository, deploy, logs, command line
README_GATEWAY = "http://127.0.0.1:8080"
README_BASE_IMAGE = "127.0.0.1:15000/slipway/busybox:latest"
BLOCK_TIMEOUT_S = 150  # the deploy block builds and starts the app
LOG_DEADLINE_S = 60


def marked_blocks(text: str, mark: str, language: str) -> list[str]:
    """The fenced blocks right after each ``mark`` (a line of its own); fails on a mark that
    no such block follows."""
    found = re.findall(
        "^" + re.escape(mark) + r"\n```" + language + r"\n(.*?)\n```",
        text,
        flags=re.DOTALL | re.MULTILINE,
    )
    marks = re.findall("^" + re.escape(mark) + "$", text, flags=re.MULTILINE)
    assert len(found) == len(marks), f"every {mark} must be followed by a ```{language} block"
    return found


def walkthrough(readme: str) -> list[str]:
    blocks = marked_blocks(readme, WALKTHROUGH, "sh")
    assert len(blocks) == EXPECTED_BLOCKS, (
        f"README.md has {len(blocks)} {WALKTHROUGH} blocks, the test knows {EXPECTED_BLOCKS}: "
        "a block was lost, or one was added without its checks here"
    )
    return blocks


def test_the_walkthrough_is_marked_and_names_the_gateway_the_test_replaces() -> None:
    blocks = walkthrough(README.read_text())
    assert README_GATEWAY in blocks[0] and README_GATEWAY in blocks[-1]
    assert README_BASE_IMAGE in "\n".join(blocks)


def test_every_service_example_is_a_valid_spec_and_every_kind_has_one() -> None:
    examples = [json.loads(b) for b in marked_blocks(README.read_text(), SERVICE_EXAMPLE, "json")]
    for example in examples:
        assert parse_spec(example).kind == example["kind"]
    assert sorted(e["kind"] for e in examples) == sorted(SERVICE_KINDS)


# -- against the real platform ----------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
async def platform(platform_factory: Any, home: Path, devstack: Any) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "logs", "gateway"],
        extra_env={"SLIPWAY_GIT_LOCAL_ROOTS": str(home)},
    )


@dataclass
class Shell:
    """Runs blocks one after the other, each from the variables the earlier ones exported."""

    home: Path
    env: dict[str, str]
    state: Path

    async def run(self, number: int, block: str) -> str:
        script = (
            f"set -euo pipefail\nsource {self.state}\nset -a\n{block}\nexport -p > {self.state}\n"
        )
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            cwd=self.home,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), BLOCK_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            output, _ = await process.communicate()
            raise AssertionError(
                f"walk-through block {number} did not end within {BLOCK_TIMEOUT_S} s:\n"
                f"{block}\n--- its output:\n{output.decode()}"
            ) from None
        text = output.decode()
        assert process.returncode == 0, (
            f"walk-through block {number} exited {process.returncode}:\n{block}\n"
            f"--- its output:\n{text}"
        )
        return text

    async def value(self, name: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            f'source {self.state}; printf %s "${{{name}:-}}"',
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await process.communicate()
        return output.decode()


def _ids(*values: str) -> None:
    for value in values:
        uuid.UUID(value)  # raises on anything but an id


@pytest.mark.integration
@pytest.mark.e2e
async def test_the_readme_walkthrough_runs_as_written(
    platform: Platform, home: Path, devstack: Any
) -> None:
    gateway = platform.url("gateway")
    blocks = [
        block.replace(README_GATEWAY, gateway).replace(
            README_BASE_IMAGE, devstack.env["SLIPWAY_BASE_IMAGE"]
        )
        for block in walkthrough(README.read_text())
    ]
    state = home / ".walkthrough-state"
    state.write_text("")
    env = {
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": "C.UTF-8",
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "COLUMNS": "200",
    }
    shell = Shell(home, env, state)
    account, project, repository, deploy, logs, cli = blocks

    out = await shell.run(1, account)
    assert "ada@example.com" in out, out
    _ids(await shell.value("ORG"), await shell.value("CLUSTER"))
    assert await shell.value("TOKEN")

    await shell.run(2, project)
    _ids(await shell.value("PROJECT"), await shell.value("ENV"))

    await shell.run(3, repository)
    assert (home / "web" / "Dockerfile").is_file()

    out = await shell.run(4, deploy)
    assert "deployment: SUCCESS" in out, out
    urls = re.findall(r"^DEPLOYED (http://127\.0\.0\.1:(\d+))", out, flags=re.MULTILINE)
    assert urls, f"the status names no URL:\n{out}"
    port = urls[0][1]
    assert port != "8080"
    assert out.rstrip().endswith("Hello from Slipway"), out

    # the app's line reaches the logs through Kafka a moment after it printed it
    deadline = time.monotonic() + LOG_DEADLINE_S
    while f"listening on {port}" not in (out := await shell.run(5, logs)):
        assert time.monotonic() < deadline, (
            f"the app's 'listening on {port}' is not in its logs within {LOG_DEADLINE_S} s:\n{out}"
        )
        await asyncio.sleep(0.5)

    out = await shell.run(6, cli)
    assert f"signed in to {gateway}" in out, out
    assert "DEPLOYED" in out and "SUCCESS" in out, out
    assert "shop" in out, out
