"""The six service kinds: good specs round-trip, every bad field is reported at its own path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from slipway_catalog.domain.service_specs import (
    DATABASE_VERSIONS,
    DEFAULT_STAGES,
    SERVICE_KINDS,
    ApplicationSpec,
    ContainerSpec,
    CronJobSpec,
    DatabaseSpec,
    HelmSpec,
    LifecycleSpec,
    default_stage,
    merge_update,
    parse_spec,
)

GIT = {"url": "https://git.example.com/acme/api.git"}
IMAGE = {"name": "busybox"}
CHART = {
    "source": "repository",
    "repository_url": "https://charts.example.com/stable",
    "name": "redis",
    "version": "19.0.1",
}


def app(**fields: Any) -> dict[str, Any]:
    return {"name": "api", "kind": "application", "git": GIT, **fields}


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "web", "kind": "container", "image": IMAGE, **fields}


def database(**fields: Any) -> dict[str, Any]:
    return {"name": "db", "kind": "database", "engine": "postgresql", **fields}


def cronjob(**fields: Any) -> dict[str, Any]:
    return {"name": "nightly", "kind": "cronjob", "image": IMAGE, "schedule": "0 3 * * *", **fields}


def lifecycle(**fields: Any) -> dict[str, Any]:
    return {"name": "seed", "kind": "lifecycle", "image": IMAGE, **fields}


def helm(**fields: Any) -> dict[str, Any]:
    return {"name": "cache", "kind": "helm", "chart": CHART, **fields}


def error_locs(data: Any) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        parse_spec(data)
    return [error["loc"] for error in caught.value.errors()]


GOOD = {
    "application-minimal": app(),
    "application-full": app(
        description="The public API",
        git={
            "url": "git@github.com:acme/api.git",
            "branch": "release/2024.1",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "root_path": "/services/api",
            "dockerfile_path": "docker/Dockerfile.prod",
            "build_args": {"PIP_INDEX_URL": "https://pypi.example.com/simple"},
        },
        ports=[
            {"port": 8080, "protocol": "http", "public": True, "name": "web"},
            {"port": 9090, "protocol": "grpc", "name": "rpc", "default": True},
            {"port": 5432, "protocol": "tcp", "public": True},
        ],
        healthchecks={
            "liveness": {"type": "tcp", "port": 8080, "initial_delay_s": 0},
            "readiness": {"type": "http", "path": "/ready", "failure_threshold": 5},
        },
        cpu_millicores=2000,
        memory_mib=4096,
        min_instances=2,
        max_instances=10,
        command=["gunicorn"],
        args=["app:wsgi", "--bind", "0.0.0.0:8080"],
        auto_deploy=False,
    ),
    "application-local-path": app(git={"url": "/home/dev/src/api"}),
    "application-file-url": app(git={"url": "file:///srv/git/api.git"}),
    "application-ssh-url": app(git={"url": "ssh://git@git.example.com:2222/acme/api.git"}),
    "application-exec-probe": app(
        healthchecks={"liveness": {"type": "exec", "command": ["pg_isready"]}}
    ),
    "container-minimal": container(),
    "container-scaled-to-zero": container(min_instances=0),
    "container-private-registry": container(
        image={"registry": "registry.internal:5000", "name": "acme/web-app", "tag": "v1.2.3"},
        ports=[{"port": 80}],
        healthchecks={"readiness": {"type": "http"}},
    ),
    "database-minimal": database(),
    **{
        f"database-{engine}-{version}": database(engine=engine, version=version)
        for engine, versions in DATABASE_VERSIONS.items()
        for version in versions
    },
    "database-full": database(
        engine="redis", version="7", storage_gib=50, public=True, cpu_millicores=1000
    ),
    "cronjob-minimal": cronjob(),
    "cronjob-git": cronjob(image=None, git=GIT, timezone="Europe/Paris", command=["make", "job"]),
    "cronjob-full": cronjob(
        schedule="*/15 9-17 * jan-jun mon-fri",
        concurrency_policy="replace",
        max_duration_s=60,
        cpu_millicores=100,
        memory_mib=64,
    ),
    "cronjob-macro": cronjob(schedule="@daily"),
    "cronjob-leap-day": cronjob(schedule="0 0 29 2 *"),
    "lifecycle-minimal": lifecycle(),
    "lifecycle-full": lifecycle(
        image=None,
        git=GIT,
        triggers=["start", "stop", "delete"],
        command=["terraform", "apply"],
        output_variables=True,
        max_duration_s=86400,
    ),
    "helm-minimal": helm(),
    "helm-oci": helm(
        chart={
            "source": "repository",
            "repository_url": "oci://ghcr.io/acme/charts",
            "name": "api",
            "version": "v1.0.0-rc.1+build.5",
        }
    ),
    "helm-root-repository": helm(
        chart={**CHART, "repository_url": "https://helm.releases.example.com"}
    ),
    "helm-git": helm(
        chart={"source": "git", "url": "git@github.com:acme/charts.git", "path": "charts/api"},
        values_yaml="replicaCount: 2\nimage:\n  tag: v1\n",
        set={"ingress.hosts[0].host": "api.example.com"},
        set_string={"podAnnotations.version": "1"},
        release_name="api-release",
        timeout_s=900,
    ),
}


@pytest.mark.parametrize("data", GOOD.values(), ids=GOOD.keys())
def test_a_good_spec_round_trips_through_json(data: dict[str, Any]) -> None:
    spec = parse_spec(data)
    stored = json.loads(json.dumps(spec.model_dump(mode="json")))
    assert parse_spec(stored) == spec
    assert parse_spec(stored).model_dump(mode="json") == stored


MINIMAL_DUMPS = {
    "application": (
        app(),
        {
            "name": "api",
            "kind": "application",
            "description": "",
            "cpu_millicores": 500,
            "memory_mib": 512,
            "ports": [],
            "healthchecks": {"liveness": None, "readiness": None},
            "min_instances": 1,
            "max_instances": 1,
            "command": None,
            "args": None,
            "git": {
                "url": GIT["url"],
                "branch": "main",
                "commit": None,
                "root_path": "/",
                "dockerfile_path": "Dockerfile",
                "build_args": {},
            },
            "auto_deploy": True,
            "path_filters": [],
        },
    ),
    "container": (
        container(),
        {
            "name": "web",
            "kind": "container",
            "description": "",
            "cpu_millicores": 500,
            "memory_mib": 512,
            "ports": [],
            "healthchecks": {"liveness": None, "readiness": None},
            "min_instances": 1,
            "max_instances": 1,
            "command": None,
            "args": None,
            "image": {"registry": "docker.io", "name": "busybox", "tag": "latest"},
            "auto_deploy": False,
        },
    ),
    "database": (
        database(),
        {
            "name": "db",
            "kind": "database",
            "description": "",
            "cpu_millicores": 250,
            "memory_mib": 512,
            "engine": "postgresql",
            "version": "17",
            "storage_gib": 10,
            "public": False,
            "mode": "container",
        },
    ),
    "cronjob": (
        cronjob(),
        {
            "name": "nightly",
            "kind": "cronjob",
            "description": "",
            "cpu_millicores": 500,
            "memory_mib": 512,
            "image": {"registry": "docker.io", "name": "busybox", "tag": "latest"},
            "git": None,
            "command": None,
            "max_duration_s": 3600,
            "schedule": "0 3 * * *",
            "timezone": "UTC",
            "concurrency_policy": "forbid",
        },
    ),
    "lifecycle": (
        lifecycle(),
        {
            "name": "seed",
            "kind": "lifecycle",
            "description": "",
            "cpu_millicores": 500,
            "memory_mib": 512,
            "image": {"registry": "docker.io", "name": "busybox", "tag": "latest"},
            "git": None,
            "command": None,
            "max_duration_s": 3600,
            "triggers": ["start"],
            "output_variables": False,
        },
    ),
    "helm": (
        helm(),
        {
            "name": "cache",
            "kind": "helm",
            "description": "",
            "chart": CHART,
            "values_yaml": "",
            "set": {},
            "set_string": {},
            "release_name": "cache",
            "timeout_s": 600,
        },
    ),
}


def test_every_kind_has_a_minimal_example() -> None:
    assert set(MINIMAL_DUMPS) == set(SERVICE_KINDS)


@pytest.mark.parametrize(("data", "dump"), MINIMAL_DUMPS.values(), ids=MINIMAL_DUMPS.keys())
def test_the_dump_of_a_minimal_spec_shows_the_defaults(
    data: dict[str, Any], dump: dict[str, Any]
) -> None:
    assert parse_spec(data).model_dump(mode="json") == dump


def test_paths_and_commits_are_normalised() -> None:
    git = parse_spec(
        app(
            git={
                **GIT,
                "root_path": "./services//api/",
                "dockerfile_path": "./docker/Dockerfile",
                "commit": "ABCDEF1",
            }
        )
    ).model_dump()["git"]
    assert (git["root_path"], git["dockerfile_path"], git["commit"]) == (
        "/services/api",
        "docker/Dockerfile",
        "abcdef1",
    )


def test_the_first_port_is_the_default_when_none_is_marked() -> None:
    spec = parse_spec(container(ports=[{"port": 80}, {"port": 443}]))
    assert isinstance(spec, ContainerSpec)
    assert [port.default for port in spec.ports] == [True, False]
    marked = parse_spec(container(ports=[{"port": 80}, {"port": 443, "default": True}]))
    assert isinstance(marked, ContainerSpec)
    assert [port.default for port in marked.ports] == [False, True]


def test_defaults_that_follow_other_fields() -> None:
    assert parse_spec(container(min_instances=3)).model_dump()["max_instances"] == 3
    assert parse_spec(container(min_instances=0)).model_dump()["max_instances"] == 0
    assert parse_spec(database(engine="mysql")).model_dump()["version"] == "8.4"
    assert parse_spec(database(engine="redis", version=6)).model_dump()["version"] == "6"
    assert parse_spec(helm(name="my-cache")).model_dump()["release_name"] == "my-cache"
    probe = {"readiness": {"type": "http"}}
    spec = parse_spec(container(ports=[{"port": 80}], healthchecks=probe))
    assert spec.model_dump()["healthchecks"]["readiness"]["path"] == "/"


HOSTILE_GIT_URLS = {
    "ext-transport": "ext::sh -c touch% /tmp/pwned",
    "ext-no-space": "ext::sh",
    "fd-transport": "fd::17",
    "leading-dash": "-uhttps://github.com/acme/api.git",
    "upload-pack-option": "--upload-pack=touch /tmp/pwned",
    "upload-pack-later": "https://github.com/acme/api.git?x=--upload-pack=evil",
    "double-dash-inside": "https://github.com/acme/api--upload-pack.git",
    "ssh-proxy-command": "ssh://-oProxyCommand=evil/acme/api.git",
    "scp-proxy-command": "git@-oProxyCommand=evil:acme/api.git",
    "credentials": "https://user:pass@github.com/acme/api.git",
    "token-as-user": "https://ghp_abcdef@github.com/acme/api.git",
    "ssh-password": "ssh://git:secret@github.com/acme/api.git",
    "newline-in-path": "/srv/git/api\n--upload-pack=evil",
    "tab": "https://github.com/acme/api.git\t",
    "space": "https://github.com/acme/my api.git",
    "nul": "/srv/git/api\x00",
    "plain-http": "http://github.com/acme/api.git",
    "git-protocol": "git://github.com/acme/api.git",
    "relative-path": "../api",
    "dot-dot-escape": "/srv/git/../../etc",
    "file-url-host": "file://host/srv/git/api",
    "no-path": "https://github.com",
    "bad-port": "https://github.com:99999/acme/api.git",
    "empty": "",
    "unknown-scheme": "ftp://example.com/api.git",
}


@pytest.mark.parametrize("url", HOSTILE_GIT_URLS.values(), ids=HOSTILE_GIT_URLS.keys())
def test_hostile_git_urls_are_refused_wherever_a_git_url_is_taken(url: str) -> None:
    assert error_locs(app(git={"url": url})) == [("git", "url")]
    assert error_locs(cronjob(image=None, git={"url": url})) == [("git", "url")]
    chart = {"source": "git", "url": url}
    assert error_locs(helm(chart=chart)) == [("chart", "url")]


def test_credentials_in_a_git_url_point_to_git_tokens() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_spec(app(git={"url": "https://user:pass@github.com/acme/api.git"}))
    assert "git token" in caught.value.errors()[0]["msg"]
    assert caught.value.errors()[0]["type"] == "invalid_git_url"


BAD_CRON = {
    "six-fields": "0 */5 * * * *",
    "minute-out-of-range": "99 * * * *",
    "hour-out-of-range": "0 24 * * *",
    "day-zero": "0 0 0 * *",
    "weekday-eight": "0 0 * * 8",
    "garbage": "every day at noon",
    "four-fields": "* * * *",
    "empty": "",
    "backwards-range": "5-1 * * * *",
    "zero-step": "*/0 * * * *",
    "bad-name": "0 0 * foo *",
    "empty-list-item": "1,,2 * * * *",
    "quartz-question-mark": "0 0 ? * *",
    "quartz-last": "0 0 L * *",
    "never-runs": "0 0 30 2 *",
    "reboot-macro": "@reboot",
    "timezone-prefix": "CRON_TZ=UTC 0 * * * *",
}


@pytest.mark.parametrize("schedule", BAD_CRON.values(), ids=BAD_CRON.keys())
def test_bad_cron_schedules_are_refused(schedule: str) -> None:
    assert error_locs(cronjob(schedule=schedule)) == [("schedule",)]


@pytest.mark.parametrize(
    "schedule",
    ["* * * * *", "0,30 8-18/2 1-15 */3 0-7", "0 0 * * SUN", "0 12 1 JAN *", "5/10 * * * *"],
)
def test_good_cron_schedules_are_kept(schedule: str) -> None:
    spec = parse_spec(cronjob(schedule=schedule))
    assert isinstance(spec, CronJobSpec)
    assert spec.schedule == schedule


@pytest.mark.parametrize("zone", ["Mars/Base", "localtime", "utc", "../etc/passwd", ""])
def test_unknown_time_zones_are_refused(zone: str) -> None:
    assert error_locs(cronjob(timezone=zone)) == [("timezone",)]


BAD = [
    # common fields
    ("missing kind", {"name": "x"}, ("kind",)),
    ("unknown kind", {"name": "x", "kind": "job"}, ("kind",)),
    ("name uppercase", app(name="API"), ("name",)),
    ("name starts with digit", app(name="1api"), ("name",)),
    ("name ends with dash", app(name="api-"), ("name",)),
    ("name too long", app(name="a" * 64), ("name",)),
    ("name empty", app(name=""), ("name",)),
    ("description too long", app(description="x" * 501), ("description",)),
    ("unknown field", app(replicas=3), ("replicas",)),
    ("unknown nested field", app(git={**GIT, "token": "x"}), ("git", "token")),
    # application source
    ("missing git", {"name": "api", "kind": "application"}, ("git",)),
    ("short commit", app(git={**GIT, "commit": "abc12"}), ("git", "commit")),
    ("non-hex commit", app(git={**GIT, "commit": "xyz1234"}), ("git", "commit")),
    ("branch with space", app(git={**GIT, "branch": "my branch"}), ("git", "branch")),
    ("branch with dot-dot", app(git={**GIT, "branch": "a..b"}), ("git", "branch")),
    ("branch like an option", app(git={**GIT, "branch": "-x"}), ("git", "branch")),
    ("root path escapes", app(git={**GIT, "root_path": "../secrets"}), ("git", "root_path")),
    (
        "dockerfile escapes",
        app(git={**GIT, "dockerfile_path": "a/../../x"}),
        ("git", "dockerfile_path"),
    ),
    (
        "dockerfile absolute",
        app(git={**GIT, "dockerfile_path": "/Dockerfile"}),
        ("git", "dockerfile_path"),
    ),
    (
        "dockerfile a directory",
        app(git={**GIT, "dockerfile_path": "docker/"}),
        ("git", "dockerfile_path"),
    ),
    (
        "build arg name",
        app(git={**GIT, "build_args": {"1X": "y"}}),
        ("git", "build_args", "1X", "[key]"),
    ),
    ("build arg value type", app(git={**GIT, "build_args": {"X": 1}}), ("git", "build_args", "X")),
    # container image
    ("image name uppercase", container(image={"name": "Nginx"}), ("image", "name")),
    ("image name with tag", container(image={"name": "nginx:1.25"}), ("image", "name")),
    ("image name with host", container(image={"name": "ghcr.io/acme/web"}), ("image", "name")),
    ("image tag invalid", container(image={**IMAGE, "tag": "-latest"}), ("image", "tag")),
    ("image tag too long", container(image={**IMAGE, "tag": "a" * 129}), ("image", "tag")),
    (
        "registry with path",
        container(image={**IMAGE, "registry": "ghcr.io/acme"}),
        ("image", "registry"),
    ),
    (
        "registry bad port",
        container(image={**IMAGE, "registry": "r.local:70000"}),
        ("image", "registry"),
    ),
    # ports and probes
    ("port zero", container(ports=[{"port": 0}]), ("ports", 0, "port")),
    ("port too high", container(ports=[{"port": 80}, {"port": 65536}]), ("ports", 1, "port")),
    (
        "unknown protocol",
        container(ports=[{"port": 53, "protocol": "udp"}]),
        ("ports", 0, "protocol"),
    ),
    (
        "duplicate ports",
        container(ports=[{"port": 80}, {"port": 443}, {"port": 80}]),
        ("ports", 2, "port"),
    ),
    (
        "two default ports",
        container(ports=[{"port": 80, "default": True}, {"port": 81, "default": True}]),
        ("ports", 1, "default"),
    ),
    (
        "port name invalid",
        container(ports=[{"port": 80, "name": "Web_Port"}]),
        ("ports", 0, "name"),
    ),
    ("port name too long", container(ports=[{"port": 80, "name": "a" * 16}]), ("ports", 0, "name")),
    (
        "duplicate port names",
        container(ports=[{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]),
        ("ports", 1, "name"),
    ),
    (
        "probe on undeclared port",
        container(ports=[{"port": 80}], healthchecks={"liveness": {"type": "tcp", "port": 81}}),
        ("healthchecks", "liveness", "port"),
    ),
    (
        "probe without any port",
        container(healthchecks={"readiness": {"type": "http"}}),
        ("healthchecks", "readiness", "port"),
    ),
    (
        "probe type unknown",
        container(healthchecks={"liveness": {"type": "grpc"}}),
        ("healthchecks", "liveness", "type"),
    ),
    (
        "http probe relative path",
        container(
            ports=[{"port": 80}], healthchecks={"liveness": {"type": "http", "path": "health"}}
        ),
        ("healthchecks", "liveness", "path"),
    ),
    (
        "tcp probe with path",
        container(ports=[{"port": 80}], healthchecks={"liveness": {"type": "tcp", "path": "/"}}),
        ("healthchecks", "liveness", "path"),
    ),
    (
        "exec probe without command",
        container(healthchecks={"liveness": {"type": "exec"}}),
        ("healthchecks", "liveness", "command"),
    ),
    (
        "exec probe empty command",
        container(healthchecks={"liveness": {"type": "exec", "command": []}}),
        ("healthchecks", "liveness", "command"),
    ),
    (
        "exec probe with port",
        container(healthchecks={"liveness": {"type": "exec", "command": ["true"], "port": 80}}),
        ("healthchecks", "liveness", "port"),
    ),
    (
        "probe delay too long",
        container(
            healthchecks={
                "liveness": {"type": "exec", "command": ["true"], "initial_delay_s": 3601}
            }
        ),
        ("healthchecks", "liveness", "initial_delay_s"),
    ),
    (
        "probe period zero",
        container(healthchecks={"readiness": {"type": "exec", "command": ["true"], "period_s": 0}}),
        ("healthchecks", "readiness", "period_s"),
    ),
    (
        "liveness success threshold",
        container(
            healthchecks={"liveness": {"type": "exec", "command": ["true"], "success_threshold": 2}}
        ),
        ("healthchecks", "liveness", "success_threshold"),
    ),
    # resources and scaling
    ("cpu too low", container(cpu_millicores=5), ("cpu_millicores",)),
    ("cpu too high", container(cpu_millicores=64001), ("cpu_millicores",)),
    ("memory too low", container(memory_mib=8), ("memory_mib",)),
    ("min above max", container(min_instances=3, max_instances=2), ("max_instances",)),
    ("max above 100", container(max_instances=101), ("max_instances",)),
    ("negative min", container(min_instances=-1), ("min_instances",)),
    ("empty command", container(command=[]), ("command",)),
    ("command with NUL", container(command=["sh\x00"]), ("command", 0)),
    ("empty args", container(args=[]), ("args",)),
    # databases
    ("unknown engine", database(engine="oracle"), ("engine",)),
    ("unknown version", database(version="9"), ("version",)),
    ("version of another engine", database(engine="redis", version="16"), ("version",)),
    ("storage zero", database(storage_gib=0), ("storage_gib",)),
    ("storage too big", database(storage_gib=10001), ("storage_gib",)),
    ("managed mode", database(mode="managed"), ("mode",)),
    ("database ports", database(ports=[{"port": 5432}]), ("ports",)),
    # jobs
    ("cronjob both sources", cronjob(git=GIT), ("git",)),
    ("cronjob no source", cronjob(image=None), ("image",)),
    ("cronjob missing schedule", {"name": "j", "kind": "cronjob", "image": IMAGE}, ("schedule",)),
    ("cronjob concurrency", cronjob(concurrency_policy="queue"), ("concurrency_policy",)),
    ("cronjob duration zero", cronjob(max_duration_s=0), ("max_duration_s",)),
    ("cronjob duration above a day", cronjob(max_duration_s=86401), ("max_duration_s",)),
    ("cronjob bad image", cronjob(image={"name": "Bad Name"}), ("image", "name")),
    ("cronjob ports", cronjob(ports=[{"port": 80}]), ("ports",)),
    ("lifecycle no triggers", lifecycle(triggers=[]), ("triggers",)),
    ("lifecycle unknown trigger", lifecycle(triggers=["restart"]), ("triggers", 0)),
    (
        "lifecycle duplicate trigger",
        lifecycle(triggers=["start", "stop", "start"]),
        ("triggers", 2),
    ),
    ("lifecycle both sources", lifecycle(git=GIT), ("git",)),
    ("lifecycle no source", lifecycle(image=None), ("image",)),
    ("lifecycle schedule", lifecycle(schedule="0 * * * *"), ("schedule",)),
    # helm
    (
        "helm chart missing version",
        helm(chart={k: v for k, v in CHART.items() if k != "version"}),
        ("chart", "version"),
    ),
    ("helm chart version range", helm(chart={**CHART, "version": "^19.0"}), ("chart", "version")),
    ("helm chart unknown source", helm(chart={**CHART, "source": "s3"}), ("chart", "source")),
    ("helm chart missing source", helm(chart={"name": "x"}), ("chart", "source")),
    ("helm chart not an object", helm(chart="redis"), ("chart",)),
    (
        "helm repository over http",
        helm(chart={**CHART, "repository_url": "http://charts.example.com"}),
        ("chart", "repository_url"),
    ),
    (
        "helm repository credentials",
        helm(chart={**CHART, "repository_url": "https://u:p@charts.example.com"}),
        ("chart", "repository_url"),
    ),
    ("helm chart name", helm(chart={**CHART, "name": "../redis"}), ("chart", "name")),
    (
        "helm git extra field",
        helm(chart={"source": "git", "url": "/srv/charts", "version": "1.0.0"}),
        ("chart", "version"),
    ),
    (
        "helm git path escapes",
        helm(chart={"source": "git", "url": "/srv/charts", "path": "../x"}),
        ("chart", "path"),
    ),
    (
        "helm git path into .git",
        helm(chart={"source": "git", "url": "/srv/charts", "path": "./.git/hooks"}),
        ("chart", "path"),
    ),
    ("release name too long", helm(release_name="r" * 54), ("release_name",)),
    ("service name too long for a release", helm(name="n" * 54), ("release_name",)),
    ("release name invalid", helm(release_name="My_Release"), ("release_name",)),
    ("values not yaml", helm(values_yaml="a: [1"), ("values_yaml",)),
    ("values not a mapping", helm(values_yaml="- 1\n- 2\n"), ("values_yaml",)),
    ("values nested too deeply", helm(values_yaml="[" * 5000), ("values_yaml",)),
    ("values too large", helm(values_yaml="a: " + "x" * 256 * 1024), ("values_yaml",)),
    ("set key with space", helm(set={"a b": "x"}), ("set", "a b", "[key]")),
    ("set key with comma", helm(set_string={"a,b": "x"}), ("set_string", "a,b", "[key]")),
    ("set value not a string", helm(set={"a": 1}), ("set", "a")),
    ("helm timeout zero", helm(timeout_s=0), ("timeout_s",)),
]


@pytest.mark.parametrize(("data", "loc"), [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_a_bad_field_is_reported_at_its_path(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert error_locs(data) == [loc]


@pytest.mark.parametrize("data", [[], "spec", None, 42])
def test_a_spec_is_an_object(data: Any) -> None:
    assert error_locs(data) == [()]


# --- updates --------------------------------------------------------------------------------


def test_an_update_merges_objects_and_replaces_lists() -> None:
    current = parse_spec(
        app(
            git={**GIT, "build_args": {"A": "1", "B": "2"}},
            ports=[{"port": 80}, {"port": 81}],
        )
    )
    patch = {
        "git": {"branch": "develop", "build_args": {"B": None, "C": "3"}},
        "ports": [{"port": 8080}],
        "description": "new",
    }
    updated = merge_update(current, patch).model_dump(mode="json")
    assert updated["git"]["url"] == GIT["url"]
    assert updated["git"]["branch"] == "develop"
    assert updated["git"]["build_args"] == {"A": "1", "C": "3"}
    assert updated["ports"] == [
        {"port": 8080, "protocol": "http", "public": False, "name": None, "default": True}
    ]
    assert updated["description"] == "new"


def test_null_resets_a_field_to_its_default() -> None:
    current = parse_spec(app(description="x", git={**GIT, "commit": "abcdef1"}, cpu_millicores=900))
    patch = {"description": None, "git": {"commit": None}, "cpu_millicores": None}
    assert isinstance(current, ApplicationSpec)
    updated = merge_update(current, patch)
    assert (updated.description, updated.git.commit, updated.cpu_millicores) == ("", None, 500)


def test_an_empty_update_changes_nothing() -> None:
    for data in GOOD.values():
        spec = parse_spec(data)
        assert merge_update(spec, {}) == spec


def test_a_fixed_size_service_stays_fixed_size() -> None:
    fixed = parse_spec(container(min_instances=2))
    assert isinstance(fixed, ContainerSpec)
    assert merge_update(fixed, {"min_instances": 4}).max_instances == 4
    scaling = parse_spec(container(min_instances=1, max_instances=5))
    assert isinstance(scaling, ContainerSpec)
    assert merge_update(scaling, {"min_instances": 3}).max_instances == 5
    with pytest.raises(ValidationError) as caught:
        merge_update(scaling, {"min_instances": 6})
    assert [error["loc"] for error in caught.value.errors()] == [("max_instances",)]


def test_setting_a_job_source_replaces_the_other() -> None:
    job = parse_spec(cronjob())
    assert isinstance(job, CronJobSpec)
    switched = merge_update(job, {"git": GIT})
    assert switched.image is None and switched.git is not None
    back = merge_update(switched, {"image": {"name": "alpine"}})
    assert back.git is None and back.image is not None and back.image.name == "alpine"
    retagged = merge_update(back, {"image": {"tag": "3.20"}})
    assert retagged.image is not None and (retagged.image.name, retagged.image.tag) == (
        "alpine",
        "3.20",
    )


def test_a_chart_of_another_source_replaces_the_chart() -> None:
    spec = parse_spec(helm())
    assert isinstance(spec, HelmSpec)
    switched = merge_update(spec, {"chart": {"source": "git", "url": "/srv/charts"}})
    assert switched.chart.model_dump() == {
        "source": "git",
        "url": "/srv/charts",
        "branch": "main",
        "commit": None,
        "path": "/",
    }
    bumped = merge_update(spec, {"chart": {"version": "19.1.0"}})
    assert bumped.chart.model_dump() == {**CHART, "version": "19.1.0"}


def test_a_renamed_helm_service_keeps_its_release() -> None:
    spec = parse_spec(helm())
    assert isinstance(spec, HelmSpec)
    renamed = merge_update(spec, {"name": "cache-v2"})
    assert (renamed.name, renamed.release_name) == ("cache-v2", "cache")


def test_a_lifecycle_job_update_is_validated_again() -> None:
    spec = parse_spec(lifecycle())
    assert isinstance(spec, LifecycleSpec)
    assert merge_update(spec, {"triggers": ["stop"]}).triggers == ["stop"]
    with pytest.raises(ValidationError) as caught:
        merge_update(spec, {"triggers": [], "git": {"url": "ext::sh"}})
    locs = sorted(error["loc"] for error in caught.value.errors())
    assert locs == [("git", "url"), ("triggers",)]


BAD_UPDATES = [
    ("kind changes", container(), {"kind": "application"}, ("kind",)),
    ("kind removed", container(), {"kind": None}, ("kind",)),
    ("engine changes", database(), {"engine": "mysql"}, ("engine",)),
    ("version goes down", database(version="16"), {"version": "15"}, ("version",)),
    ("version unknown", database(version="16"), {"version": "99"}, ("version",)),
    ("storage shrinks", database(storage_gib=20), {"storage_gib": 10}, ("storage_gib",)),
    ("bad name", container(), {"name": "Bad"}, ("name",)),
    ("unknown field", container(), {"replicas": 2}, ("replicas",)),
    (
        "duplicate port",
        container(ports=[{"port": 80}]),
        {"ports": [{"port": 1}, {"port": 1}]},
        ("ports", 1, "port"),
    ),
    ("both job sources", cronjob(), {"image": {"name": "x"}, "git": GIT}, ("git",)),
    ("job source removed", cronjob(), {"image": None}, ("image",)),
    ("release name too long", helm(), {"release_name": "r" * 54}, ("release_name",)),
]


@pytest.mark.parametrize(
    ("data", "patch", "loc"), [case[1:] for case in BAD_UPDATES], ids=[c[0] for c in BAD_UPDATES]
)
def test_a_bad_update_is_reported_at_its_path(
    data: dict[str, Any], patch: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        merge_update(parse_spec(data), patch)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


def test_database_upgrades_and_growth_are_allowed() -> None:
    spec = parse_spec(database(version="15"))
    assert isinstance(spec, DatabaseSpec)
    grown = merge_update(spec, {"version": "17", "storage_gib": 20})
    assert (grown.version, grown.storage_gib) == ("17", 20)


def test_an_update_is_an_object() -> None:
    with pytest.raises(ValidationError) as caught:
        merge_update(parse_spec(container()), ["not", "an", "object"])  # type: ignore[arg-type]
    assert caught.value.errors()[0]["loc"] == ()


# --- stages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "stage"),
    [
        ("database", "databases"),
        ("cronjob", "jobs"),
        ("lifecycle", "jobs"),
        ("container", "containers"),
        ("application", "applications"),
        ("helm", "helm"),
    ],
)
def test_each_kind_has_a_default_stage(kind: str, stage: str) -> None:
    assert default_stage(kind) == stage
    assert stage in DEFAULT_STAGES


def test_the_default_stages_are_in_the_documented_order() -> None:
    assert DEFAULT_STAGES == ("databases", "jobs", "containers", "applications", "helm")
    assert {default_stage(kind) for kind in SERVICE_KINDS} == set(DEFAULT_STAGES)


def test_an_unknown_kind_has_no_stage() -> None:
    with pytest.raises(ValueError, match="unknown service kind"):
        default_stage("terraform")
