"""The deployment state machine, stage runs and request queue, checked against tables written here.

The expectations below are typed out by hand (not read from the module's own tables): every
``State`` x ``Event`` pair is checked against them.
"""

from __future__ import annotations

import itertools
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slipway_deployer.domain.state_machine import (
    Action,
    ActionStatus,
    DeploymentRequest,
    Event,
    Freshness,
    RefusalCode,
    RunningStatus,
    StageRun,
    StageStatus,
    State,
    TransitionRefused,
    TriggerKind,
    action_status,
    allowed_actions,
    can_cancel,
    can_request,
    cancel_stages,
    drop,
    enqueue,
    freshness,
    is_busy,
    is_finished,
    next_request,
    plan_stages,
    request_event,
    stage_done,
    stage_failed,
    stage_started,
    transition,
)

S, E, A = State, Event, Action

NOT_ALLOWED = "ACTION_NOT_ALLOWED_IN_STATE"
NOTHING_TO_STOP = "NOTHING_TO_STOP"
NOTHING_TO_CANCEL = "NOTHING_TO_CANCEL"
NOT_CANCELABLE = "DELETE_NOT_CANCELABLE"
BEING_DELETED = "ENVIRONMENT_BEING_DELETED"
DELETED = "ENVIRONMENT_DELETED"
UNEXPECTED = "EVENT_NOT_EXPECTED_IN_STATE"

# What each request does in each state: a next state, or the refusal code. In a busy state an
# accepted request leaves the state as it is (the request waits in the queue).
Outcome = State | str
# fmt: off
REQUESTS: dict[State, tuple[Outcome, Outcome, Outcome, Outcome]] = {
    #                     DEPLOY             STOP              RESTART           DELETE
    S.READY:            (S.QUEUED,         NOTHING_TO_STOP,  NOT_ALLOWED,      S.DELETE_QUEUED),
    S.QUEUED:           (S.QUEUED,         S.QUEUED,         S.QUEUED,         S.QUEUED),
    S.BUILDING:         (S.BUILDING,       S.BUILDING,       S.BUILDING,       S.BUILDING),
    S.BUILD_ERROR:      (S.QUEUED,         S.STOP_QUEUED,    NOT_ALLOWED,      S.DELETE_QUEUED),
    S.DEPLOYING:        (S.DEPLOYING,      S.DEPLOYING,      S.DEPLOYING,      S.DEPLOYING),
    S.DEPLOYED:         (S.QUEUED,         S.STOP_QUEUED,    S.RESTART_QUEUED, S.DELETE_QUEUED),
    S.DEPLOYMENT_ERROR: (S.QUEUED,         S.STOP_QUEUED,    S.RESTART_QUEUED, S.DELETE_QUEUED),
    S.STOP_QUEUED:      (S.STOP_QUEUED,    S.STOP_QUEUED,    S.STOP_QUEUED,    S.STOP_QUEUED),
    S.STOPPING:         (S.STOPPING,       S.STOPPING,       S.STOPPING,       S.STOPPING),
    S.STOPPED:          (S.QUEUED,         NOTHING_TO_STOP,  NOT_ALLOWED,      S.DELETE_QUEUED),
    S.STOP_ERROR:       (S.QUEUED,         S.STOP_QUEUED,    NOT_ALLOWED,      S.DELETE_QUEUED),
    S.RESTART_QUEUED:   (S.RESTART_QUEUED, S.RESTART_QUEUED, S.RESTART_QUEUED, S.RESTART_QUEUED),
    S.RESTARTING:       (S.RESTARTING,     S.RESTARTING,     S.RESTARTING,     S.RESTARTING),
    S.RESTARTED:        (S.QUEUED,         S.STOP_QUEUED,    S.RESTART_QUEUED, S.DELETE_QUEUED),
    S.RESTART_ERROR:    (S.QUEUED,         S.STOP_QUEUED,    S.RESTART_QUEUED, S.DELETE_QUEUED),
    S.DELETE_QUEUED:    (BEING_DELETED,    BEING_DELETED,    BEING_DELETED,    BEING_DELETED),
    S.DELETING:         (BEING_DELETED,    BEING_DELETED,    BEING_DELETED,    BEING_DELETED),
    S.DELETED:          (DELETED,          DELETED,          DELETED,          DELETED),
    S.DELETE_ERROR:     (S.QUEUED,         S.STOP_QUEUED,    NOT_ALLOWED,      S.DELETE_QUEUED),
    S.CANCELING:        (S.CANCELING,      S.CANCELING,      S.CANCELING,      S.CANCELING),
    S.CANCELED:         (S.QUEUED,         S.STOP_QUEUED,    NOT_ALLOWED,      S.DELETE_QUEUED),
}
REQUEST_EVENTS = (E.REQUEST_DEPLOY, E.REQUEST_STOP, E.REQUEST_RESTART, E.REQUEST_DELETE)

