"""The deployer's public request bodies refuse hostile text and loose types (issue 10)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from slipway_deployer.api.schemas import ServiceDeployIn


@pytest.mark.parametrize(
    "body",
    [
        {"chart_version": "1.2.3\x00"},
        {"chart_version": "1.2.3\u202e"},
        {"chart_version": "1.2\u200b.3"},
        {"commit": "abcdef0\n"},
        {"image_tag": 1},
        {"commit": True},
        {"unknown": "x"},
    ],
)
def test_hostile_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ServiceDeployIn.model_validate(body)


def test_a_version_passes() -> None:
    assert ServiceDeployIn.model_validate({"chart_version": "1.2.3"}).version() == "1.2.3"
    assert ServiceDeployIn.model_validate({"commit": "abcdef0"}).version() == "abcdef0"
