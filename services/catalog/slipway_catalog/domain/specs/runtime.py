"""Ports, probes and the runtime settings of long-running services (application, container)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from slipway_catalog.domain.specs.common import (
    _SPACE_OR_CONTROL,
    Argv,
    Cpu,
    Description,
    GitSource,
    ImageSource,
    Loc,
    Memory,
    Problem,
    ServiceName,
    _check,
    _matching,
    _Model,
)

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
    description: Description = ""


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


# a glob over paths from the repository's root (``*``, ``?``, ``**``): printable, no spaces
PathFilter = Annotated[
    str,
    _matching(
        "invalid_path_filter",
        r"[^\s\x00-\x1f\x7f-\x9f]+",
        "a glob over paths from the repository's root, e.g. src/** or **/*.py",
        300,
    ),
]


class ApplicationSpec(_Runtime):
    """Built from git with its Dockerfile, then run like a container."""

    kind: Literal["application"]
    git: GitSource
    auto_deploy: bool = True  # redeploy on every push to the branch
    # a push deploys only when one of the files it changed matches one (none: every push)
    path_filters: list[PathFilter] = Field(default_factory=list, max_length=50)


class ContainerSpec(_Runtime):
    kind: Literal["container"]
    image: ImageSource
    auto_deploy: bool = False  # redeploy when a new tag is announced
