"""The gateway's memory of each caller's catalog revisions (read-your-writes across services)."""

from __future__ import annotations

import uuid

from slipway_gateway.domain.revisions import CallerRevisions


def test_a_callers_newest_revision_of_a_project_is_what_its_deployer_requests_wait_for() -> None:
    revisions = CallerRevisions()
    ada, bob, shop, blog = (uuid.uuid4() for _ in range(4))
    revisions.saw(ada, {shop: 3})
    revisions.saw(ada, {shop: 2})  # an answer overtaken by a newer one lowers nothing
    revisions.saw(ada, {blog: 7})
    assert revisions.wanted(ada, shop, {}) == 3
    assert revisions.wanted(ada, blog, {}) == 7
    assert revisions.wanted(bob, shop, {}) == 0  # another caller's writes do not slow bob down
    # a revision the caller hands back counts too (its writes went through another gateway)
    assert revisions.wanted(bob, shop, {shop: 9, blog: 4}) == 9
    assert revisions.wanted(ada, shop, {shop: 1}) == 3


def test_memory_is_bounded_least_recently_seen_first() -> None:
    revisions = CallerRevisions(max_principals=2, max_projects=2)
    ada, bob, eve = (uuid.uuid4() for _ in range(3))
    p1, p2, p3 = (uuid.uuid4() for _ in range(3))
    revisions.saw(ada, {p1: 1})
    revisions.saw(ada, {p2: 1})
    revisions.saw(ada, {p3: 1})  # ada's oldest project goes
    assert [revisions.wanted(ada, p, {}) for p in (p1, p2, p3)] == [0, 1, 1]
    revisions.saw(bob, {p1: 5})
    revisions.saw(ada, {p2: 2})  # ada seen again: bob is now the least recent
    revisions.saw(eve, {p1: 1})
    assert revisions.wanted(bob, p1, {}) == 0
    assert revisions.wanted(ada, p2, {}) == 2
