"""Request bodies of the deployer's internal API (the public ones, forwarded by the gateway)."""

from __future__ import annotations

from pydantic import Field

from slipway_libs.fields import Line, Model


class ServiceDeployIn(Model):
    """Deploy one service, optionally at a commit (applications, git jobs) or an image tag."""

    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,40}$")
    image_tag: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    chart_version: Line | None = Field(default=None, max_length=128)

    def version(self) -> str | None:
        return self.commit or self.image_tag or self.chart_version
