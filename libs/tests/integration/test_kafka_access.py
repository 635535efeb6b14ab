"""ACLs against the real broker: what ``grant`` creates is in effect when it returns."""

from __future__ import annotations

import uuid

import pytest

from slipway_libs.kafka_access import (
    AclError,
    Binding,
    Operation,
    Pattern,
    Resource,
    all_bindings,
    create_acls,
    delete_acls,
    effective_acls,
    revoke,
    wait_effective,
)

pytestmark = pytest.mark.integration


async def test_acls_are_in_effect_once_created_and_gone_once_revoked(devstack) -> None:
    admin, prefix = devstack.kafka, f"t{uuid.uuid4().hex[:8]}."
    wanted = all_bindings(prefix)
    try:
        await create_acls(admin, wanted)
        await wait_effective(admin, wanted, prefix)
        assert await effective_acls(admin, prefix) == {b.row() for b in wanted}
    finally:
        await revoke(admin, prefix)
    assert await effective_acls(admin, prefix) == set()


async def test_waiting_for_an_acl_never_created_fails_with_what_is_missing(devstack) -> None:
    admin, prefix = devstack.kafka, f"t{uuid.uuid4().hex[:8]}."
    created = Binding("catalog", Resource.TOPIC, f"{prefix}a", Pattern.LITERAL, Operation.READ)
    never = Binding("catalog", Resource.TOPIC, f"{prefix}b", Pattern.LITERAL, Operation.READ)
    try:
        await create_acls(admin, [created])
        await wait_effective(admin, [created], prefix)  # in effect, however busy the broker
        with pytest.raises(AclError, match="1 ACLs not in effect"):
            await wait_effective(admin, [created, never], prefix, timeout_s=0.5)
    finally:
        await delete_acls(admin, [created])
