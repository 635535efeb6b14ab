"""Validated specifications of the six service kinds (what a user asks Slipway to run).

A spec is both the API's request body (create = a whole spec, update = a JSON merge patch applied
to the stored spec and validated again) and the JSON the catalog stores. Invariants:

* Every model forbids unknown fields and is frozen. Defaults are written out when dumped and
  normalisation is idempotent, so ``parse_spec(spec.model_dump(mode="json")) == spec``.
* Every error's ``loc`` is the path of the failing field (``("ports", 1, "port")``) and its
  ``type`` a stable code, also for rules that span fields: those raise a ``ValidationError`` built
  with the field's path, which pydantic nests under the enclosing location, instead of a
  ``ValueError`` that it would pin on the whole model.
* ``parse_spec`` picks the model from ``kind`` itself (and the helm ``chart`` from ``source``), so
  locations do not start with a union tag as they would through the discriminated union.
* Values that later reach a command line (git URLs and refs, paths, image references, cron) are
  refused here, where the user can be told why. Callers still pass them as separate arguments and
  never through a shell; local git paths are checked against SLIPWAY_GIT_LOCAL_ROOTS by the builder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

try:  # PyYAML comes with uvicorn[standard]; without it values_yaml is only size-checked.
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str, str, Any]  # (loc, stable code, message, offending value)


def _invalid(problems: Sequence[Problem]) -> ValidationError:
    details = [
        InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=value)
        for loc, code, message, value in problems
    ]
    return ValidationError.from_exception_data("ServiceSpec", details)


def _check(problems: Sequence[Problem]) -> None:
    if problems:
        raise _invalid(problems)


def _matching(code: str, pattern: str, message: str, max_length: int) -> AfterValidator:
    """The whole string must match ``pattern``; the message never quotes the user's text."""
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if len(value) > max_length or not compiled.fullmatch(value):
            raise PydanticCustomError(code, message)
        return value

    return AfterValidator(validate)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _optional_in_schema(*fields: str) -> ConfigDict:
    """For fields a before-validator fills in: the published JSON Schema must not require them."""

    def edit(schema: dict[str, Any]) -> None:
        schema["required"] = [name for name in schema.get("required", []) if name not in fields]

    return ConfigDict(json_schema_extra=edit)


# --- names, paths, command lines ------------------------------------------------------------

_DNS_LABEL = r"[a-z]([a-z0-9-]*[a-z0-9])?"
_NAME_RULE = "1-63 lowercase letters, digits and '-', starting with a letter, not ending with '-'"
ServiceName = Annotated[str, _matching("invalid_name", _DNS_LABEL, _NAME_RULE, 63)]
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
EnvName = Annotated[str, _matching("invalid_env_name", _ENV_NAME, "letters, digits and '_'", 256)]
_NO_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _segments(value: str) -> list[str]:
    if _NO_CONTROL.search(value) or len(value) > 1024:
        raise PydanticCustomError("invalid_path", "at most 1024 characters, no control characters")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PydanticCustomError("invalid_path", "'..' is not allowed in a path")
    return parts


def _repo_dir(value: str) -> str:
    return "/" + "/".join(_segments(value))


def _repo_file(value: str) -> str:
    if value.startswith("/") or value.endswith("/"):
        raise PydanticCustomError("invalid_path", "a file path relative to root_path")
    parts = _segments(value)
    if not parts:
        raise PydanticCustomError("invalid_path", "a file path relative to root_path")
    return "/".join(parts)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("invalid_argument", "NUL characters are not allowed")
    return value


RepoDir = Annotated[str, AfterValidator(_repo_dir)]
RepoFile = Annotated[str, AfterValidator(_repo_file)]
Argument = Annotated[str, Field(max_length=4096), AfterValidator(_no_nul)]
# null keeps the image's own entrypoint or arguments; an empty list would be ambiguous: refused
Argv = Annotated[list[Argument], Field(min_length=1, max_length=256)]
Cpu = Annotated[int, Field(ge=10, le=64000)]
Memory = Annotated[int, Field(ge=16, le=262144)]