# A cancel: a queued action is dropped at once, a running one goes through CANCELING (asking
# again there is a no-op), a running deletion cannot be canceled.
CANCEL: dict[State, Outcome] = {
    S.READY: NOTHING_TO_CANCEL,            S.QUEUED: S.CANCELED,
    S.BUILDING: S.CANCELING,               S.BUILD_ERROR: NOTHING_TO_CANCEL,
    S.DEPLOYING: S.CANCELING,              S.DEPLOYED: NOTHING_TO_CANCEL,
    S.DEPLOYMENT_ERROR: NOTHING_TO_CANCEL, S.STOP_QUEUED: S.CANCELED,
    S.STOPPING: S.CANCELING,               S.STOPPED: NOTHING_TO_CANCEL,
    S.STOP_ERROR: NOTHING_TO_CANCEL,       S.RESTART_QUEUED: S.CANCELED,
    S.RESTARTING: S.CANCELING,             S.RESTARTED: NOTHING_TO_CANCEL,
    S.RESTART_ERROR: NOTHING_TO_CANCEL,    S.DELETE_QUEUED: S.CANCELED,
    S.DELETING: NOT_CANCELABLE,            S.DELETED: DELETED,
    S.DELETE_ERROR: NOTHING_TO_CANCEL,     S.CANCELING: S.CANCELING,
    S.CANCELED: NOTHING_TO_CANCEL,
}

# The workers' events: only these pairs are accepted. Any other pair is refused with
# EVENT_NOT_EXPECTED_IN_STATE (ENVIRONMENT_DELETED in DELETED).
PROGRESS: dict[tuple[State, Event], State] = {
    (S.QUEUED, E.START_BUILD): S.BUILDING,
    (S.QUEUED, E.START_DEPLOY): S.DEPLOYING,
    (S.BUILDING, E.START_DEPLOY): S.DEPLOYING,
    (S.BUILDING, E.BUILD_FAILED): S.BUILD_ERROR,
    (S.BUILDING, E.TIMEOUT): S.BUILD_ERROR,
    (S.DEPLOYING, E.START_BUILD): S.BUILDING,  # a later stage has something to build
    (S.DEPLOYING, E.DEPLOY_SUCCEEDED): S.DEPLOYED,
    (S.DEPLOYING, E.DEPLOY_FAILED): S.DEPLOYMENT_ERROR,
    (S.DEPLOYING, E.TIMEOUT): S.DEPLOYMENT_ERROR,
    (S.STOP_QUEUED, E.START_STOP): S.STOPPING,
    (S.STOPPING, E.STOP_SUCCEEDED): S.STOPPED,
    (S.STOPPING, E.STOP_FAILED): S.STOP_ERROR,
    (S.STOPPING, E.TIMEOUT): S.STOP_ERROR,
    (S.RESTART_QUEUED, E.START_RESTART): S.RESTARTING,
    (S.RESTARTING, E.RESTART_SUCCEEDED): S.RESTARTED,
    (S.RESTARTING, E.RESTART_FAILED): S.RESTART_ERROR,
    (S.RESTARTING, E.TIMEOUT): S.RESTART_ERROR,
    (S.DELETE_QUEUED, E.START_DELETE): S.DELETING,
    (S.DELETING, E.DELETE_SUCCEEDED): S.DELETED,
    (S.DELETING, E.DELETE_FAILED): S.DELETE_ERROR,
    (S.DELETING, E.TIMEOUT): S.DELETE_ERROR,
    (S.CANCELING, E.CANCELED): S.CANCELED,
    (S.CANCELING, E.TIMEOUT): S.CANCELED,  # a stuck cancel must not hold the queue
}

