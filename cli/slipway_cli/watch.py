"""``--watch``: follow one deployment until it ends.

Two things run side by side: the deployment's log lines, followed through the logs route's
Server-Sent Events (``logs.follow``: the stream's ``end`` event says the deployment ended), and
a reader of the deployment itself that prints each stage and service transition as it sees it
(the public API has no event stream of deployments yet, so transitions are read every second;
the logs, which carry what happens, are not polled). At the end the deployment is read once
more: its final stages, its result, and the environment's URLs.

Ctrl-C stops watching only: the deployment goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from slipway_cli import logs
from slipway_cli.api import Deployment, EnvironmentStatus, Slipway
from slipway_cli.client import ApiError

FINAL = frozenset({"SUCCESS", "ERROR", "CANCELED"})
_READ_EVERY_S = 1.0
_AFTER_END_TRIES = 30

Say = Callable[[str], None]


@dataclass
class Transitions:
    """What was already said of each stage and service, so each change is said once."""

    seen: dict[str, str] = field(default_factory=dict)

    def changes(self, deployment: Deployment) -> list[str]:
        said = []
        for key, text in _states(deployment):
            if self.seen.get(key) != text:
                self.seen[key] = text
                said.append(text)
        return said


def _states(deployment: Deployment) -> list[tuple[str, str]]:
    states = [("deployment", f"deployment {deployment.get('status')}")]
    for stage in deployment.get("stages", []):
        name = stage.get("name")
        states.append((f"stage:{name}", f"stage {name}: {stage.get('status')}"))
        for run in stage.get("services", []):
            text = f"  {run.get('name')}: {run.get('status')}"
            if run.get("reason"):
                text += f" ({run['reason']}: {run.get('message') or ''})"
            states.append((f"service:{run.get('service_id')}", text))
    return states


def urls(status: EnvironmentStatus) -> list[tuple[str, str]]:
    """``(service name, url)`` of every service that has one."""
    return [(s.get("name", ""), u) for s in status.get("services", []) for u in s.get("urls", [])]


def watch(
    api: Slipway,
    deployment_id: str,
    *,
    show_line: logs.Print,
    say: Say,
) -> Deployment:
    """Follow until the deployment ends; answer it as it ended (Ctrl-C goes up)."""
    transitions = Transitions()
    stop = threading.Event()
    reader = threading.Thread(
        target=_read_transitions, args=(api, deployment_id, transitions, say, stop), daemon=True
    )
    reader.start()
    tries: int | None = _AFTER_END_TRIES
    try:
        logs.follow(f"/deployments/{deployment_id}/logs", {"tail": "5000"}, show_line, say)
    except ApiError as exc:
        if exc.status == 0:
            raise
        # without the logs (their service down, the token not allowed to read them) the
        # deployment is still followed: its transitions, until it ends
        say(f"no deployment logs ({exc.code}: {exc.message}); following its status")
        tries = None
    finally:
        stop.set()
        reader.join(timeout=5)
    ended = _until_final(api, deployment_id, tries)
    for text in transitions.changes(ended):
        say(text)
    return ended


def _read_transitions(
    api: Slipway,
    deployment_id: str,
    transitions: Transitions,
    say: Say,
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        try:
            for text in transitions.changes(api.deployment(deployment_id)):
                say(text)
        except ApiError:
            pass  # a transient read failure: the log stream decides when the watch ends
        stop.wait(_READ_EVERY_S)


def _until_final(api: Slipway, deployment_id: str, tries: int | None) -> Deployment:
    """The logs' ``end`` comes from the deployer's final event; the deployment read right
    after may lag one moment behind it: read until it shows the end (``tries`` reads, or
    for as long as it takes when ``None``)."""
    pause = threading.Event()
    count = 0
    while True:
        deployment = api.deployment(deployment_id)
        count += 1
        if deployment.get("status") in FINAL or (tries is not None and count >= tries):
            return deployment
        pause.wait(_READ_EVERY_S)


def result_lines(deployment: Deployment, status: EnvironmentStatus | None) -> list[str]:
    """The last lines: how it ended, why when it failed, where the app answers."""
    ended = deployment.get("status")
    lines = [f"deployment {deployment.get('id')} ended: {ended}"]
    if ended != "SUCCESS":
        for stage in deployment.get("stages", []):
            for run in stage.get("services", []):
                if run.get("reason"):
                    lines.append(f"  {run.get('name')}: {run['reason']}: {run.get('message')}")
        if deployment.get("reason"):
            lines.append(f"  {deployment['reason']}: {deployment.get('message') or ''}")
    if status is not None:
        lines.extend(f"  {name}: {url}" for name, url in urls(status))
    return lines


def ended_ok(deployment: Deployment) -> bool:
    return deployment.get("status") == "SUCCESS"
