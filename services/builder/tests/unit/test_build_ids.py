"""The ids a build's RUN steps run as (issue 10, item 9): never the host's root."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from slipway_builder.adapters.buildah import storage_flags
from slipway_builder.config import BuilderSettings


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> BuilderSettings:
    monkeypatch.setenv("SLIPWAY_BUILDER_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.setenv("SLIPWAY_BUILDAH_ROOT", "/s/root")
    monkeypatch.setenv("SLIPWAY_BUILDAH_RUNROOT", "/s/run")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return BuilderSettings()


def test_root_in_a_build_is_an_unprivileged_host_id_in_a_store_of_its_own(monkeypatch) -> None:
    flags = storage_flags(_settings(monkeypatch))
    assert flags[flags.index("--userns-uid-map") + 1] == "0:700000000:65536"
    assert flags[flags.index("--userns-gid-map") + 1] == "0:700000000:65536"
    # not the store the devstack and the deployer share: its layers are owned by other ids
    assert flags[flags.index("--root") + 1] == "/s/root-ids700000000-65536"
    assert flags[flags.index("--runroot") + 1] == "/s/run-ids700000000-65536"


@pytest.mark.parametrize("base", ["0", "1000"])
def test_a_range_over_the_hosts_own_users_is_refused(monkeypatch, base: str) -> None:
    with pytest.raises(ValidationError):
        _settings(monkeypatch, SLIPWAY_BUILDER_BUILD_ID_BASE=base)
