"""Helm charts from a private git repository, with real git: a forge on 127.0.0.1 (``git
http-backend`` behind https, 401 without the right token; ``slipway_libs.testing.git_server``)
serves a repository holding a chart. The deployer's fetch gets it with the organization's token
(an origin-scoped header) and fails GIT_AUTH_FAILED without it or with another — a stable reason,
a message naming the host and never the token; the forge's loopback address is refused unless
the platform's egress allow-list names it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway_deployer.adapters.runtime import FailureReason, GitAccess, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes import git_chart
from slipway_libs.egress import EgressPolicy
from slipway_libs.testing.git_server import PrivateForge, one_private_repository

pytestmark = pytest.mark.integration

TOKEN = "glpat-private-chart-token-42"


@pytest.fixture
def forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateForge]:
    chart = {"charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n"}
    with one_private_repository(tmp_path, TOKEN, "charts", chart, "a private chart") as served:
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
    assert commit == forge.head("charts")
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
