"""``--watch`` with a fake of the API (the logs' stream and the deployment's reads): it ends
with the deployment's final state, says each transition once, and goes on without the logs."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import typer

from slipway_cli import logs, watch
from slipway_cli.api import Accepted, Deployment
from slipway_cli.client import ApiError
from slipway_cli.commands import deploying
from slipway_cli.output import Output


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


def _interrupt(*_: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["logs setup", "logs stream", "final read"])
def test_ctrl_c_at_any_point_of_the_watch_stops_watching_with_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """Through ``deploy --watch``'s own path (``accepted``): the interrupt, wherever it lands
    in the main thread, ends in exit 130 and the line saying the deployment goes on."""
    api = FakeApi("ONGOING")
    if where == "logs setup":  # before the stream's request is sent
        monkeypatch.setattr(logs, "auth_headers", _interrupt)
    elif where == "logs stream":
        monkeypatch.setattr(logs, "follow", _interrupt)
    else:  # the logs ended; the deployment is read once more
        monkeypatch.setattr(logs, "follow", lambda *_: "SUCCESS")
        reader = api.deployment  # the transitions' reader (its own thread) goes on reading

        def final_read(deployment_id: str) -> Deployment:
            if threading.current_thread() is threading.main_thread():
                raise KeyboardInterrupt
            return reader(deployment_id)

        monkeypatch.setattr(api, "deployment", final_read)
    monkeypatch.setattr(deploying, "api", api)
    request = Accepted(deployment_id="d1", environment_id="e1", action="deploy")
    with pytest.raises(typer.Exit) as ended:
        deploying.accepted(request, True, Output.table)
    assert ended.value.exit_code == 130
    err = capsys.readouterr().err
    assert "deploy queued: deployment d1" in err
    assert "stopped watching; it goes on: slipway deployments show d1" in err
