"""Helm charts from a private git repository, with real git: a forge on 127.0.0.1 (``git
http-backend`` behind https, 401 without the right token; ``slipway_libs.testing.git_server``)
serves a repository holding a chart. The deployer's fetch gets it with the organization's token
(an origin-scoped header) and fails GIT_AUTH_FAILED without it or with another — a stable reason,
a message naming the host and never the token; the forge's loopback address is refused unless
the platform's egress allow-list names it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway_deployer.adapters.runtime import FailureReason, GitAccess, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes import git_chart
from slipway_libs.egress import EgressPolicy
from slipway_libs.testing.git_server import PrivateForge, private_forge, publish_bare

pytestmark = pytest.mark.integration

TOKEN = "glpat-private-chart-token-42"


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    done = subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()


@pytest.fixture
def forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateForge]:
    work, root = tmp_path / "work-repo", tmp_path / "forge"
    (work / "charts" / "web").mkdir(parents=True)
    root.mkdir()
    git(work, "init", "--quiet", "--initial-branch=main")
    (work / "charts" / "web" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: web\nversion: 1.0.0\n"
    )
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "a private chart")
    publish_bare(work, root, "charts")
    with private_forge(root, TOKEN, tmp_path) as served:
        monkeypatch.setenv("GIT_SSL_CAINFO", str(served.ca_file))  # git trusts the forge's CA
        yield served


def _options(forge: PrivateForge) -> git_chart.GitChartOptions:
    return git_chart.GitChartOptions(egress=EgressPolicy.from_setting(forge.address))


async def _fetch(
    forge: PrivateForge, into: Path, access: GitAccess, options: git_chart.GitChartOptions
) -> tuple[str, Path]:
    chart = {"source": "git", "url": forge.url("charts"), "path": "/charts/web"}
    return await git_chart.fetch(git_chart.checked(chart, options), access, into, options)


async def test_the_organization_s_token_fetches_the_private_chart(
    tmp_path: Path, forge: PrivateForge
) -> None:
    commit, directory = await _fetch(
        forge, tmp_path / "out", GitAccess(token=TOKEN), _options(forge)
    )

    assert (directory / "Chart.yaml").read_text().startswith("apiVersion: v2\nname: web")
    assert commit == git(tmp_path / "work-repo", "rev-parse", "HEAD")
    assert forge.served and not forge.refused


@pytest.mark.parametrize("token", [None, "glpat-someone-elses-token"])
async def test_without_the_right_token_it_fails_with_a_clear_reason(
    tmp_path: Path, forge: PrivateForge, token: str | None
) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        await _fetch(forge, tmp_path / "out", GitAccess(token=token), _options(forge))

    assert caught.value.reason is FailureReason.GIT_AUTH_FAILED
    assert forge.address in caught.value.message and "git credential" in caught.value.message
    assert TOKEN not in caught.value.message
    assert token is None or token not in caught.value.message
    assert forge.refused and not forge.served


async def test_a_loopback_remote_is_refused_unless_allowed(
    tmp_path: Path, forge: PrivateForge
) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        await _fetch(forge, tmp_path / "out", GitAccess(token=TOKEN), git_chart.GitChartOptions())

    assert caught.value.reason is FailureReason.TARGET_NOT_ALLOWED
    assert not forge.served and not forge.refused  # git never ran
