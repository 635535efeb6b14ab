"""The shapes of environment variables that the catalog and the deployer share.

Only the shapes: a variable as stored (``VariableIn``), its resolved value (``Resolved``) and the
connection of a deployed database (``DatabaseConnectionInfo``). How a set resolves (precedence,
aliases, interpolation, built-ins, limits) is behaviour, and lives in ``slipway_resolver``, a
package both services depend on, so that a change of the rules is not a contract change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["project", "environment", "service"]
Kind = Literal["value", "alias", "override", "file", "built_in"]


class _Masked:
    def __repr__(self) -> str:
        return "<secret>"


class _MasksSecrets(BaseModel):
    """A secret's value stays out of ``repr`` and ``str`` (logs, tracebacks, test reports)."""

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        secret = getattr(self, "is_secret", False)
        for name, item in super().__repr_args__():
            yield name, _Masked() if secret and name == "value" else item


class VariableIn(_MasksSecrets):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    scope: Scope
    key: str
    kind: Kind
    value: str  # alias: the key it points at; file: the content
    is_secret: bool = False
    mount_path: str | None = None  # file variables only


class Resolved(_MasksSecrets):
    model_config = ConfigDict(frozen=True)

    key: str
    value: str
    is_secret: bool
    source_scope: Scope
    source_id: UUID  # the variable that won
    kind: Kind
    mount_path: str | None = None  # set: deliver as a file (also for an override of a file)
    via: list[str] = Field(default_factory=list)  # keys the value came from, depth first
    overridden_id: UUID | None = None  # for an override: the variable whose value it replaced

    @property
    def is_file(self) -> bool:
        return self.mount_path is not None


class DatabaseConnectionInfo(BaseModel):
    """Where a deployed database answers and how to log in (reported by the deployer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str
    port: int
    user: str
    database: str
    password: str = Field(repr=False)