ACTION_STATUS: dict[State, tuple[Action | None, ActionStatus]] = {
    S.READY:            (None,      ActionStatus.NEVER),
    S.QUEUED:           (A.DEPLOY,  ActionStatus.QUEUED),
    S.BUILDING:         (A.DEPLOY,  ActionStatus.ONGOING),
    S.BUILD_ERROR:      (A.DEPLOY,  ActionStatus.ERROR),
    S.DEPLOYING:        (A.DEPLOY,  ActionStatus.ONGOING),
    S.DEPLOYED:         (A.DEPLOY,  ActionStatus.SUCCESS),
    S.DEPLOYMENT_ERROR: (A.DEPLOY,  ActionStatus.ERROR),
    S.STOP_QUEUED:      (A.STOP,    ActionStatus.QUEUED),
    S.STOPPING:         (A.STOP,    ActionStatus.ONGOING),
    S.STOPPED:          (A.STOP,    ActionStatus.SUCCESS),
    S.STOP_ERROR:       (A.STOP,    ActionStatus.ERROR),
    S.RESTART_QUEUED:   (A.RESTART, ActionStatus.QUEUED),
    S.RESTARTING:       (A.RESTART, ActionStatus.ONGOING),
    S.RESTARTED:        (A.RESTART, ActionStatus.SUCCESS),
    S.RESTART_ERROR:    (A.RESTART, ActionStatus.ERROR),
    S.DELETE_QUEUED:    (A.DELETE,  ActionStatus.QUEUED),
    S.DELETING:         (A.DELETE,  ActionStatus.ONGOING),
    S.DELETED:          (A.DELETE,  ActionStatus.SUCCESS),
    S.DELETE_ERROR:     (A.DELETE,  ActionStatus.ERROR),
    S.CANCELING:        (A.DEPLOY,  ActionStatus.CANCELING),
    S.CANCELED:         (A.DEPLOY,  ActionStatus.CANCELED),
}
# fmt: on

IDLE = {
    S.READY,
    S.BUILD_ERROR,
    S.DEPLOYED,
    S.DEPLOYMENT_ERROR,
    S.STOPPED,
    S.STOP_ERROR,
    S.RESTARTED,
    S.RESTART_ERROR,
    S.DELETE_ERROR,
    S.CANCELED,
    S.DELETED,
}
ALL_CODES = {code.value for code in RefusalCode}


def expected(state: State, event: Event) -> Outcome:
    if event in REQUEST_EVENTS:
        return REQUESTS[state][REQUEST_EVENTS.index(event)]
    if event is E.CANCEL_REQUESTED:
        return CANCEL[state]
    if state is S.DELETED:
        return DELETED
    return PROGRESS.get((state, event), UNEXPECTED)


def outcome(state: State, event: Event) -> Outcome:
    try:
        return transition(state, event)
    except TransitionRefused as refused:
        return str(refused.code)


# --- the table, exhaustively -------------------------------------------------------------------


def test_the_expected_tables_cover_every_state_and_event() -> None:
    assert set(REQUESTS) == set(CANCEL) == set(ACTION_STATUS) == set(State)
    worker_events = {event for _, event in PROGRESS}
    assert worker_events | set(REQUEST_EVENTS) | {E.CANCEL_REQUESTED} == set(Event)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(Event))
def test_every_state_and_event_has_the_documented_outcome(state: State, event: Event) -> None:
    assert outcome(state, event) == expected(state, event)


