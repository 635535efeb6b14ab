"""File variables are written inside the container's filesystem, never through its symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slipway_deployer.adapters.runtime import FailureReason, RuntimeFailure
from slipway_deployer.adapters.runtime.local import _write_files


def test_files_land_inside_the_rootfs_with_private_permissions(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "app.conf").write_text("from the image")
    _write_files(rootfs, {"/etc/app.conf": "mine", "/run/secrets/token": "t0k"})
    assert (rootfs / "etc" / "app.conf").read_text() == "mine"
    assert (rootfs / "run" / "secrets" / "token").read_text() == "t0k"
    assert (rootfs / "run" / "secrets" / "token").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("link_at", ["dir", "file"])
def test_a_symlink_in_the_image_cannot_point_the_write_at_the_host(
    tmp_path: Path, link_at: str
) -> None:
    rootfs, host = tmp_path / "rootfs", tmp_path / "host"
    rootfs.mkdir()
    host.mkdir()
    (host / "target").write_text("host file")
    if link_at == "dir":
        os.symlink(host, rootfs / "etc")
        with pytest.raises(RuntimeFailure) as refused:
            _write_files(rootfs, {"/etc/target": "evil"})
        assert refused.value.reason is FailureReason.INVALID_WORKLOAD
    else:
        (rootfs / "etc").mkdir()
        os.symlink(host / "target", rootfs / "etc" / "target")
        _write_files(rootfs, {"/etc/target": "mine"})  # the link is replaced, not followed
        assert not (rootfs / "etc" / "target").is_symlink()
    assert (host / "target").read_text() == "host file"


@pytest.mark.parametrize("path", ["/", "/etc/../x", "relative/./x"])
def test_bad_paths_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(RuntimeFailure):
        _write_files(tmp_path, {path: "x"})
