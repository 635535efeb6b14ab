"""A deployment rule, validated: a weekly schedule in an IANA timezone."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from slipway_libs.fields import Line

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class DeploymentRule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "auto_stop": "yes" is refused

    auto_stop: bool = False
    auto_start: bool = False
    timezone: Line = Field(default="UTC", max_length=64)
    weekdays: list[Weekday] = Field(default_factory=list, max_length=7)
    start_time: Line | None = None
    stop_time: Line | None = None
    auto_preview: bool = False
    # hours a pull request's preview of this environment lives (None: the platform's default)
    preview_ttl_hours: int | None = Field(default=None, ge=1, le=8760)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value

    @field_validator("start_time", "stop_time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not _TIME.match(value):
            raise ValueError("use HH:MM, 24-hour clock")
        return value

    @field_validator("weekdays")
    @classmethod
    def _days(cls, value: list[Weekday]) -> list[Weekday]:
        if len(set(value)) != len(value):
            raise ValueError("each weekday once")
        order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        return sorted(value, key=order.index)

    @model_validator(mode="after")
    def _schedule(self) -> DeploymentRule:
        if self.auto_stop and not self.stop_time:
            raise ValueError("auto_stop needs stop_time")
        if self.auto_start and not self.start_time:
            raise ValueError("auto_start needs start_time")
        if (self.auto_stop or self.auto_start) and not self.weekdays:
            raise ValueError("a schedule needs at least one weekday")
        if self.start_time and self.stop_time and self.start_time == self.stop_time:
            raise ValueError("start_time and stop_time must differ")
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedRule:
    """An environment's deployment rule as the repositories answer it (validated when it was
    put: ``DeploymentRule``)."""

    environment_id: uuid.UUID
    organization_id: uuid.UUID
    auto_stop: bool
    auto_start: bool
    timezone: str
    weekdays: tuple[str, ...]
    start_time: str | None
    stop_time: str | None
    auto_preview: bool
    version: int
    updated_at: datetime
    preview_ttl_hours: int | None = None

    def settings(self) -> dict[str, Any]:
        """The rule's settings, as a rule is saved (the environment and version left out)."""
        return {
            "auto_stop": self.auto_stop,
            "auto_start": self.auto_start,
            "timezone": self.timezone,
            "weekdays": list(self.weekdays),
            "start_time": self.start_time,
            "stop_time": self.stop_time,
            "auto_preview": self.auto_preview,
            "preview_ttl_hours": self.preview_ttl_hours,
        }