@pytest.mark.parametrize("state", list(State))
def test_allowed_actions_and_can_request_agree_with_the_table(state: State) -> None:
    accepted = {
        action for action in Action if isinstance(expected(state, request_event(action)), State)
    }
    assert allowed_actions(state) == accepted
    assert all(can_request(state, action) == (action in accepted) for action in Action)


@pytest.mark.parametrize("state", list(State))
def test_busy_and_cancelable_states(state: State) -> None:
    assert is_busy(state) == (state not in IDLE)
    assert can_cancel(state) == isinstance(expected(state, E.CANCEL_REQUESTED), State)


def test_a_refusal_is_a_409_with_a_stable_code_and_the_state() -> None:
    with pytest.raises(TransitionRefused) as caught:
        transition(S.DELETING, E.REQUEST_DEPLOY)
    assert caught.value.status_code == 409
    assert caught.value.code == "ENVIRONMENT_BEING_DELETED"
    assert caught.value.details == {"state": "DELETING"}


def test_the_happy_paths() -> None:
    state = S.READY
    for event in (E.REQUEST_DEPLOY, E.START_BUILD, E.START_DEPLOY, E.DEPLOY_SUCCEEDED):
        state = transition(state, event)
    assert state is S.DEPLOYED
    for event in (E.REQUEST_STOP, E.START_STOP, E.STOP_SUCCEEDED):
        state = transition(state, event)
    assert state is S.STOPPED
    for event in (E.REQUEST_DELETE, E.START_DELETE, E.DELETE_SUCCEEDED):
        state = transition(state, event)
    assert state is S.DELETED


# --- action status -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(State))
def test_every_state_has_an_action_status(state: State) -> None:
    assert action_status(state) == ACTION_STATUS[state]


@pytest.mark.parametrize("action", list(Action))
def test_a_cancel_keeps_the_action_that_was_canceled(action: Action) -> None:
    assert action_status(S.CANCELING, canceled_action=action) == (action, ActionStatus.CANCELING)
    assert action_status(S.CANCELED, canceled_action=action) == (action, ActionStatus.CANCELED)


def test_the_vocabulary_is_the_designed_one() -> None:
    assert [a.value for a in Action] == ["DEPLOY", "STOP", "RESTART", "DELETE"]
    assert {s.value for s in StageStatus} == {
        "QUEUED",
        "ONGOING",
        "DONE",
        "ERROR",
        "SKIPPED",
        "CANCELED",
    }
    assert {s.value for s in RunningStatus} == {
        "STARTING",
        "RUNNING",
        "WARNING",
        "ERROR",
        "STOPPING",
        "STOPPED",
        "COMPLETED",
    }
    assert len(State) == 21
    assert len(ActionStatus) == 7


# --- properties of the machine -----------------------------------------------------------------

states = st.sampled_from(list(State))
events = st.lists(st.sampled_from(list(Event)), max_size=40)


def walk(state: State, sequence: list[Event]) -> list[State]:
    """Apply the events, skipping refused ones; every state visited."""
    visited = [state]
    for event in sequence:
        try:
            state = transition(state, event)
        except TransitionRefused as refused:
            assert refused.code in ALL_CODES
        visited.append(state)
    return visited


@given(states, events)
def test_random_event_sequences_stay_in_defined_states(start: State, sequence: list[Event]) -> None:
    for state in walk(start, sequence):
        assert isinstance(state, State)


@given(events)
def test_deleted_is_absorbing(sequence: list[Event]) -> None:
    assert set(walk(S.DELETED, sequence)) == {S.DELETED}
    for event in sequence:
        with pytest.raises(TransitionRefused) as caught:
            transition(S.DELETED, event)
        assert caught.value.code == "ENVIRONMENT_DELETED"


@given(events)
def test_from_any_reachable_idle_state_a_delete_is_accepted(sequence: list[Event]) -> None:
    for state in walk(S.READY, sequence):
        if not is_busy(state) and state is not S.DELETED:
            assert transition(state, E.REQUEST_DELETE) is S.DELETE_QUEUED


