"""``--watch``: follow one deployment until it ends, driven by the platform's streams.

Two streams run side by side: the deployment's log lines (``logs.follow``, in the main thread:
its ``end`` event says the deployment ended) and the organization's event stream
(``events.follow``, in a thread of its own), from which each stage and service transition of
this deployment is said as it happens. Nothing is polled: once the event stream says it is
subscribed, the deployment is read once (what happened before the subscription), and every
later transition comes through the stream. At the end the deployment is read once more: its
result, and the environment's URLs.

Without the event stream (an older gateway, a refusal), the deployment is read every second
instead, and said so. Ctrl-C stops watching only: the deployment goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slipway_cli import events, logs
from slipway_cli.api import Deployment, EnvironmentStatus, Slipway
from slipway_cli.client import ApiError

FINAL = frozenset({"SUCCESS", "ERROR", "CANCELED"})
_READ_EVERY_S = 1.0  # only without the event stream
_SUBSCRIBE_S = 15.0
_END_EVENT_S = 30.0  # after the logs' end, how long the deployment's own end may lag
_AFTER_END_TRIES = 30

Say = Callable[[str], None]


@dataclass
class Transitions:
    """What was already said of the deployment, each stage and each service, so each change
    is said once, whether it came from a read or from an event."""

    seen: dict[str, str] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # service id -> name
    lock: threading.Lock = field(default_factory=threading.Lock)

    def changes(self, deployment: Deployment, *, services: bool = True) -> list[str]:
        for stage in deployment.get("stages", []):
            for run in stage.get("services", []):
                self.names[str(run.get("service_id"))] = str(run.get("name"))
        states = _states(deployment)
        if not services:
            states = [state for state in states if not state[0].startswith("service:")]
        return self._new(states)

    def event(self, event: events.Event) -> list[str]:
        data = event.data.get("data", {})
        kind = event.type.removeprefix("deployer.")
        if kind == "DeploymentStageChanged":
            key = f"stage:{data.get('stage_name')}"
        elif kind == "ServiceStatusChanged":
            key = f"service:{data.get('service_id')}"
        else:
            key = "deployment"
        status = str(data.get("state") or data.get("status") or TERMINAL_STATUS.get(kind, kind))
        return self._new([(key, events.describe(event, self.names), _rank(status))])

    def _new(self, states: list[tuple[str, str, int]]) -> list[str]:
        """Changes only, and never back: an event older than the read that came before it
        (both follow the subscription) is not said."""
        said = []
        with self.lock:
            for key, text, rank in states:
                if self.seen.get(key) != text and rank >= self.ranks.get(key, -1):
                    self.seen[key], self.ranks[key] = text, rank
                    said.append(text)
        return said


TERMINAL_STATUS = {"DeploymentQueued": "QUEUED", "DeploymentStarted": "ONGOING"}
_FIRST = ("QUEUED", "STOP_QUEUED", "RESTART_QUEUED", "DELETE_QUEUED")
_UNDER_WAY = ("ONGOING", "BUILDING", "DEPLOYING", "STOPPING", "RESTARTING", "DELETING", "CANCELING")


def _rank(status: str) -> int:
    """How far along a deployment, stage or service is: queued, under way, ended."""
    if status in _FIRST:
        return 0
    return 1 if status in _UNDER_WAY else 2


def _states(deployment: Deployment) -> list[tuple[str, str, int]]:
    status = str(deployment.get("status"))
    states = [("deployment", f"deployment {status}", _rank(status))]
    for stage in deployment.get("stages", []):
        name, status = stage.get("name"), str(stage.get("status"))
        states.append((f"stage:{name}", f"stage {name}: {status}", _rank(status)))
        for run in stage.get("services", []):
            status = str(run.get("status"))
            text = f"  {run.get('name')}: {status}"
            if run.get("reason"):
                text += f" ({run['reason']}: {run.get('message') or ''})"
            states.append((f"service:{run.get('service_id')}", text, _rank(status)))
    return states


def urls(status: EnvironmentStatus) -> list[tuple[str, str]]:
    """``(service name, url)`` of every service that has one."""
    return [(s.get("name", ""), u) for s in status.get("services", []) for u in s.get("urls", [])]


class _EventReader:
    """The organization's stream, in a thread: says this deployment's transitions and notes
    its end (``ended``); ``subscribed`` once the stream will bring every later event."""

    def __init__(self, org: str, deployment_id: str, transitions: Transitions, say: Say) -> None:
        self.org, self.deployment_id = org, deployment_id
        self.transitions, self.say = transitions, say
        self.subscribed, self.ended = threading.Event(), threading.Event()
        # set once the deployment was read: what the stream brings is said after it
        self.ready = threading.Event()
        self.failure: ApiError | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            stream = events.follow(self.org, on_following=self.subscribed.set)
            for event in stream:
                if event.data.get("deployment_id") != self.deployment_id:
                    continue
                self.ready.wait()
                for text in self.transitions.event(event):
                    self.say(text)
                if event.type in events.TERMINAL:
                    self.ended.set()
                    return
        except ApiError as exc:
            self.failure = exc
        finally:
            self.subscribed.set()  # a failure wakes whoever waits for the subscription


def watch(
    api: Slipway,
    deployment_id: str,
    *,
    show_line: logs.Print,
    say: Say,
    environment_id: str | None = None,
) -> Deployment:
    """Follow until the deployment ends; answer it as it ended (Ctrl-C goes up)."""
    transitions = Transitions()
    environment_id = environment_id or str(api.deployment(deployment_id).get("environment_id"))
    org = str(api.environment(environment_id).get("organization_id"))
    reader = _EventReader(org, deployment_id, transitions, say)
    reader.thread.start()
    subscribed = reader.subscribed.wait(_SUBSCRIBE_S) and reader.failure is None
    stop = threading.Event()
    if subscribed:
        try:
            for text in transitions.changes(api.deployment(deployment_id)):
                say(text)  # what happened before the stream was subscribed
        finally:
            reader.ready.set()
    else:
        reader.ready.set()
        why = f"{reader.failure.code}: {reader.failure.message}" if reader.failure else "silent"
        say(f"no event stream ({why}); reading the deployment every second")
        threading.Thread(
            target=_read_transitions,
            args=(api, deployment_id, transitions, say, stop),
            daemon=True,
        ).start()
    tries: int | None = _AFTER_END_TRIES
    try:
        logs.follow(f"/deployments/{deployment_id}/logs", {"tail": "5000"}, show_line, say)
        _wait(reader, within_s=_END_EVENT_S)
    except ApiError as exc:
        if exc.status == 0:
            raise
        # without the logs (their service down, the token not allowed to read them) the
        # deployment is still followed: its transitions, until it ends
        say(f"no deployment logs ({exc.code}: {exc.message}); following its status")
        tries = None
        _wait(reader)
    finally:
        stop.set()
    ended = _until_final(api, deployment_id, tries)
    for text in transitions.changes(ended, services=not reader.ended.is_set()):
        say(text)
    return ended


def _wait(reader: _EventReader, within_s: float | None = None) -> None:
    """Until the stream brings the end, or stops (then the deployment is read until it ends),
    or ``within_s`` passed."""
    deadline = None if within_s is None else time.monotonic() + within_s
    while reader.thread.is_alive() and not reader.ended.wait(0.5):
        if deadline is not None and time.monotonic() > deadline:
            return


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
    """Once the stream said the end, the first read shows it (the event is published after
    the deployer committed it). Without it (the logs' ``end`` only, or no stream at all) the
    deployment is read until it shows the end (``tries`` reads, or as long as it takes)."""
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
