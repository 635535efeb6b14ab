"""Helm charts from git, the parts that run nothing: which sources and paths are accepted, where
the organization's token goes, and what a checked-out chart may contain. The fetches themselves
(real git, real helm, the devstack's API server) are in integration/test_kubernetes_helm.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from slipway_deployer.adapters.runtime import FailureReason, GitAccess, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes import git_chart
from slipway_libs import git_hardening

TOKEN = "glpat-chart-token-0123456789"


def _chart(url: str = "https://git.example.com/acme/charts.git", **fields: Any) -> dict[str, Any]:
    return {"source": "git", "url": url, **fields}


def _refused(chart: dict[str, Any], roots: tuple[Path, ...] = ()) -> FailureReason:
    with pytest.raises(RuntimeFailure) as refused:
        git_chart.checked(chart, git_chart.GitChartOptions(local_roots=roots))
    return refused.value.reason


@pytest.mark.parametrize(
    ("path", "relative"),
    [("/", "."), ("/charts/web", "charts/web"), ("charts/./web/", "charts/web"), ("", ".")],
)
def test_a_chart_path_is_read_from_the_repository_s_root(path: str, relative: str) -> None:
    assert git_chart.chart_dir(path) == relative


@pytest.mark.parametrize("path", ["/charts/../../etc", "../x", "/.git/hooks", "/a\x00b", "/a\nb"])
def test_a_chart_path_that_leaves_the_repository_is_refused(path: str) -> None:
    with pytest.raises(RuntimeFailure) as refused:
        git_chart.chart_dir(path)
    assert refused.value.reason is FailureReason.CHART_PATH_INVALID


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/x",
        "http://git.example.com/acme/charts.git",
        "git://git.example.com/acme/charts.git",
        "file://other-host/srv/charts",
        "https://user:secret@git.example.com/acme/charts.git",
        "-oProxyCommand=x",
        "https://git.example.com/acme%0a/charts.git",
        "https://git.example.com",
        "charts",
    ],
)
def test_only_https_ssh_and_local_repositories_are_fetched(url: str) -> None:
    assert _refused(_chart(url)) is FailureReason.GIT_FETCH_FAILED


@pytest.mark.parametrize(
    "fields", [{"branch": "a..b"}, {"branch": "HEAD"}, {"branch": "-x"}, {"commit": "xyz1234"}]
)
def test_a_branch_or_commit_git_would_misread_is_refused(fields: dict[str, str]) -> None:
    assert _refused(_chart(**fields)) is FailureReason.GIT_FETCH_FAILED


def test_a_local_repository_is_fetched_only_under_the_local_roots(tmp_path: Path) -> None:
    roots = (tmp_path / "repos",)
    (tmp_path / "repos" / "charts").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repos" / "charts")], check=True)
    (tmp_path / "repos" / "escape").symlink_to(tmp_path)
    inside = git_chart.checked(
        _chart(str(tmp_path / "repos" / "charts")), git_chart.GitChartOptions(local_roots=roots)
    )
    assert (inside.remote.kind, inside.remote.target) == ("local", str(tmp_path / "repos/charts"))
    assert _refused(_chart(str(tmp_path / "other")), roots) is FailureReason.TARGET_NOT_ALLOWED
    escape = str(tmp_path / "repos" / "escape" / "other")  # its real path is outside
    assert _refused(_chart(escape), roots) is FailureReason.TARGET_NOT_ALLOWED
    assert _refused(_chart(str(tmp_path / "repos" / "charts"))) is FailureReason.TARGET_NOT_ALLOWED
    (tmp_path / "repos" / "empty").mkdir()  # under the root, but git would look beside it
    empty = _chart(str(tmp_path / "repos" / "empty"))
    assert _refused(empty, roots) is FailureReason.GIT_FETCH_FAILED


def test_a_remote_s_form_decides_its_transport_and_the_token_s_scope() -> None:
    options = git_chart.GitChartOptions()
    https = git_chart.checked(_chart("https://git.example.com:8443/acme/c.git"), options).remote
    assert (https.kind, https.host, https.port) == ("https", "git.example.com", 8443)
    assert https.origin == "https://git.example.com:8443/"
    scp = git_chart.checked(_chart("git@git.example.com:acme/c.git"), options).remote
    assert (scp.kind, scp.host, scp.port) == ("ssh", "git.example.com", 22)
    checked = git_chart.checked(_chart(commit="ABCDEF1", path="/charts/web"), options)
    assert (checked.commit, checked.branch, checked.chart_dir) == ("abcdef1", "main", "charts/web")


def test_the_token_travels_as_a_header_scoped_to_the_remote_never_in_argv(tmp_path: Path) -> None:
    chart = git_chart.checked(_chart(), git_chart.GitChartOptions())
    git = git_chart._Git(
        chart.remote, tmp_path, tmp_path, GitAccess(token=TOKEN), git_chart.GitChartOptions()
    )
    argv, env = git._argv("fetch", "--", chart.remote.target), git._env()
    assert not any(TOKEN in arg for arg in argv)
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example.com/.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"].endswith(git_hardening.basic_credentials(TOKEN))
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and "protocol.file.allow=never" in argv
    assert TOKEN not in repr(GitAccess(token=TOKEN, ssh_key="-----BEGIN KEY-----"))


def _checkout(root: Path) -> Path:
    chart = root / "charts" / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (root / ".git").mkdir()
    (root / "common").mkdir()
    (root / "common" / "_helpers.tpl").write_text("{{/* shared */}}\n")
    return chart


def _located(root: Path, path: str = "/charts/web") -> Path:
    chart = git_chart.checked(_chart(path=path), git_chart.GitChartOptions())
    return git_chart._located(root, chart)


def test_a_chart_may_link_inside_its_repository(tmp_path: Path) -> None:
    chart = _checkout(tmp_path)
    (chart / "templates" / "_helpers.tpl").symlink_to("../../../common/_helpers.tpl")
    assert _located(tmp_path) == chart.resolve()


@pytest.mark.parametrize("target", ["/etc/hostname", "../../../.git", "../../../../outside"])
def test_a_chart_with_a_symlink_out_of_the_repository_is_refused(
    tmp_path: Path, target: str
) -> None:
    root = tmp_path / "checkout"
    chart = _checkout(root)
    (chart / "templates" / "leak.yaml").symlink_to(target)
    with pytest.raises(RuntimeFailure) as refused:
        _located(root)
    assert refused.value.reason is FailureReason.CHART_PATH_INVALID
    assert "/charts/web/templates/leak.yaml" in refused.value.message


def test_a_chart_directory_that_is_a_link_out_or_holds_no_chart_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    _checkout(root)
    os.symlink(tmp_path, root / "charts" / "out")
    with pytest.raises(RuntimeFailure) as out:
        _located(root, "/charts/out")
    assert out.value.reason is FailureReason.CHART_PATH_INVALID
    with pytest.raises(RuntimeFailure) as missing:
        _located(root, "/common")
    assert missing.value.reason is FailureReason.CHART_NOT_FOUND
    assert "'/common'" in missing.value.message