# --- git ------------------------------------------------------------------------------------

_SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9._~-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^:].*)")
_REMOTE_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_OPTION_LIKE = re.compile(r"(^|[/:@?&=#;])-|--")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_GIT_FORMS = "https://host/repo.git, ssh://host/repo.git, git@host:org/repo.git or a local path"


def _git_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_git_url", message)


def _check_url(value: str, *, code: str, hint: str, user: bool = False, path: bool = True) -> None:
    """Refuse credentials (a bare user only when ``user``), a bad port, a missing host or path."""
    parts = urlsplit(value)
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and (not user or ":" in userinfo):
        raise PydanticCustomError(code, "no credentials in the URL: {hint}", {"hint": hint})
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise PydanticCustomError(code, "the URL has an invalid port") from None
    if not parts.hostname or (path and parts.path in ("", "/")) or parts.query or parts.fragment:
        raise PydanticCustomError(code, "the URL needs a host and a path, no query or fragment")


def _git_url(value: str) -> str:
    if _REMOTE_HELPER.match(value):
        raise _git_error("remote helper transports (ext::, fd::, ...) are not allowed")
    if not value or len(value) > 2048 or _SPACE_OR_CONTROL.search(value):
        raise _git_error("1-2048 characters, no spaces or control characters")
    if _OPTION_LIKE.search(value):
        raise _git_error("'-' may not start a URL or one of its parts, and '--' is not allowed")
    if value.startswith("https://"):
        _check_url(value, code="invalid_git_url", hint="register a git token instead")
    elif value.startswith("ssh://"):
        _check_url(value, code="invalid_git_url", hint="use an ssh key", user=True)
    elif value.startswith(("file://", "/")):
        path = value.removeprefix("file://")
        if not path.startswith("/") or ".." in path.split("/"):
            raise _git_error("a local repository is an absolute path without '..'")
    elif value.startswith(("http://", "git://")):
        raise _git_error("unencrypted transports are not allowed: use https or ssh")
    elif not _SCP_LIKE.fullmatch(value):
        raise _git_error(f"expected {_GIT_FORMS}")
    return value


_BAD_REF = re.compile(r"^[-/.]|[/.]$|\.lock$|\.\.|//|/\.|\.lock/|@\{|[\x00-\x20\x7f~^:?*\[\\]")


def _git_ref(value: str) -> str:
    if not value or value == "@" or len(value) > 255 or _BAD_REF.search(value):
        raise PydanticCustomError("invalid_branch", "not a valid git branch name")
    return value


