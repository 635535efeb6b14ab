"""Freshness: a deployed service is out of date when its configuration changed, or when a push
moved its branch to a commit it does not run, after the deployment that built what runs
started; the environment says the first new commit available."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipway_deployer.domain import freshness as fresh
from slipway_deployer.domain.state_machine import Freshness

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD, NEW = "a" * 40, "b" * 40
BUILT = fresh.Built(commit=OLD, built_from=T0)


def test_a_push_after_the_build_started_makes_a_service_out_of_date_with_its_commit() -> None:
    later = fresh.Pushed(commit=NEW, pushed_at=T0 + timedelta(seconds=1))
    assert fresh.of_service(Freshness.UP_TO_DATE, BUILT, later) == fresh.Verdict(
        Freshness.OUT_OF_DATE, fresh.NEW_COMMIT, NEW
    )
    # the new commit is the better news even when the configuration changed too
    assert fresh.of_service(Freshness.OUT_OF_DATE, BUILT, later).reason == fresh.NEW_COMMIT


def test_a_push_the_running_build_already_includes_says_nothing() -> None:
    same = fresh.Pushed(commit=OLD, pushed_at=T0 + timedelta(hours=1))
    assert fresh.of_service(Freshness.UP_TO_DATE, BUILT, same).freshness is Freshness.UP_TO_DATE
    earlier = fresh.Pushed(commit=NEW, pushed_at=T0 - timedelta(seconds=1))
    verdict = fresh.of_service(Freshness.UP_TO_DATE, BUILT, earlier)
    assert verdict == fresh.Verdict(Freshness.UP_TO_DATE)  # built after it: it has it or newer
    assert fresh.of_service(Freshness.UP_TO_DATE, None, earlier).freshness is Freshness.UP_TO_DATE
    assert fresh.of_service(Freshness.UP_TO_DATE, BUILT, None).freshness is Freshness.UP_TO_DATE


def test_configuration_and_never_deployed_keep_their_meaning() -> None:
    later = fresh.Pushed(commit=NEW, pushed_at=T0 + timedelta(seconds=1))
    assert fresh.of_service(Freshness.NEVER_DEPLOYED, None, later) == fresh.Verdict(
        Freshness.NEVER_DEPLOYED
    )
    assert fresh.of_service(Freshness.OUT_OF_DATE, BUILT, None) == fresh.Verdict(
        Freshness.OUT_OF_DATE, fresh.CONFIGURATION_CHANGED
    )


def test_the_environment_sums_its_services_up() -> None:
    up = fresh.Verdict(Freshness.UP_TO_DATE)
    never = fresh.Verdict(Freshness.NEVER_DEPLOYED)
    changed = fresh.Verdict(Freshness.OUT_OF_DATE, fresh.CONFIGURATION_CHANGED)
    pushed = fresh.Verdict(Freshness.OUT_OF_DATE, fresh.NEW_COMMIT, NEW)
    assert fresh.of_environment([]).freshness is Freshness.NEVER_DEPLOYED
    assert fresh.of_environment([never, never]).freshness is Freshness.NEVER_DEPLOYED
    assert fresh.of_environment([up, up]) == up
    assert fresh.of_environment([up, changed, pushed]) == pushed
    assert fresh.of_environment([up, changed]) == changed
    assert fresh.of_environment([up, never]) == fresh.Verdict(
        Freshness.OUT_OF_DATE, fresh.NOT_DEPLOYED
    )
