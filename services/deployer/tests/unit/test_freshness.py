"""A request naming catalog revisions waits for the projection, bounded, then 409."""

from __future__ import annotations

import uuid

import pytest

from slipway_deployer.usecases import freshness


class Projection:
    """A fake of the adapter: the revisions it has reached, and the timeouts it was given."""

    def __init__(self, reached: dict[uuid.UUID, int]) -> None:
        self.at, self.timeouts = reached, []

    async def reached(self, project_id: uuid.UUID, revision: int, *, timeout_s: float) -> bool:
        self.timeouts.append(timeout_s)
        return self.at.get(project_id, 0) >= revision


async def test_a_projection_that_has_every_named_revision_serves_the_request() -> None:
    shop, blog = uuid.uuid4(), uuid.uuid4()
    projection = Projection({shop: 5, blog: 2})
    await freshness.caught_up(projection, {shop: 5, blog: 1}, wait_s=5)
    assert len(projection.timeouts) == 2 and all(0 < t <= 5 for t in projection.timeouts)


async def test_a_projection_still_behind_answers_409_with_retry_after() -> None:
    shop = uuid.uuid4()
    with pytest.raises(freshness.CatalogNotCaughtUp) as refused:
        await freshness.caught_up(Projection({shop: 4}), {shop: 5}, wait_s=0.01)
    assert refused.value.status_code == 409
    assert refused.value.code == "CATALOG_NOT_CAUGHT_UP"
    assert refused.value.headers == {"Retry-After": "1"}
    assert refused.value.details == {"project_id": str(shop), "revision": 5}
