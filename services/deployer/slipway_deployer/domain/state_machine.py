"""The deployment state machine of a service or an environment, and the pure rules around it.

Pure: no I/O, no clock. The API, the workers and the tests all go through these functions.

State machine (``transition``):
- Total: for every ``(State, Event)`` it returns the next state or raises ``TransitionRefused``
  (HTTP 409) with a stable ``RefusalCode``; nothing else. ``DELETED`` is absorbing.
- A state is *idle* (nothing queued or running: READY, DEPLOYED, STOPPED, RESTARTED, CANCELED,
  DELETED and every ``*_ERROR``) or *busy*. A request accepted in an idle state becomes the current
  one (``QUEUED``, ``STOP_QUEUED``...). In a busy state it is accepted without changing the state:
  it waits in the environment's queue, and the worker applies it again once the state is idle
  (it may be refused then, e.g. a RESTART queued behind a deploy that failed its build).
- While a deletion is queued or running every request is refused (``ENVIRONMENT_BEING_DELETED``);
  ``enqueue`` refuses anything behind a pending DELETE for the same reason.
- Cancel: a queued action is canceled at once (nothing ran); a running one goes through
  ``CANCELING`` until the worker has stopped it; a running deletion cannot be canceled.
  Asking again while ``CANCELING`` is a no-op (nothing new would be queued).
- Stop where nothing runs (READY, STOPPED) is refused with ``NOTHING_TO_STOP`` rather than being
  a silent no-op, so a caller knows no request was queued; the scheduler treats it as done.
- ``timeout`` fails the running action (``*_ERROR``); while canceling it forces ``CANCELED``, so a
  stuck cancel cannot hold the queue forever.

Stage runs (``plan_stages`` ...): stages run in order, at most one is ONGOING, a failure marks the
later stages SKIPPED, a cancel marks the ongoing and queued ones CANCELED; a finished run has no
QUEUED or ONGOING stage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple

from slipway_libs.errors import Clash


class State(StrEnum):
    READY = "READY"
    QUEUED = "QUEUED"
    BUILDING = "BUILDING"
    BUILD_ERROR = "BUILD_ERROR"
    DEPLOYING = "DEPLOYING"
    DEPLOYED = "DEPLOYED"
    DEPLOYMENT_ERROR = "DEPLOYMENT_ERROR"
    STOP_QUEUED = "STOP_QUEUED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    STOP_ERROR = "STOP_ERROR"
    RESTART_QUEUED = "RESTART_QUEUED"
    RESTARTING = "RESTARTING"
    RESTARTED = "RESTARTED"
    RESTART_ERROR = "RESTART_ERROR"
    DELETE_QUEUED = "DELETE_QUEUED"
    DELETING = "DELETING"
    DELETED = "DELETED"
    DELETE_ERROR = "DELETE_ERROR"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"


class Action(StrEnum):
    DEPLOY = "DEPLOY"
    STOP = "STOP"
    RESTART = "RESTART"
    DELETE = "DELETE"


class ActionStatus(StrEnum):
    QUEUED = "QUEUED"
    ONGOING = "ONGOING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    NEVER = "NEVER"


class StageStatus(StrEnum):
    QUEUED = "QUEUED"
    ONGOING = "ONGOING"
    DONE = "DONE"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"


class RunningStatus(StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    WARNING = "WARNING"
    ERROR = "ERROR"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"


class Freshness(StrEnum):
    NEVER_DEPLOYED = "NEVER_DEPLOYED"
    OUT_OF_DATE = "OUT_OF_DATE"
    UP_TO_DATE = "UP_TO_DATE"


class Event(StrEnum):
    REQUEST_DEPLOY = "request_deploy"
    REQUEST_STOP = "request_stop"
    REQUEST_RESTART = "request_restart"
    REQUEST_DELETE = "request_delete"
    START_BUILD = "start_build"
    BUILD_FAILED = "build_failed"
    START_DEPLOY = "start_deploy"
    DEPLOY_SUCCEEDED = "deploy_succeeded"
    DEPLOY_FAILED = "deploy_failed"
    START_STOP = "start_stop"
    STOP_SUCCEEDED = "stop_succeeded"
    STOP_FAILED = "stop_failed"
    START_RESTART = "start_restart"
    RESTART_SUCCEEDED = "restart_succeeded"
    RESTART_FAILED = "restart_failed"
    START_DELETE = "start_delete"
    DELETE_SUCCEEDED = "delete_succeeded"
    DELETE_FAILED = "delete_failed"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELED = "canceled"
    TIMEOUT = "timeout"


class RefusalCode(StrEnum):
    ACTION_NOT_ALLOWED_IN_STATE = "ACTION_NOT_ALLOWED_IN_STATE"
    NOTHING_TO_STOP = "NOTHING_TO_STOP"
    NOTHING_TO_CANCEL = "NOTHING_TO_CANCEL"
    DELETE_NOT_CANCELABLE = "DELETE_NOT_CANCELABLE"
    ENVIRONMENT_BEING_DELETED = "ENVIRONMENT_BEING_DELETED"
    ENVIRONMENT_DELETED = "ENVIRONMENT_DELETED"
    EVENT_NOT_EXPECTED_IN_STATE = "EVENT_NOT_EXPECTED_IN_STATE"
    STAGE_UNKNOWN = "STAGE_UNKNOWN"
    STAGE_NOT_QUEUED = "STAGE_NOT_QUEUED"
    STAGE_OUT_OF_ORDER = "STAGE_OUT_OF_ORDER"
    STAGE_NOT_ONGOING = "STAGE_NOT_ONGOING"


class TransitionRefused(Clash):
    """The current state forbids this; the API answers 409 with ``code``."""

    def __init__(self, code: RefusalCode, message: str, *, state: str | None = None) -> None:
        super().__init__(code, message)
        self.details = {"state": state} if state is not None else None


S, E, A = State, Event, Action
_ALL = frozenset(Action)
_NOT_RESTART = frozenset({A.DEPLOY, A.STOP, A.DELETE})

REQUEST_EVENTS: dict[Action, Event] = {
    A.DEPLOY: E.REQUEST_DEPLOY,
    A.STOP: E.REQUEST_STOP,
    A.RESTART: E.REQUEST_RESTART,
    A.DELETE: E.REQUEST_DELETE,
}
_REQUESTED = {event: action for action, event in REQUEST_EVENTS.items()}
_QUEUED_AS = {
    A.DEPLOY: S.QUEUED,
    A.STOP: S.STOP_QUEUED,
    A.RESTART: S.RESTART_QUEUED,
    A.DELETE: S.DELETE_QUEUED,
}

# What may be requested in each idle state. RESTART needs something believed to run; STOP needs
# something that may run; DEPLOY (also redeploy and rollback) and DELETE are always possible.
_ALLOWED_WHEN_IDLE: dict[State, frozenset[Action]] = {
    S.READY: frozenset({A.DEPLOY, A.DELETE}),
    S.BUILD_ERROR: _NOT_RESTART,
    S.DEPLOYED: _ALL,
    S.DEPLOYMENT_ERROR: _ALL,
    S.STOPPED: frozenset({A.DEPLOY, A.DELETE}),
    S.STOP_ERROR: _NOT_RESTART,
    S.RESTARTED: _ALL,
    S.RESTART_ERROR: _ALL,
    S.DELETE_ERROR: _NOT_RESTART,
    S.CANCELED: _NOT_RESTART,
    S.DELETED: frozenset(),
}
_IDLE = frozenset(_ALLOWED_WHEN_IDLE)
_BEING_DELETED = frozenset({S.DELETE_QUEUED, S.DELETING})

# The work itself, reported by the workers. An environment deploys stage by stage, so DEPLOYING
# may go back to BUILDING when a later stage has something to build.
_PROGRESS: dict[State, dict[Event, State]] = {
    S.QUEUED: {E.START_BUILD: S.BUILDING, E.START_DEPLOY: S.DEPLOYING},
    S.BUILDING: {E.START_DEPLOY: S.DEPLOYING, E.BUILD_FAILED: S.BUILD_ERROR},
    S.DEPLOYING: {
        E.START_BUILD: S.BUILDING,
        E.DEPLOY_SUCCEEDED: S.DEPLOYED,
        E.DEPLOY_FAILED: S.DEPLOYMENT_ERROR,
    },
    S.STOP_QUEUED: {E.START_STOP: S.STOPPING},
    S.STOPPING: {E.STOP_SUCCEEDED: S.STOPPED, E.STOP_FAILED: S.STOP_ERROR},
    S.RESTART_QUEUED: {E.START_RESTART: S.RESTARTING},
    S.RESTARTING: {E.RESTART_SUCCEEDED: S.RESTARTED, E.RESTART_FAILED: S.RESTART_ERROR},
    S.DELETE_QUEUED: {E.START_DELETE: S.DELETING},
    S.DELETING: {E.DELETE_SUCCEEDED: S.DELETED, E.DELETE_FAILED: S.DELETE_ERROR},
    S.CANCELING: {E.CANCELED: S.CANCELED},
}
_TIMED_OUT = {
    S.BUILDING: S.BUILD_ERROR,
    S.DEPLOYING: S.DEPLOYMENT_ERROR,
    S.STOPPING: S.STOP_ERROR,
    S.RESTARTING: S.RESTART_ERROR,
    S.DELETING: S.DELETE_ERROR,
    S.CANCELING: S.CANCELED,
}
_ON_CANCEL = {
    S.QUEUED: S.CANCELED,
    S.STOP_QUEUED: S.CANCELED,
    S.RESTART_QUEUED: S.CANCELED,
    S.DELETE_QUEUED: S.CANCELED,
    S.BUILDING: S.CANCELING,
    S.DEPLOYING: S.CANCELING,
    S.STOPPING: S.CANCELING,
    S.RESTARTING: S.CANCELING,
    S.CANCELING: S.CANCELING,
}


def request_event(action: Action) -> Event:
    return REQUEST_EVENTS[action]


def queued_state(action: Action) -> State:
    return _QUEUED_AS[action]


def is_busy(state: State) -> bool:
    """Something is queued, running or being canceled: new requests wait in the queue."""
    return state not in _IDLE


def transition(state: State, event: Event) -> State:
    if state is S.DELETED:
        raise TransitionRefused(RefusalCode.ENVIRONMENT_DELETED, "it was deleted", state=state)
    action = _REQUESTED.get(event)
    if action is not None:
        return _on_request(state, action)
    if event is E.CANCEL_REQUESTED:
        return _on_cancel(state)
    if event is E.TIMEOUT:
        next_state = _TIMED_OUT.get(state)
    else:
        next_state = _PROGRESS.get(state, {}).get(event)
    if next_state is None:
        raise TransitionRefused(
            RefusalCode.EVENT_NOT_EXPECTED_IN_STATE,
            f"{event} is not expected in {state}",
            state=state,
        )
    return next_state


def _on_request(state: State, action: Action) -> State:
    if state in _BEING_DELETED:
        raise TransitionRefused(
            RefusalCode.ENVIRONMENT_BEING_DELETED, "a deletion is queued or running", state=state
        )
    if is_busy(state):
        return state
    if action in _ALLOWED_WHEN_IDLE[state]:
        return _QUEUED_AS[action]
    if action is A.STOP:
        raise TransitionRefused(RefusalCode.NOTHING_TO_STOP, "nothing is running", state=state)
    raise TransitionRefused(
        RefusalCode.ACTION_NOT_ALLOWED_IN_STATE, f"{action} is not allowed in {state}", state=state
    )


def _on_cancel(state: State) -> State:
    if state in _ON_CANCEL:
        return _ON_CANCEL[state]
    if state is S.DELETING:
        raise TransitionRefused(
            RefusalCode.DELETE_NOT_CANCELABLE, "a running deletion cannot be canceled", state=state
        )
    raise TransitionRefused(
        RefusalCode.NOTHING_TO_CANCEL, "nothing is queued or running", state=state
    )


def can_request(state: State, action: Action) -> bool:
    try:
        transition(state, REQUEST_EVENTS[action])
    except TransitionRefused:
        return False
    return True


def allowed_actions(state: State) -> set[Action]:
    return {action for action in Action if can_request(state, action)}


def can_cancel(state: State) -> bool:
    return state in _ON_CANCEL


# The newer (action, status) form. CANCELING and CANCELED do not say which action was canceled,
# so the caller passes the action of the canceled request (DEPLOY by default: what is usually
# canceled). READY has no action yet.
_ACTION_STATUS: dict[State, tuple[Action | None, ActionStatus]] = {
    S.READY: (None, ActionStatus.NEVER),
    S.QUEUED: (A.DEPLOY, ActionStatus.QUEUED),
    S.BUILDING: (A.DEPLOY, ActionStatus.ONGOING),
    S.BUILD_ERROR: (A.DEPLOY, ActionStatus.ERROR),
    S.DEPLOYING: (A.DEPLOY, ActionStatus.ONGOING),
    S.DEPLOYED: (A.DEPLOY, ActionStatus.SUCCESS),
    S.DEPLOYMENT_ERROR: (A.DEPLOY, ActionStatus.ERROR),
    S.STOP_QUEUED: (A.STOP, ActionStatus.QUEUED),
    S.STOPPING: (A.STOP, ActionStatus.ONGOING),
    S.STOPPED: (A.STOP, ActionStatus.SUCCESS),
    S.STOP_ERROR: (A.STOP, ActionStatus.ERROR),
    S.RESTART_QUEUED: (A.RESTART, ActionStatus.QUEUED),
    S.RESTARTING: (A.RESTART, ActionStatus.ONGOING),
    S.RESTARTED: (A.RESTART, ActionStatus.SUCCESS),
    S.RESTART_ERROR: (A.RESTART, ActionStatus.ERROR),
    S.DELETE_QUEUED: (A.DELETE, ActionStatus.QUEUED),
    S.DELETING: (A.DELETE, ActionStatus.ONGOING),
    S.DELETED: (A.DELETE, ActionStatus.SUCCESS),
    S.DELETE_ERROR: (A.DELETE, ActionStatus.ERROR),
}


def action_status(
    state: State, *, canceled_action: Action = A.DEPLOY
) -> tuple[Action | None, ActionStatus]:
    if state is S.CANCELING:
        return canceled_action, ActionStatus.CANCELING
    if state is S.CANCELED:
        return canceled_action, ActionStatus.CANCELED
    return _ACTION_STATUS[state]


def freshness(deployed_version: str | None, desired_version: str) -> Freshness:
    """Versions are opaque (a commit, an image tag, a configuration snapshot id)."""
    if deployed_version is None:
        return Freshness.NEVER_DEPLOYED
    if deployed_version == desired_version:
        return Freshness.UP_TO_DATE
    return Freshness.OUT_OF_DATE


# --- stages of one deployment run -------------------------------------------------------------


@dataclass(frozen=True)
class StageRun:
    stage_id: str
    status: StageStatus = StageStatus.QUEUED


def plan_stages(stage_ids: Iterable[str]) -> list[StageRun]:
    ids = list(stage_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("a stage appears twice in the plan")
    return [StageRun(stage_id) for stage_id in ids]


def is_finished(run: Sequence[StageRun]) -> bool:
    return all(s.status not in (StageStatus.QUEUED, StageStatus.ONGOING) for s in run)


def stage_started(run: Sequence[StageRun], index: int) -> list[StageRun]:
    _check_index(run, index)
    if run[index].status is not StageStatus.QUEUED:
        raise TransitionRefused(
            RefusalCode.STAGE_NOT_QUEUED, f"stage {index} is {run[index].status}"
        )
    if any(s.status is not StageStatus.DONE for s in run[:index]):
        raise TransitionRefused(
            RefusalCode.STAGE_OUT_OF_ORDER, f"a stage before {index} is not done"
        )
    return _with(run, index, StageStatus.ONGOING)


def stage_done(run: Sequence[StageRun], index: int) -> list[StageRun]:
    _check_ongoing(run, index)
    return _with(run, index, StageStatus.DONE)


def stage_failed(run: Sequence[StageRun], index: int) -> list[StageRun]:
    _check_ongoing(run, index)
    failed = _with(run, index, StageStatus.ERROR)
    return failed[: index + 1] + [replace(s, status=StageStatus.SKIPPED) for s in run[index + 1 :]]


def cancel_stages(run: Sequence[StageRun]) -> list[StageRun]:
    """Applied once the running services are stopped (the state machine's ``canceled`` event)."""
    if is_finished(run):
        raise TransitionRefused(RefusalCode.NOTHING_TO_CANCEL, "the run is finished")
    pending = (StageStatus.QUEUED, StageStatus.ONGOING)
    return [replace(s, status=StageStatus.CANCELED) if s.status in pending else s for s in run]


def _check_index(run: Sequence[StageRun], index: int) -> None:
    if not 0 <= index < len(run):
        raise TransitionRefused(RefusalCode.STAGE_UNKNOWN, f"no stage {index} in this run")


def _check_ongoing(run: Sequence[StageRun], index: int) -> None:
    _check_index(run, index)
    if run[index].status is not StageStatus.ONGOING:
        raise TransitionRefused(
            RefusalCode.STAGE_NOT_ONGOING, f"stage {index} is {run[index].status}"
        )


def _with(run: Sequence[StageRun], index: int, status: StageStatus) -> list[StageRun]:
    return [replace(s, status=status) if i == index else s for i, s in enumerate(run)]


# --- the per-environment request queue --------------------------------------------------------


class TriggerKind(StrEnum):
    USER = "user"
    GIT_PUSH = "git_push"
    SCHEDULE = "schedule"
    PREVIEW = "preview"
    SYSTEM = "system"  # the deployer itself: tearing down what the catalog deleted


@dataclass(frozen=True, kw_only=True)
class DeploymentRequest:
    """A pending request. ``service_ids`` empty: the whole environment. ``version``: a commit,
    image tag or snapshot id; ``None``: the latest. Redeploy is DEPLOY of the deployed version."""

    id: uuid.UUID
    action: Action
    service_ids: frozenset[uuid.UUID] = frozenset()
    version: str | None = None
    trigger: TriggerKind = TriggerKind.USER

    def does_the_same_as(self, other: DeploymentRequest) -> bool:
        return (self.action, self.service_ids, self.version, self.trigger) == (
            other.action,
            other.service_ids,
            other.version,
            other.trigger,
        )


class Enqueued(NamedTuple):
    queue: tuple[DeploymentRequest, ...]
    request: DeploymentRequest  # the pending request that answers for the new one
    merged: bool


def enqueue(queue: Sequence[DeploymentRequest], request: DeploymentRequest) -> Enqueued:
    """Append in order; a request identical to the last pending one merges into it.

    Only the last: merging into an earlier one would run the new intent before requests queued
    after it (``[DEPLOY v1, DEPLOY v2] + DEPLOY v1`` must end on v1).
    """
    if any(pending.action is A.DELETE for pending in queue):
        raise TransitionRefused(
            RefusalCode.ENVIRONMENT_BEING_DELETED, "a deletion is queued; nothing can follow it"
        )
    if queue and queue[-1].does_the_same_as(request):
        return Enqueued(tuple(queue), queue[-1], merged=True)
    return Enqueued((*queue, request), request, merged=False)


def next_request(queue: Sequence[DeploymentRequest]) -> DeploymentRequest | None:
    return queue[0] if queue else None


def drop(
    queue: Sequence[DeploymentRequest], request_id: uuid.UUID
) -> tuple[DeploymentRequest, ...]:
    """The queue without that request (started, or canceled while pending)."""
    return tuple(pending for pending in queue if pending.id != request_id)
