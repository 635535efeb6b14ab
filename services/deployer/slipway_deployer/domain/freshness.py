"""Whether what runs is what the user would deploy now. Pure.

A deployed service is ``OUT_OF_DATE`` when its configuration changed since it was deployed
("configuration changed"), or when a push moved its branch to a commit it does not run
("new commit available"): the push's commit differs from the one its last deployed build
built, and the push arrived after that deployment started (a deployment that started later
built the branch as the push left it, or a newer commit, so an older push says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slipway_deployer.domain.state_machine import Freshness

NEW_COMMIT = "new commit available"
CONFIGURATION_CHANGED = "configuration changed"
NOT_DEPLOYED = "services never deployed"


@dataclass(frozen=True)
class Pushed:
    commit: str
    pushed_at: datetime


@dataclass(frozen=True)
class Built:
    commit: str
    built_from: datetime


@dataclass(frozen=True)
class Verdict:
    freshness: Freshness
    reason: str | None = None
    available_commit: str | None = None  # the commit a new deploy would run


def of_service(configuration: Freshness, built: Built | None, pushed: Pushed | None) -> Verdict:
    """``configuration``: the verdict of the configuration digests alone."""
    if configuration is Freshness.NEVER_DEPLOYED:
        return Verdict(configuration)
    if (
        built is not None
        and pushed is not None
        and pushed.commit != built.commit
        and pushed.pushed_at > built.built_from
    ):
        return Verdict(Freshness.OUT_OF_DATE, NEW_COMMIT, pushed.commit)
    if configuration is Freshness.OUT_OF_DATE:
        return Verdict(configuration, CONFIGURATION_CHANGED)
    return Verdict(configuration)


def of_environment(services: list[Verdict]) -> Verdict:
    """Never deployed when nothing was; up to date when everything is; else out of date, with
    the first new commit available if there is one."""
    if not services or all(v.freshness is Freshness.NEVER_DEPLOYED for v in services):
        return Verdict(Freshness.NEVER_DEPLOYED)
    if all(v.freshness is Freshness.UP_TO_DATE for v in services):
        return Verdict(Freshness.UP_TO_DATE)
    for verdict in services:
        if verdict.reason == NEW_COMMIT:
            return verdict
    if any(v.reason == CONFIGURATION_CHANGED for v in services):
        return Verdict(Freshness.OUT_OF_DATE, CONFIGURATION_CHANGED)
    return Verdict(Freshness.OUT_OF_DATE, NOT_DEPLOYED)
