"""Listing the buildah store's containers is tried again when it fails: the store is shared with
every stack on the machine, and a listing can fail while another process removes a container
(buildah exited 125 in a clean-clone run beside a busy stack). A fake ``buildah`` on PATH plays
the store."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from slipway_deployer.adapters.runtime._buildah import Buildah, BuildahStorage
from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure


def fake_buildah(directory: Path, failures: int) -> Path:
    """A ``buildah`` that fails ``failures`` times (exit 125), then lists two containers."""
    calls = directory / "calls"
    script = directory / "buildah"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{calls}" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "{calls}"\n'
        f'if [ "$n" -le {failures} ]; then echo "container vanished" >&2; exit 125; fi\n'
        'printf "slipway-a\\nslipway-b\\n"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return calls


@pytest.fixture
def buildah(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Buildah:
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    return Buildah(BuildahStorage(root=str(tmp_path / "root"), runroot=str(tmp_path / "run")))


async def test_a_listing_that_fails_while_the_store_changes_is_tried_again(
    buildah: Buildah, tmp_path: Path
) -> None:
    calls = fake_buildah(tmp_path, failures=2)
    assert await buildah.containers() == ["slipway-a", "slipway-b"]
    assert calls.read_text().strip() == "3"


async def test_a_listing_that_keeps_failing_is_a_runtime_error_naming_why(
    buildah: Buildah, tmp_path: Path
) -> None:
    calls = fake_buildah(tmp_path, failures=99)
    with pytest.raises(RuntimeFailure) as failed:
        await buildah.containers()
    assert failed.value.reason is FailureReason.RUNTIME_ERROR
    assert "container vanished" in failed.value.message
    assert calls.read_text().strip() == "5"