def _commit(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{7,40}", value):
        raise PydanticCustomError("invalid_commit", "a commit sha: 7 to 40 hexadecimal digits")
    return value.lower()


GitUrl = Annotated[str, AfterValidator(_git_url)]
GitRef = Annotated[str, AfterValidator(_git_ref)]
CommitSha = Annotated[str, AfterValidator(_commit)]


class GitSource(_Model):
    url: GitUrl
    branch: GitRef = "main"
    commit: CommitSha | None = None  # null: the branch's latest commit at deploy time
    root_path: RepoDir = "/"
    dockerfile_path: RepoFile = "Dockerfile"  # relative to root_path
    build_args: dict[EnvName, Argument] = Field(default_factory=dict, max_length=100)


# --- images ---------------------------------------------------------------------------------

_HOST_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_REGISTRY = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*(:(?P<port>[0-9]{{1,5}}))?")
_REPO_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_IMAGE_NAME = re.compile(rf"{_REPO_COMPONENT}(/{_REPO_COMPONENT})*")


def _registry(value: str) -> str:
    value = value.lower()
    match = _REGISTRY.fullmatch(value)
    if len(value) > 253 or not match or not 0 < int(match["port"] or 443) < 65536:
        raise PydanticCustomError("invalid_registry", "a registry host with an optional :port")
    return value


def _image_name(value: str) -> str:
    first, slash, _ = value.partition("/")
    if ":" in value or "@" in value:
        raise PydanticCustomError("invalid_image_name", "put the tag in 'tag', not in the name")
    if slash and ("." in first or first == "localhost"):
        raise PydanticCustomError("invalid_image_name", "put the registry host in 'registry'")
    if len(value) > 255 or not _IMAGE_NAME.fullmatch(value):
        raise PydanticCustomError(
            "invalid_image_name", "lowercase path components of letters, digits, '.', '_', '-'"
        )
    return value


_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_TAG_RULE = "up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'"


class ImageSource(_Model):
    registry: Annotated[str, AfterValidator(_registry)] = "docker.io"
    name: Annotated[str, AfterValidator(_image_name)]
    tag: Annotated[str, _matching("invalid_image_tag", _TAG, _TAG_RULE, 128)] = "latest"


# --- ports, probes and the runtime settings of long-running services --------------------------

PortNumber = Annotated[int, Field(ge=1, le=65535)]
_PORT_NAME = r"(?!.*--)(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_PORT_NAME_RULE = "1-15 lowercase letters, digits and '-', with a letter (a Kubernetes port name)"
PortName = Annotated[str, _matching("invalid_port_name", _PORT_NAME, _PORT_NAME_RULE, 15)]


class Port(_Model):
    """A port the service listens on; ``public`` exposes it outside the environment.

    Public http/grpc ports go through the ingress (TLS); a public tcp port needs a load balancer
    (kubernetes) or is published as is (local runtime). Exactly one port is the default (the one
    ``PORT`` points at): the first one when none is marked.
    """

    port: PortNumber
    protocol: Literal["http", "grpc", "tcp"] = "http"
    public: bool = False
    name: PortName | None = None
    default: bool = False


class Probe(_Model):
    type: Literal["http", "tcp", "exec"]
    path: Annotated[str, Field(max_length=1024)] | None = None
    port: PortNumber | None = None  # http/tcp: null means the service's default port
    command: Argv | None = None
    initial_delay_s: int = Field(10, ge=0, le=3600)
    period_s: int = Field(10, ge=1, le=3600)
    timeout_s: int = Field(5, ge=1, le=3600)
    failure_threshold: int = Field(3, ge=1, le=100)
    success_threshold: int = Field(1, ge=1, le=100)

    @model_validator(mode="before")
    @classmethod
    def _http_path_defaults_to_root(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") == "http" and data.get("path") is None:
            return {**data, "path": "/"}
        return data

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> Probe:
        allowed = {"http": {"path", "port"}, "tcp": {"port"}, "exec": {"command"}}[self.type]
        problems: list[Problem] = [
            ((field,), "probe_field_not_allowed", f"a {self.type} probe takes no {field}", value)
            for field in ("path", "port", "command")
            if field not in allowed and (value := getattr(self, field)) is not None
        ]
        if self.type == "exec" and self.command is None:
            problems.append((("command",), "missing", "an exec probe needs a command", None))
        if self.path is not None and (
            not self.path.startswith("/") or _SPACE_OR_CONTROL.search(self.path)
        ):
            message = "must start with '/', without spaces"
            problems.append((("path",), "invalid_path", message, self.path))
        _check(problems)
        return self


class Healthchecks(_Model):
    liveness: Probe | None = None
    readiness: Probe | None = None

    @model_validator(mode="after")
    def _liveness_succeeds_once(self) -> Healthchecks:
        if self.liveness is not None and self.liveness.success_threshold != 1:
            loc: Loc = ("liveness", "success_threshold")
            message = "must be 1 for a liveness probe (Kubernetes rule)"
            _check([(loc, "invalid_threshold", message, self.liveness.success_threshold)])
        return self


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


class _ServiceBase(_Model):
    name: ServiceName
    kind: str
    description: Annotated[str, Field(max_length=500)] = ""


class _Resources(_ServiceBase):
    cpu_millicores: Cpu = 500
    memory_mib: Memory = 512


class _Runtime(_Resources):
    ports: list[Port] = Field(default_factory=list, max_length=32)
    healthchecks: Healthchecks = Field(default_factory=Healthchecks)
    min_instances: int = Field(1, ge=0, le=100)
    max_instances: int = Field(1, ge=0, le=100)  # absent or null: same as min_instances
    command: Argv | None = None
    args: Argv | None = None

    @model_validator(mode="before")
    @classmethod
    def _max_defaults_to_min(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("max_instances") is None:
            minimum = _as_int(data.get("min_instances", 1))  # when invalid, only min is reported
            return {**data, "max_instances": minimum if minimum in range(101) else 1}
        return data

    @field_validator("ports")
    @classmethod
    def _one_default_port(cls, ports: list[Port]) -> list[Port]:
        problems: list[Problem] = []
        seen_ports: set[int] = set()
        seen_names: set[str] = set()
        default_seen = False
        for index, port in enumerate(ports):
            if port.port in seen_ports:
                problems.append(((index, "port"), "duplicate_port", "declared twice", port.port))
            if port.name is not None and port.name in seen_names:
                problems.append(((index, "name"), "duplicate_port_name", "used twice", port.name))
            if port.default and default_seen:
                message = "only one port can be the default"
                problems.append(((index, "default"), "multiple_default_ports", message, True))
            seen_ports.add(port.port)
            seen_names.add(port.name or "")
            default_seen = default_seen or port.default
        _check(problems)
        if ports and not default_seen:
            return [ports[0].model_copy(update={"default": True}), *ports[1:]]
        return ports

    @model_validator(mode="after")
    def _instances_and_probe_ports(self) -> _Runtime:
        problems: list[Problem] = []
        if self.max_instances < self.min_instances:
            message = f"must be at least min_instances ({self.min_instances})"
            problems.append((("max_instances",), "less_than_min", message, self.max_instances))
        declared = {port.port for port in self.ports}
        for which in ("liveness", "readiness"):
            probe: Probe | None = getattr(self.healthchecks, which)
            if probe is None or probe.type == "exec":
                continue
            loc: Loc = ("healthchecks", which, "port")
            if probe.port is None and not declared:
                problems.append((loc, "undeclared_port", "declare a port to probe", None))
            elif probe.port is not None and probe.port not in declared:
                message = "must be one of the service's declared ports"
                problems.append((loc, "undeclared_port", message, probe.port))
        _check(problems)
        return self


class ApplicationSpec(_Runtime):
    """Built from git with its Dockerfile, then run like a container."""

    kind: Literal["application"]
    git: GitSource
    auto_deploy: bool = True  # redeploy on every push to the branch


class ContainerSpec(_Runtime):
    kind: Literal["container"]
    image: ImageSource
    auto_deploy: bool = False  # redeploy when a new tag is announced


# --- databases ------------------------------------------------------------------------------

# Oldest first; the last is the default. Data files written by a version never go back to an older.
DATABASE_VERSIONS: Final[dict[str, tuple[str, ...]]] = {
    "postgresql": ("13", "14", "15", "16", "17"),
    "mysql": ("8.0", "8.4"),
    "mongodb": ("6.0", "7.0", "8.0"),
    "redis": ("6", "7"),
}


class DatabaseSpec(_Resources):
    """A database run in container mode (StatefulSet + volume) by the deployer."""

    model_config = _optional_in_schema("version")

    kind: Literal["database"]
    engine: Literal["postgresql", "mysql", "mongodb", "redis"]
    version: str  # absent or null: the newest supported version of the engine
    storage_gib: int = Field(10, ge=1, le=10000)
    public: bool = False
    mode: Literal["container"] = "container"
    cpu_millicores: Cpu = 250

    @model_validator(mode="before")
    @classmethod
    def _newest_version_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("version") is None:
            engine = data.get("engine")
            versions = DATABASE_VERSIONS.get(engine) if isinstance(engine, str) else None
            # with an unknown engine only the engine is reported ("" is then never checked)
            return {**data, "version": versions[-1] if versions else ""}
        return data

    @field_validator("version", mode="before")
    @classmethod
    def _number_is_a_version(cls, value: Any) -> Any:
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("version")
    @classmethod
    def _supported_version(cls, value: str, info: ValidationInfo) -> str:
        versions = DATABASE_VERSIONS.get(info.data.get("engine", ""))
        if versions is not None and value not in versions:
            supported = ", ".join(versions)
            raise PydanticCustomError(
                "unsupported_version", "supported versions: {versions}", {"versions": supported}
            )
        return value


# --- jobs -----------------------------------------------------------------------------------

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names counted from lowest)
_CRON_FIELDS: Final = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
_CRON_MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _cron_error(message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError("invalid_cron", message, context or None)


def _cron_number(text: str, field: tuple[str, int, int, Sequence[str]]) -> int:
    label, low, high, names = field
    if text.lower() in names:
        return low + names.index(text.lower())
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        message = "{field}: '{value}' is not in {low}-{high}"
        raise _cron_error(message, field=label, value=text, low=low, high=high)
    return int(text)


def _cron_values(text: str, field: tuple[str, int, int, Sequence[str]]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = _cron_number(step_text, (field[0] + " step", 1, field[2], ())) if slash else 1
        if base == "*":
            start, end = field[1], field[2]
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _cron_number(first, field), _cron_number(last, field)
            if start > end:
                message = "{field}: the range '{item}' goes backwards"
                raise _cron_error(message, field=field[0], item=item)
        else:
            start = _cron_number(base, field)
            end = field[2] if slash else start
        values.update(range(start, end + 1, step))
    return values


def _cron(value: str) -> str:
    """A standard 5-field cron expression (Kubernetes CronJob syntax) or one of its @macros."""
    value = " ".join(value.split())
    if value.lower() in _CRON_MACROS:
        return value.lower()
    fields = value.split(" ")
    if len(fields) != 5:
        raise _cron_error("5 fields: minute hour day-of-month month day-of-week (no seconds)")
    values = [_cron_values(text, spec) for text, spec in zip(fields, _CRON_FIELDS, strict=True)]
    days, months = values[2], values[3]
    # With day-of-week '*' only the days of the month count: "0 0 30 2 *" would never run.
    if fields[4].startswith("*") and not any(d <= _MONTH_DAYS[m - 1] for d in days for m in months):
        raise _cron_error("this schedule never runs (no such day in those months)")
    return value


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    # "localtime" and "Factory" are not places: the first is the host's own setting.
    return frozenset((available_timezones() - {"localtime", "Factory", "posixrules"}) | {"UTC"})


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise PydanticCustomError("invalid_timezone", "an IANA time zone, like Europe/Paris")
    return value


Duration = Annotated[int, Field(ge=1, le=86400)]


class _Job(_Resources):
    """A run-to-completion job: exactly one source, an image or a git repository to build."""

    image: ImageSource | None = None
    git: GitSource | None = None
    command: Argv | None = None
    max_duration_s: Duration = 3600

    @model_validator(mode="after")
    def _exactly_one_source(self) -> _Job:
        if self.image is not None and self.git is not None:
            message = "a job has one source: set image or git, not both"
            _check([(("git",), "source_conflict", message, None)])
        if self.image is None and self.git is None:
            _check([(("image",), "missing", "a job needs a source: image or git", None)])
        return self


class CronJobSpec(_Job):
    kind: Literal["cronjob"]
    schedule: Annotated[str, Field(max_length=200), AfterValidator(_cron)]
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    concurrency_policy: Literal["allow", "forbid", "replace"] = "forbid"


Trigger = Literal["start", "stop", "delete"]


def _on_start() -> list[Trigger]:
    return ["start"]


class LifecycleSpec(_Job):
    """Runs when its environment starts, stops or is deleted.

    With ``output_variables`` the JSON file the job writes becomes variables of the services in
    later deployment stages.
    """

    kind: Literal["lifecycle"]
    triggers: list[Trigger] = Field(default_factory=_on_start, min_length=1)
    output_variables: bool = False

    @field_validator("triggers")
    @classmethod
    def _unique_triggers(cls, triggers: list[Trigger]) -> list[Trigger]:
        _check(
            [
                ((index,), "duplicate_trigger", "listed twice", trigger)
                for index, trigger in enumerate(triggers)
                if trigger in triggers[:index]
            ]
        )
        return triggers


# --- helm -----------------------------------------------------------------------------------


def _chart_repository_url(value: str) -> str:
    code, hint = "invalid_chart_repository", "register the repository's credentials instead"
    if _SPACE_OR_CONTROL.search(value) or len(value) > 2048:
        raise PydanticCustomError(code, "no spaces or control characters, at most 2048 characters")
    if not value.startswith(("https://", "oci://")):
        raise PydanticCustomError(code, "an https:// Helm repository or an oci:// registry")
    _check_url(value, code=code, hint=hint, path=value.startswith("oci://"))
    return value


_NUMBER = r"(0|[1-9][0-9]*)"
_SEMVER = rf"v?{_NUMBER}\.{_NUMBER}\.{_NUMBER}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
_CHART_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


class RepositoryChart(_Model):
    source: Literal["repository"]
    repository_url: Annotated[str, AfterValidator(_chart_repository_url)]
    name: Annotated[str, _matching("invalid_chart_name", _CHART_NAME, "a Helm chart name", 250)]
    # An exact version, not a range: a deployment snapshot must redeploy the same chart.
    version: Annotated[str, _matching("invalid_chart_version", _SEMVER, "an exact SemVer", 128)]


class GitChart(_Model):
    source: Literal["git"]
    url: GitUrl
    branch: GitRef = "main"
    commit: CommitSha | None = None
    path: RepoDir = "/"  # the chart's directory in the repository


_CHARTS: Final[dict[str, type[RepositoryChart] | type[GitChart]]] = {
    "repository": RepositoryChart,
    "git": GitChart,
}
MAX_VALUES_BYTES: Final = 256 * 1024


def _values_yaml(value: str) -> str:
    if len(value.encode()) > MAX_VALUES_BYTES:
        raise PydanticCustomError("values_too_large", "at most 256 KiB")
    if yaml is None or not value.strip():
        return value
    try:
        loaded = yaml.safe_load(value)
    except RecursionError:
        raise PydanticCustomError("invalid_values_yaml", "the YAML is nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = f"{getattr(error, 'problem', None) or 'cannot be parsed'}{where}"
        raise PydanticCustomError(
            "invalid_values_yaml", "not valid YAML: {problem}", {"problem": problem}
        ) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise PydanticCustomError("invalid_values_yaml", "the values must be a YAML mapping")
    return value


_HELM_KEY = r"[A-Za-z0-9_.\[\]\\/-]+"
HelmKey = Annotated[
    str, _matching("invalid_helm_key", _HELM_KEY, "a value path like a.b[0].c", 512)
]
HelmValues = Annotated[dict[HelmKey, Argument], Field(max_length=200)]


_RELEASE_RULE = "at most 53 lowercase letters, digits and '-', starting with a letter"


class HelmSpec(_ServiceBase):
    model_config = _optional_in_schema("release_name")

    kind: Literal["helm"]
    chart: Annotated[RepositoryChart | GitChart, Field(discriminator="source")]
    values_yaml: Annotated[str, AfterValidator(_values_yaml)] = ""
    set: HelmValues = Field(default_factory=dict)
    set_string: HelmValues = Field(default_factory=dict)
    # Absent: the service name at creation; kept on rename so the release is not orphaned.
    release_name: Annotated[str, _matching("invalid_release_name", _DNS_LABEL, _RELEASE_RULE, 53)]
    timeout_s: int = Field(600, ge=1, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _release_named_after_service(cls, data: Any) -> Any:
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str) and data.get("release_name") is None:
            return {**data, "release_name": data["name"]}
        return data

    @field_validator("chart", mode="wrap")
    @classmethod
    def _chart_by_source(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(value, Mapping):
            return handler(value)
        source = value.get("source")
        model = _CHARTS.get(source) if isinstance(source, str) else None
        if model is None:
            code = "missing" if source is None else "invalid_chart_source"
            raise _invalid([(("source",), code, "'repository' or 'git'", source)])
        return model.model_validate(value)


# --- entry points ---------------------------------------------------------------------------

AnyServiceSpec = (
    ApplicationSpec | ContainerSpec | DatabaseSpec | CronJobSpec | LifecycleSpec | HelmSpec
)
ServiceSpec = Annotated[AnyServiceSpec, Field(discriminator="kind")]
SpecT = TypeVar("SpecT", bound=_ServiceBase)
_SPECS: Final[dict[str, type[AnyServiceSpec]]] = {
    "application": ApplicationSpec,
    "container": ContainerSpec,
    "database": DatabaseSpec,
    "cronjob": CronJobSpec,
    "lifecycle": LifecycleSpec,
    "helm": HelmSpec,
}
SERVICE_KINDS: Final = tuple(_SPECS)
DEFAULT_STAGES: Final = ("databases", "jobs", "containers", "applications", "helm")
_STAGE_OF_KIND: Final = {
    "database": "databases",
    "cronjob": "jobs",
    "lifecycle": "jobs",
    "container": "containers",
    "application": "applications",
    "helm": "helm",
}


def default_stage(kind: str) -> str:
    """The stage a new service of this kind joins in the default stage order."""
    try:
        return _STAGE_OF_KIND[kind]
    except KeyError:
        raise ValueError(f"unknown service kind: {kind!r}") from None


def parse_spec(data: Mapping[str, Any]) -> ServiceSpec:
    """Validate a whole spec; raises ``pydantic.ValidationError``."""
    if not isinstance(data, Mapping):
        raise _invalid([((), "model_type", "a service spec is a JSON object", data)])
    kind = data.get("kind")
    model = _SPECS.get(kind) if isinstance(kind, str) else None
    if model is None:
        message = "one of: " + ", ".join(SERVICE_KINDS)
        raise _invalid([(("kind",), "missing" if kind is None else "invalid_kind", message, kind)])
    return model.model_validate(data)


def merge_update(current: SpecT, patch: Mapping[str, Any]) -> SpecT:
    """Apply a JSON merge patch (RFC 7396) to a stored spec and validate the result.

    Objects merge key by key, lists and scalars replace, ``null`` resets a field to its default.
    The kind and a database's engine never change; a database's version and storage only grow.
    """
    if not isinstance(patch, Mapping):
        raise _invalid([((), "model_type", "an update is a JSON object", patch)])
    base = current.model_dump(mode="json")
    for field in ("kind", "engine"):
        if field in base and field in patch and patch[field] != base[field]:
            raise _invalid([((field,), "immutable", f"the {field} cannot change", patch[field])])
    _drop_stale_values(base, patch)
    updated = current.model_validate(_merge(base, patch))  # the same model: the kind is kept
    if isinstance(current, DatabaseSpec):
        _check(_database_growth(current, updated))
    return updated


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _drop_stale_values(base: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """Forget stored values the patch implicitly replaces, so their defaults apply again."""
    fixed_size = base.get("max_instances") == base.get("min_instances")
    if "min_instances" in patch and "max_instances" not in patch and fixed_size:
        base.pop("max_instances", None)  # a fixed-size service stays fixed-size
    if base["kind"] in ("cronjob", "lifecycle"):
        for source, other in (("image", "git"), ("git", "image")):
            if patch.get(source) is not None and other not in patch:
                base.pop(other, None)  # switching the source
    chart, stored = patch.get("chart"), base.get("chart")
    stored_source = stored.get("source") if isinstance(stored, dict) else None
    if isinstance(chart, Mapping) and chart.get("source", stored_source) != stored_source:
        base.pop("chart", None)  # another kind of chart: nothing to merge with


def _database_growth(current: DatabaseSpec, updated: _ServiceBase) -> list[Problem]:
    problems: list[Problem] = []
    assert isinstance(updated, DatabaseSpec)  # merge_update keeps the kind
    versions = DATABASE_VERSIONS[current.engine]
    if versions.index(updated.version) < versions.index(current.version):
        message = f"cannot go back from {current.version}: data files only upgrade"
        problems.append((("version",), "version_downgrade", message, updated.version))
    if updated.storage_gib < current.storage_gib:
        message = f"a volume cannot shrink below {current.storage_gib} GiB"
        problems.append((("storage_gib",), "storage_shrink", message, updated.storage_gib))
    return problems
