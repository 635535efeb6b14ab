"""``--watch`` with a fake of the API (the logs' stream and the deployment's reads): it ends
with the deployment's final state, says each transition once, and goes on without the logs."""

from __future__ import annotations

from typing import Any

import pytest

from slipway_cli import logs, watch
from slipway_cli.api import Deployment
from slipway_cli.client import ApiError


class FakeApi:
    """Answers the deployment's states in turn (the last one again and again)."""

    def __init__(self, *states: str) -> None:
        self.states = list(states)
        self.reads = 0

    def deployment(self, deployment_id: str) -> Deployment:
        self.reads += 1
        status = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        stage = {"name": "apps", "status": "DONE" if status == "SUCCESS" else "ONGOING"}
        return {"id": deployment_id, "status": status, "stages": [stage]}  # type: ignore[typeddict-item]


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch) -> None:
    monkeypatch.setattr(watch, "_READ_EVERY_S", 0.01)


def test_the_logs_end_ends_the_watch_with_the_final_state(monkeypatch) -> None:
    shown: list[str] = []

    def follow(path: str, params: dict[str, str], show: Any, note: Any) -> str:
        assert path == "/deployments/d1/logs"
        show({"text": "STEP 1/2", "stream": "stdout"})
        return "SUCCESS"

    monkeypatch.setattr(logs, "follow", follow)
    said: list[str] = []
    ended = watch.watch(
        FakeApi("ONGOING", "SUCCESS"),  # type: ignore[arg-type]
        "d1",
        show_line=lambda line: shown.append(line["text"]),
        say=said.append,
    )
    assert ended["status"] == "SUCCESS" and shown == ["STEP 1/2"]
    assert said.count("deployment SUCCESS") == 1 and said.count("stage apps: DONE") == 1


def test_without_the_logs_the_deployment_is_still_followed_to_its_end(monkeypatch) -> None:
    def follow(*_: Any) -> str:
        raise ApiError(503, "SERVICE_UNAVAILABLE", "logs is down")

    monkeypatch.setattr(logs, "follow", follow)
    said: list[str] = []
    api = FakeApi("ONGOING", "ONGOING", "ONGOING", "ONGOING", "ERROR")
    ended = watch.watch(api, "d1", show_line=lambda line: None, say=said.append)  # type: ignore[arg-type]
    assert ended["status"] == "ERROR"
    assert any("no deployment logs (SERVICE_UNAVAILABLE" in text for text in said)


def test_a_lost_gateway_is_not_waited_for(monkeypatch) -> None:
    def follow(*_: Any) -> str:
        raise ApiError(0, "UNREACHABLE", "gone")

    monkeypatch.setattr(logs, "follow", follow)
    with pytest.raises(ApiError):
        watch.watch(FakeApi("ONGOING"), "d1", show_line=lambda line: None, say=lambda t: None)  # type: ignore[arg-type]
