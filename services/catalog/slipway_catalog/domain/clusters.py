"""What a user gives to register a self-managed Kubernetes cluster, validated."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$")


def _https(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValueError("the API URL must be https://host[:port] without credentials")
    return url.rstrip("/")


def server_of(kubeconfig: str) -> tuple[str, dict[str, Any]]:
    """The current context's API server URL and credentials from a kubeconfig document."""
    try:
        doc = yaml.safe_load(kubeconfig)
        current = doc.get("current-context")
        context = next(c["context"] for c in doc["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
        user: dict[str, Any] = next(
            (u["user"] for u in doc.get("users", []) if u["name"] == context.get("user")), {}
        )
    except (yaml.YAMLError, AttributeError, KeyError, StopIteration, TypeError) as exc:
        raise ValueError(f"not a usable kubeconfig (current context not found): {exc}") from None
    creds = {
        "token": user.get("token"),
        "ca_data": cluster.get("certificate-authority-data"),
        "insecure": bool(cluster.get("insecure-skip-tls-verify", False)),
    }
    return _https(str(cluster["server"])), creds


class ClusterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=63)
    kind: str = Field(default="self_managed", pattern="^self_managed$")
    api_url: str | None = Field(default=None, max_length=2000)
    ca_cert: str | None = Field(default=None, max_length=20_000)
    token: str | None = Field(default=None, max_length=10_000)
    kubeconfig: str | None = Field(default=None, max_length=200_000)

    @model_validator(mode="after")
    def _check(self) -> ClusterIn:
        if not _NAME.match(self.name):
            raise ValueError("name: letters, digits, space, '.', '_' or '-', up to 63")
        if self.kubeconfig:
            server_of(self.kubeconfig)
        elif not (self.api_url and self.token):
            raise ValueError("give api_url and token, or a kubeconfig")
        else:
            _https(self.api_url)
        return self

    def server(self) -> str:
        if self.kubeconfig:
            return server_of(self.kubeconfig)[0]
        assert self.api_url is not None
        return _https(self.api_url)

    def credentials(self) -> dict[str, Any]:
        return {"ca_cert": self.ca_cert, "token": self.token, "kubeconfig": self.kubeconfig}


class ClusterPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=63)
    api_url: str | None = Field(default=None, max_length=2000)
    ca_cert: str | None = Field(default=None, max_length=20_000)
    token: str | None = Field(default=None, max_length=10_000)
    kubeconfig: str | None = Field(default=None, max_length=200_000)

    def apply(self, current: dict[str, Any], *, name: str, api_url: str | None) -> ClusterIn:
        merged = {"name": name, "api_url": api_url, **current}
        merged.update(self.model_dump(exclude_unset=True))
        if (
            self.kubeconfig is None
            and "kubeconfig" not in self.model_fields_set
            and (self.api_url or self.token)
        ):
            merged["kubeconfig"] = None
        return ClusterIn.model_validate(merged)