@given(states, events)
def test_a_busy_state_never_changes_on_an_accepted_request(
    start: State, sequence: list[Event]
) -> None:
    for state in walk(start, sequence):
        if is_busy(state):
            for action in allowed_actions(state):
                assert transition(state, request_event(action)) is state


# --- stage runs --------------------------------------------------------------------------------

# One letter per stage status; a valid run reads: done stages, then at most one of
# (an ongoing stage then queued ones | queued ones | an error then skipped ones | canceled ones).
_LETTER = {
    StageStatus.DONE: "D",
    StageStatus.ONGOING: "O",
    StageStatus.QUEUED: "Q",
    StageStatus.ERROR: "E",
    StageStatus.SKIPPED: "K",
    StageStatus.CANCELED: "C",
}
_VALID_RUN = re.compile(r"D*(OQ*|Q*|EK*|C+)")


def shape(run: list[StageRun]) -> str:
    return "".join(_LETTER[s.status] for s in run)


def test_a_plan_starts_queued_and_in_order() -> None:
    run = plan_stages(["databases", "jobs", "containers", "applications", "helm"])
    assert [s.stage_id for s in run] == ["databases", "jobs", "containers", "applications", "helm"]
    assert shape(run) == "QQQQQ"
    assert not is_finished(run)
    assert is_finished(plan_stages([]))


def test_a_plan_names_each_stage_once() -> None:
    with pytest.raises(ValueError):
        plan_stages(["a", "b", "a"])


def test_stages_run_in_order_and_a_success_finishes_the_run() -> None:
    run = plan_stages(["a", "b"])
    with pytest.raises(TransitionRefused) as caught:
        stage_started(run, 1)
    assert caught.value.code == "STAGE_OUT_OF_ORDER"
    run = stage_done(stage_started(run, 0), 0)
    run = stage_done(stage_started(run, 1), 1)
    assert shape(run) == "DD"
    assert is_finished(run)


def test_a_failure_skips_the_later_stages() -> None:
    run = stage_started(stage_done(stage_started(plan_stages("abcd"), 0), 0), 1)
    run = stage_failed(run, 1)
    assert shape(run) == "DEKK"
    assert is_finished(run)
    with pytest.raises(TransitionRefused) as caught:
        stage_started(run, 2)
    assert caught.value.code == "STAGE_NOT_QUEUED"


def test_a_cancel_marks_the_ongoing_and_queued_stages_canceled() -> None:
    run = cancel_stages(stage_started(stage_done(stage_started(plan_stages("abc"), 0), 0), 1))
    assert shape(run) == "DCC"
    with pytest.raises(TransitionRefused) as caught:
        cancel_stages(run)
    assert caught.value.code == "NOTHING_TO_CANCEL"


def test_stage_events_on_unknown_or_idle_stages_are_refused() -> None:
    run = plan_stages("ab")
    with pytest.raises(TransitionRefused) as unknown:
        stage_started(run, 2)
    assert unknown.value.code == "STAGE_UNKNOWN"
    with pytest.raises(TransitionRefused) as idle:
        stage_done(run, 0)
    assert idle.value.code == "STAGE_NOT_ONGOING"
    with pytest.raises(TransitionRefused):
        stage_failed(run, -1)


stage_ops = st.lists(
    st.tuples(st.sampled_from(["start", "done", "fail", "cancel"]), st.integers(-1, 6)),
    max_size=30,
)
_OPS = {"start": stage_started, "done": stage_done, "fail": stage_failed}


