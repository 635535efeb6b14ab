"""Jobs: cron schedules (5-field, own parser), time zones, cron and lifecycle jobs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any, Final, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from slipway_catalog.domain.specs.common import (
    Argv,
    GitSource,
    ImageSource,
    _check,
)
from slipway_catalog.domain.specs.runtime import (
    _Resources,
)

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
