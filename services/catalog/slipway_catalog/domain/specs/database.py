"""Database services: engine, version, storage."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from slipway_catalog.domain.specs.common import (
    Cpu,
    _optional_in_schema,
)
from slipway_catalog.domain.specs.runtime import (
    _Resources,
)

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
    version: str  # absent or null: the cluster's default (services use case), else the newest
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
