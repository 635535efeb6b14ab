"""What a webhook delivers: which deployer step becomes which webhook event, the plain JSON and
the Slack bodies, the jittered back-off over the retry window, and which answers count."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from slipway_scheduler.domain import deliveries as d
from slipway_scheduler.domain import webhooks as w

OCCURRENCE = d.Occurrence(
    event="deployment.failed",
    event_id=uuid.UUID(int=1),
    occurred_at=datetime(2026, 12, 5, 6, 0, tzinfo=UTC),
    organization_id=uuid.UUID(int=2),
    deployment_id=uuid.UUID(int=3),
    environment_id=uuid.UUID(int=4),
    action="DEPLOY",
    project_id=uuid.UUID(int=5),
    project_name="api-shop",
    environment_name="prod",
    environment_mode="production",
    details={"reason": "BUILD_FAILED", "message": "exit 2", "duration_s": 12.34},
)


@pytest.mark.parametrize(
    ("step", "action", "event"),
    [
        ("queued", "DEPLOY", "deployment.queued"),
        ("started", "RESTART", "deployment.started"),
        ("succeeded", "DEPLOY", "deployment.succeeded"),
        ("failed", "STOP", "deployment.failed"),
        ("canceled", "DEPLOY", "deployment.canceled"),
        ("succeeded", "STOP", "environment.stopped"),
    ],
)
def test_a_deployment_step_is_a_webhook_event(step: str, action: str, event: str) -> None:
    assert d.webhook_event(step, action) == event
    assert event in w.EVENTS


def test_the_json_body_names_the_event_its_place_and_its_details() -> None:
    body = json.loads(d.render(w.Format.JSON, OCCURRENCE))
    assert body == {
        "id": str(uuid.UUID(int=1)),
        "type": "deployment.failed",
        "occurred_at": "2026-12-05T06:00:00+00:00",
        "organization_id": str(uuid.UUID(int=2)),
        "data": {
            "deployment_id": str(uuid.UUID(int=3)),
            "action": "DEPLOY",
            "environment": {"id": str(uuid.UUID(int=4)), "name": "prod", "mode": "production"},
            "project": {"id": str(uuid.UUID(int=5)), "name": "api-shop"},
            "reason": "BUILD_FAILED",
            "message": "exit 2",
            "duration_s": 12.34,
        },
    }
    # the same bytes for every attempt
    assert d.render(w.Format.JSON, OCCURRENCE) == d.render(w.Format.JSON, OCCURRENCE)


def test_the_slack_body_is_one_line_of_text() -> None:
    body = json.loads(d.render(w.Format.SLACK, OCCURRENCE))
    assert body == {"text": "Deploy of api-shop/prod failed (12.3 s, BUILD_FAILED, exit 2)"}
    stopped = d.Occurrence(
        event="environment.stopped",
        event_id=uuid.uuid4(),
        occurred_at=OCCURRENCE.occurred_at,
        organization_id=OCCURRENCE.organization_id,
        deployment_id=uuid.uuid4(),
        environment_id=uuid.UUID(int=9),
        action="STOP",
    )
    # an environment the scheduler does not know by name yet is named by its id
    assert d.slack_body(stopped) == {"text": f"Environment {uuid.UUID(int=9)} stopped"}


def test_the_back_off_is_spread_by_the_jitter_and_capped() -> None:
    low = w.retry_delay(3, base_s=30, fraction=0.0)
    middle = w.retry_delay(3, base_s=30)
    high = w.retry_delay(3, base_s=30, fraction=1.0)
    assert middle == timedelta(seconds=120)
    assert low == timedelta(seconds=96) and high == timedelta(seconds=144)
    assert w.retry_delay(40, base_s=30, cap_s=3600) == timedelta(seconds=3600)
    assert w.retry_delay(10_000, base_s=30, cap_s=3600) == timedelta(seconds=3600)


def test_jittered_retries_stop_at_the_end_of_the_window() -> None:
    elapsed, failures = timedelta(0), 0
    while True:
        failures += 1
        wait = w.next_attempt_after(failures, elapsed, base_s=30, fraction=1.0)
        if wait is None:
            break
        elapsed += wait
    assert elapsed <= w.RETRY_WINDOW
    # the last wait would have crossed the window: a capped wait is at most 1.2 h
    assert elapsed > w.RETRY_WINDOW - timedelta(hours=1.2)
    assert 15 < failures < 40


@pytest.mark.parametrize(
    ("code", "error", "ok"),
    [
        (200, None, True),
        (204, None, True),
        (301, None, False),
        (404, None, False),
        (500, None, False),
        (None, "TIMEOUT: no answer within 5 s", False),
    ],
)
def test_only_a_2xx_answer_is_a_delivery(code: int | None, error: str | None, ok: bool) -> None:
    assert d.AttemptResult(response_code=code, duration_ms=3, error=error).succeeded is ok
