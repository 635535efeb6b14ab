"""What a user gives to register a self-managed Kubernetes cluster, validated.

The request models check shapes only; ``access`` reads the API server and credentials strictly
(``domain.kubeconfig``) and raises a 422 with a stable code. Whether the API server's address may
be connected to is the use case's question (it needs the resolver and the platform's allow-list).
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slipway_catalog.domain.kubeconfig import (
    ClusterAccess,
    api_server,
    bearer_token,
    ca_certificate,
    parse_kubeconfig,
)
from slipway_libs.errors import InvalidInput
from slipway_libs.fields import Name, Value

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    """A cluster as the repositories answer it: ``local`` (every organization has one) or
    ``self_managed``, whose credentials are sealed at rest, bound to its id."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: str
    api_url: str | None
    credentials_sealed: bytes | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class CheckReason(enum.StrEnum):
    """Why a connectivity check failed, as a user sees it: a stable code and a fixed message,
    never the low-level error (which would tell an open port from a closed one)."""

    UNREACHABLE = "UNREACHABLE"
    TLS_ERROR = "TLS_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"
    NOT_KUBERNETES = "NOT_KUBERNETES"
    TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"


CHECK_MESSAGES = {
    CheckReason.UNREACHABLE: "The cluster's API server could not be reached.",
    CheckReason.TLS_ERROR: "The TLS handshake with the API server failed: check its CA "
    "certificate.",
    CheckReason.UNAUTHORIZED: "The API server refused the credentials.",
    CheckReason.NOT_KUBERNETES: "The address answered, but not as a Kubernetes API server.",
    CheckReason.TARGET_NOT_ALLOWED: "The API server's address is one the platform does not "
    "connect to (loopback, private, link-local or metadata): only the platform's operator can "
    "allow-list it.",
}


class ClusterCheckFailed(Exception):
    """Raised by a cluster probe; ``detail`` is for the server's log only."""

    def __init__(self, reason: CheckReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def refuse_kind(kind: str) -> None:
    """Only self-managed clusters are registered: the local one is built in, and provisioning a
    managed cluster is not something Slipway does (yet)."""
    if kind == "self_managed":
        return
    if kind == "managed":
        message = (
            "Managed clusters (provisioned by Slipway in a cloud account) are not supported: "
            "create the cluster yourself and register it as kind self_managed with a kubeconfig, "
            "or api_url and token."
        )
    elif kind == "local":
        message = (
            "The local cluster is built in: every organization lists it when the installation "
            "runs the local runtime. Register other clusters as kind self_managed."
        )
    else:
        message = "kind: only self_managed clusters can be registered."
    raise InvalidInput("CLUSTER_KIND_NOT_SUPPORTED", message, field="kind")


def access(credentials: dict[str, Any], *, api_url: str | None) -> ClusterAccess:
    """The API server and credentials from the sealed inputs (a kubeconfig wins over the rest)."""
    if credentials.get("kubeconfig"):
        return parse_kubeconfig(credentials["kubeconfig"])
    token, ca_cert = credentials.get("token"), credentials.get("ca_cert")
    if not (api_url and token):
        raise InvalidInput("CLUSTER_ACCESS_MISSING", "Give api_url and token, or a kubeconfig.")
    return ClusterAccess(
        api_server(api_url),
        token=bearer_token(token),
        ca_pem=ca_certificate(ca_cert) if ca_cert else None,
    )


class ClusterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(max_length=63)
    # anything else is refused by ``refuse_kind`` with its own code, before the other checks
    kind: str = Field(default="self_managed", max_length=40)
    api_url: str | None = Field(default=None, max_length=2000)  # checked by api_server
    ca_cert: Value | None = Field(default=None, max_length=20_000)
    token: str | None = Field(default=None, max_length=10_000)  # checked by bearer_token
    kubeconfig: Value | None = Field(default=None, max_length=200_000)

    @model_validator(mode="after")
    def _check(self) -> ClusterIn:
        if self.kind != "self_managed":
            return self  # refused by the use case, with a message for that kind
        if not _NAME.match(self.name):
            raise ValueError("name: letters, digits, space, '.', '_' or '-', up to 63")
        if not self.kubeconfig and not (self.api_url and self.token):
            raise ValueError("give api_url and token, or a kubeconfig")
        return self

    def access(self) -> ClusterAccess:
        return access(self.credentials(), api_url=self.api_url)

    def credentials(self) -> dict[str, Any]:
        return {"ca_cert": self.ca_cert, "token": self.token, "kubeconfig": self.kubeconfig}


class ClusterPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(default=None, max_length=63)
    api_url: str | None = Field(default=None, max_length=2000)  # checked by api_server
    ca_cert: Value | None = Field(default=None, max_length=20_000)
    token: str | None = Field(default=None, max_length=10_000)  # checked by bearer_token
    kubeconfig: Value | None = Field(default=None, max_length=200_000)

    def apply(self, current: dict[str, Any], *, name: str, api_url: str | None) -> ClusterIn:
        merged = {"name": name, "api_url": api_url, **current}
        merged.update(self.model_dump(exclude_unset=True))
        if (
            self.kubeconfig is None
            and "kubeconfig" not in self.model_fields_set
            and (self.api_url or self.token)
        ):
            merged["kubeconfig"] = None
        if not _NAME.match(merged["name"] or ""):
            raise InvalidInput(
                "INVALID_CLUSTER_NAME",
                "name: letters, digits, space, '.', '_' or '-', up to 63",
                field="name",
            )
        if not merged.get("kubeconfig") and not (merged.get("api_url") and merged.get("token")):
            raise InvalidInput("CLUSTER_ACCESS_MISSING", "Give api_url and token, or a kubeconfig.")
        # already checked: built without running the request validators again
        return ClusterIn.model_construct(**merged)
