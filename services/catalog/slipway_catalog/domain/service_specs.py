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

from collections.abc import Mapping
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    Field,
)

from slipway_catalog.domain.specs.common import (  # noqa: F401 (re-exported)
    Argument,
    Argv,
    CommitSha,
    Cpu,
    EnvName,
    GitRef,
    GitSource,
    GitUrl,
    ImageSource,
    Loc,
    Memory,
    Problem,
    RepoDir,
    RepoFile,
    ServiceName,
    _check,
    _invalid,
)
from slipway_catalog.domain.specs.database import (
    DATABASE_VERSIONS,
    DatabaseSpec,
)
from slipway_catalog.domain.specs.helm import (  # noqa: F401 (re-exported)
    MAX_VALUES_BYTES,
    GitChart,
    HelmKey,
    HelmSpec,
    HelmValues,
    RepositoryChart,
)
from slipway_catalog.domain.specs.jobs import (  # noqa: F401 (re-exported)
    CronJobSpec,
    Duration,
    LifecycleSpec,
    Trigger,
)
from slipway_catalog.domain.specs.runtime import (  # noqa: F401 (re-exported)
    ApplicationSpec,
    ContainerSpec,
    Healthchecks,
    Port,
    PortName,
    PortNumber,
    Probe,
    _ServiceBase,
)

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


def image_source(spec: _ServiceBase) -> ImageSource | None:
    """The image a container or job is pulled from (its registry a target the user chose)."""
    image = getattr(spec, "image", None)
    return image if isinstance(image, ImageSource) else None
