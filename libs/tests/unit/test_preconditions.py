"""If-Match against a resource's current version."""

from __future__ import annotations

import pytest

from slipway_libs.preconditions import PreconditionFailed, etag, matches, require


def test_the_etag_is_the_quoted_version() -> None:
    assert etag(42) == '"42"'


@pytest.mark.parametrize("if_match", ['"7"', "7", "*", '"3", "7"', ' "5" ,"7" '])
def test_a_precondition_naming_the_current_version_or_any_holds(if_match: str) -> None:
    assert matches(if_match, 7)
    require(if_match, 7)


@pytest.mark.parametrize("if_match", ['"6"', 'W/"7"', '"77"', "", '"7 "', "seven"])
def test_another_version_or_a_weak_tag_fails_with_the_current_one(if_match: str) -> None:
    with pytest.raises(PreconditionFailed) as failed:
        require(if_match, 7)
    assert failed.value.status_code == 412
    assert failed.value.code == "PRECONDITION_FAILED"
    assert failed.value.details == {"current_version": 7, "etag": '"7"'}
    assert failed.value.headers == {"ETag": '"7"'}


def test_no_precondition_always_holds() -> None:
    require(None, 7)