@given(st.integers(0, 6), stage_ops)
def test_stage_runs_keep_their_invariants(size: int, ops: list[tuple[str, int]]) -> None:
    run = plan_stages(f"stage-{i}" for i in range(size))
    for op, index in ops:
        before = list(run)
        try:
            run = cancel_stages(run) if op == "cancel" else _OPS[op](run, index)
        except TransitionRefused as refused:
            assert refused.code in ALL_CODES
            assert run == before
        assert _VALID_RUN.fullmatch(shape(run)), shape(run)
        assert shape(run).count("O") <= 1
        assert [s.stage_id for s in run] == [f"stage-{i}" for i in range(size)]
        if is_finished(run):
            assert not {"Q", "O"} & set(shape(run))
        if shape(before) != shape(run) and is_finished(before):
            pytest.fail("a finished run changed")


# --- the request queue -------------------------------------------------------------------------

SERVICE = uuid.uuid4()


def req(
    action: Action = A.DEPLOY,
    *,
    version: str | None = None,
    services: frozenset[uuid.UUID] = frozenset(),
    trigger: TriggerKind = TriggerKind.USER,
) -> DeploymentRequest:
    return DeploymentRequest(
        id=uuid.uuid4(), action=action, service_ids=services, version=version, trigger=trigger
    )


def test_an_identical_pending_request_merges_into_it() -> None:
    first = req(version="abc")
    queued = enqueue((), first)
    assert queued == (((first,), first, False))
    again = enqueue(queued.queue, req(version="abc"))
    assert again.merged and again.request == first and again.queue == (first,)


@pytest.mark.parametrize(
    "other",
    [
        req(A.STOP, version="abc"),
        req(version="def"),
        req(version="abc", services=frozenset({SERVICE})),
        req(version="abc", trigger=TriggerKind.GIT_PUSH),
    ],
)
def test_a_request_that_differs_in_anything_queues_behind(other: DeploymentRequest) -> None:
    first = req(version="abc")
    queued = enqueue((first,), other)
    assert not queued.merged and queued.queue == (first, other)


def test_only_the_last_pending_request_absorbs_an_identical_one() -> None:
    v1, v2 = req(version="v1"), req(version="v2")
    queued = enqueue((v1, v2), req(version="v1"))
    assert not queued.merged and [r.version for r in queued.queue] == ["v1", "v2", "v1"]


def test_nothing_queues_behind_a_pending_delete() -> None:
    with pytest.raises(TransitionRefused) as caught:
        enqueue((req(), req(A.DELETE)), req(A.DELETE))
    assert caught.value.code == "ENVIRONMENT_BEING_DELETED"


def test_the_next_request_is_the_oldest_and_drop_removes_one() -> None:
    first, second = req(), req(A.STOP)
    assert next_request(()) is None
    assert next_request((first, second)) == first
    assert drop((first, second), first.id) == (second,)
    assert drop((first, second), uuid.uuid4()) == (first, second)


requests = st.builds(
    DeploymentRequest,
    id=st.uuids(),
    action=st.sampled_from([A.DEPLOY, A.STOP, A.RESTART]),
    service_ids=st.sampled_from([frozenset(), frozenset({SERVICE})]),
    version=st.sampled_from([None, "v1"]),
    trigger=st.sampled_from([TriggerKind.USER, TriggerKind.SCHEDULE]),
)


@given(st.lists(requests, max_size=25))
def test_enqueue_keeps_order_and_merges_runs_of_identical_requests(
    incoming: list[DeploymentRequest],
) -> None:
    queue: tuple[DeploymentRequest, ...] = ()
    model: list[DeploymentRequest] = []
    for request in incoming:
        queued = enqueue(queue, request)
        if model and model[-1].does_the_same_as(request):
            assert queued.merged and queued.request == model[-1]
        else:
            model.append(request)
            assert not queued.merged and queued.request == request
        queue = queued.queue
        assert list(queue) == model
    assert [r.id for r in queue] == [r.id for r in model]
    assert all(not a.does_the_same_as(b) for a, b in itertools.pairwise(queue))


# --- freshness ---------------------------------------------------------------------------------


def test_freshness() -> None:
    assert freshness(None, "abc") is Freshness.NEVER_DEPLOYED
    assert freshness("abc", "abc") is Freshness.UP_TO_DATE
    assert freshness("abc", "def") is Freshness.OUT_OF_DATE
