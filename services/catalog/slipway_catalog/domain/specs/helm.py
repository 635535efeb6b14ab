"""Helm services: a chart from a repository or git, values overrides, the release name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

try:  # PyYAML comes with uvicorn[standard]; without it values_yaml is only size-checked.
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

from slipway_catalog.domain.specs.common import (
    _DNS_LABEL,
    _SPACE_OR_CONTROL,
    Argument,
    CommitSha,
    GitRef,
    GitUrl,
    RepoDir,
    _check_url,
    _invalid,
    _matching,
    _Model,
    _optional_in_schema,
)
from slipway_catalog.domain.specs.runtime import (
    _ServiceBase,
)
from slipway_libs.fields import Value

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


def _chart_dir(value: str) -> str:
    # git's own directory is never a chart (the deployer refuses it too, CHART_PATH_INVALID)
    if value.split("/")[1:2] == [".git"]:
        raise PydanticCustomError("invalid_path", "a chart's directory cannot be inside .git")
    return value


class GitChart(_Model):
    source: Literal["git"]
    url: GitUrl
    branch: GitRef = "main"
    commit: CommitSha | None = None  # null: the branch's head at deploy time, recorded then
    # the chart's directory from the repository's root ('..' refused)
    path: Annotated[RepoDir, AfterValidator(_chart_dir)] = "/"


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
    values_yaml: Annotated[Value, AfterValidator(_values_yaml)] = ""
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
