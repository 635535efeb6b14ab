"""The event stream's positions and resume buffer (pure): what a resume is served from the buffer,
and when it must read the topic again."""

from __future__ import annotations

import uuid

import pytest

from slipway_gateway.domain.event_stream import BadPosition, EventBuffer, Position, StreamEvent

ORG, OTHER = uuid.uuid4(), uuid.uuid4()
ENV = uuid.uuid4()


def _feed(buffer: EventBuffer, org: uuid.UUID, partition: int) -> StreamEvent:
    """The next record of ``partition``, read by the buffer's reader."""
    offset = buffer.position.offsets[partition]
    event = StreamEvent(
        partition=partition,
        offset=offset,
        organization_id=org,
        environment_id=ENV,
        type="deployer.DeploymentQueued",
        body={},
        after=buffer.position.passed(partition, offset),
    )
    buffer.add(event)
    return event


def test_a_position_round_trips_and_refuses_what_it_did_not_send() -> None:
    position = Position((3, 0, 17))
    assert Position.parse(position.encode(), 3) == position
    for bad in ("", "1-2", "1-2-3-4", "1-x-3", "1-²-3", "-1-2", f"1-2-{2**63}"):
        with pytest.raises(BadPosition):
            Position.parse(bad, 3)


def test_a_resume_gets_exactly_the_organizations_events_after_its_position() -> None:
    buffer = EventBuffer(2)
    buffer.start(Position((10, 20)))
    first = _feed(buffer, ORG, 0)
    _feed(buffer, OTHER, 1)
    second = _feed(buffer, ORG, 1)
    third = _feed(buffer, ORG, 0)
    assert buffer.covers(ORG, Position((10, 20)))
    assert list(buffer.after(ORG, Position((10, 20)))) == [first, second, third]
    # resumed after ``first``: its position says what was passed
    assert list(buffer.after(ORG, first.after)) == [second, third]
    assert list(buffer.after(ORG, third.after)) == []
    assert list(buffer.after(OTHER, Position((10, 20)))) != []


def test_a_position_older_than_the_start_is_not_covered() -> None:
    buffer = EventBuffer(2)
    buffer.start(Position((10, 20)))
    assert not buffer.covers(ORG, Position((9, 20)))
    assert buffer.covers(ORG, Position((10, 25)))


def test_evicted_events_raise_the_floor_so_the_resume_reads_the_topic_again() -> None:
    buffer = EventBuffer(1, per_organization=2)
    buffer.start(Position((0,)))
    gone = _feed(buffer, ORG, 0)
    kept = [_feed(buffer, ORG, 0), _feed(buffer, ORG, 0)]
    assert not buffer.covers(ORG, Position((0,)))  # ``gone`` would be missed
    assert buffer.covers(ORG, gone.after)
    assert list(buffer.after(ORG, gone.after)) == kept


def test_an_evicted_organization_is_no_longer_served_from_the_buffer() -> None:
    buffer = EventBuffer(1, organizations=1)
    buffer.start(Position((0,)))
    _feed(buffer, ORG, 0)
    _feed(buffer, OTHER, 0)  # ORG's log goes
    assert not buffer.covers(ORG, Position((0,)))
    assert buffer.covers(ORG, buffer.position)
    assert buffer.covers(OTHER, Position((0,)))
