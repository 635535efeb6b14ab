"""``--watch`` with a fake of the API (the organization's event stream, the logs' stream and
the deployment's reads): driven by the events, it says each transition once and ends with the
deployment's final state; it goes on without the logs, and without the event stream (reading
the deployment then, and saying so)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from slipway_cli import events, logs, watch
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

    def environment(self, env: str) -> dict[str, Any]:
        return {"id": env, "organization_id": "o1"}


def _event(kind: str, deployment: str = "d1", **data: Any) -> events.Event:
    body = {"deployment_id": deployment, "data": {"deployment_id": deployment, **data}}
    return events.Event(f"deployer.{kind}", "1-2", body)


STORY = [
    _event("DeploymentStarted"),
    _event("DeploymentStarted", deployment="other"),  # another deployment: not said
    _event("DeploymentStageChanged", stage_name="apps", status="ONGOING"),
    _event("ServiceStatusChanged", service_id="s1", state="DEPLOYING"),
    _event("ServiceStatusChanged", service_id="s1", state="DEPLOYED", running_status="RUNNING"),
    _event("DeploymentStageChanged", stage_name="apps", status="DONE"),
    _event("DeploymentSucceeded", duration_s=1.0),
]


def stream_of(story: list[events.Event]) -> Any:
    def follow(org: str, *, on_following: Any, **_: Any) -> Iterator[events.Event]:
        assert org == "o1"
        on_following()
        yield from story

    return follow


def no_stream(org: str, **_: Any) -> Iterator[events.Event]:
    raise ApiError(404, "NOT_FOUND", "no such route")
    yield  # a generator, as the real one


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch) -> None:
    monkeypatch.setattr(watch, "_READ_EVERY_S", 0.01)
    monkeypatch.setattr(events, "follow", stream_of(STORY))


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
    # the read after the subscription already showed the end: older events are not said
    assert "  s1: DEPLOYED (RUNNING)" in said and "deployment ONGOING" not in said


def test_the_event_stream_drives_the_watch_without_reading_the_deployment_again(
    monkeypatch,
) -> None:
    monkeypatch.setattr(logs, "follow", lambda *_: "SUCCESS")
    said: list[str] = []
    api = FakeApi("QUEUED", "SUCCESS")
    ended = watch.watch(
        api, "d1", show_line=lambda line: None, say=said.append, environment_id="e1"
    )  # type: ignore[arg-type]
    assert ended["status"] == "SUCCESS"
    assert api.reads == 2  # once when subscribed, once at the end: never polled
    assert said[:2] == ["deployment QUEUED", "stage apps: ONGOING"]
    assert said.index("  s1: DEPLOYING") < said.index("  s1: DEPLOYED (RUNNING)")


def test_without_the_event_stream_the_deployment_is_read_and_that_is_said(monkeypatch) -> None:
    monkeypatch.setattr(events, "follow", no_stream)
    monkeypatch.setattr(logs, "follow", lambda *_: "SUCCESS")
    said: list[str] = []
    api = FakeApi("ONGOING", "ONGOING", "SUCCESS")
    ended = watch.watch(
        api, "d1", show_line=lambda line: None, say=said.append, environment_id="e1"
    )  # type: ignore[arg-type]
    assert ended["status"] == "SUCCESS"
    assert (
        said[0] == "no event stream (NOT_FOUND: no such route); reading the deployment every second"
    )
    assert said.count("deployment SUCCESS") == 1


def test_without_the_logs_the_deployment_is_still_followed_to_its_end(monkeypatch) -> None:
    def follow(*_: Any) -> str:
        raise ApiError(503, "SERVICE_UNAVAILABLE", "logs is down")

    monkeypatch.setattr(logs, "follow", follow)
    said: list[str] = []
    failing = [*STORY[:-1], _event("DeploymentFailed", reason="BUILD_FAILED", message="exit 1")]
    monkeypatch.setattr(events, "follow", stream_of(failing))
    api = FakeApi("ONGOING", "ERROR")
    ended = watch.watch(api, "d1", show_line=lambda line: None, say=said.append)  # type: ignore[arg-type]
    assert ended["status"] == "ERROR"
    assert any("no deployment logs (SERVICE_UNAVAILABLE" in text for text in said)
    assert "deployment ERROR (BUILD_FAILED: exit 1)" in said


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
