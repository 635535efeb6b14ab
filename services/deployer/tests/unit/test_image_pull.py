"""The local runtime's pulls: a registry the platform does not connect to, or another
organization's builds in the platform's registry, are refused before buildah runs; the platform's
registry is pulled with its auth file (never credentials in argv), other registries over TLS."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from slipway_deployer.adapters.runtime import _buildah
from slipway_deployer.adapters.runtime._buildah import Buildah, BuildahStorage, RegistryAccess
from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure
from slipway_libs.egress import EgressPolicy
from slipway_libs.process import ProcessResult
from slipway_libs.registries import RegistryCredentials

PLATFORM = "127.0.0.1:15000"
ORG = "0b6c8f0e-5d4e-4c6a-9a53-1f2d3c4b5a69"
OTHER = "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of every buildah command (none really runs)."""
    commands: list[list[str]] = []

    async def fake_run(argv: list[str], **_: Any) -> ProcessResult:
        commands.append(list(argv))
        return ProcessResult(returncode=0, stdout="container-id\n", stderr_tail=())

    monkeypatch.setattr(_buildah, "run_process", fake_run)
    return commands


def buildah(tmp_path: Path, egress: str = "") -> Buildah:
    access = RegistryAccess(
        platform=PLATFORM,
        credentials=RegistryCredentials("deployer", "pull-s3cret"),
        egress=EgressPolicy.from_setting(egress),
    )
    storage = BuildahStorage(root="/r", runroot="/rr", registry=access)
    return Buildah(storage, authfile=tmp_path / "state" / "registry-auth.json")


@pytest.mark.parametrize(
    "image",
    [
        "127.0.0.1:5000/team/app:1",
        "localhost:15001/team/app:1",
        "169.254.169.254/x:1",
        "10.0.0.5:5000/x:1",
    ],
)
async def test_an_internal_registry_is_refused_before_buildah_runs(
    tmp_path: Path, ran: list[list[str]], image: str
) -> None:
    with pytest.raises(RuntimeFailure) as refused:
        await buildah(tmp_path).from_image(image, "c", organization_id=ORG)
    assert refused.value.reason is FailureReason.TARGET_NOT_ALLOWED
    assert "does not connect to" in refused.value.message
    assert ran == []


async def test_another_organizations_build_is_refused(tmp_path: Path, ran: list[list[str]]) -> None:
    with pytest.raises(RuntimeFailure) as refused:
        await buildah(tmp_path).from_image(
            f"{PLATFORM}/slipway/{OTHER}/svc:abc", "c", organization_id=ORG
        )
    assert refused.value.reason is FailureReason.TARGET_NOT_ALLOWED
    assert ran == []


async def test_the_platform_registry_is_pulled_with_the_auth_file(
    tmp_path: Path, ran: list[list[str]]
) -> None:
    runtime = buildah(tmp_path)
    assert await runtime.from_image(f"{PLATFORM}/slipway/{ORG}/svc:abc", "c", organization_id=ORG)
    (argv,) = ran
    authfile = Path(argv[argv.index("--authfile") + 1])
    assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
    assert "--tls-verify=false" in argv  # the devstack's registry is plain http
    assert not any("pull-s3cret" in arg for arg in argv)


async def test_an_allow_listed_registry_is_pulled_over_verified_tls(
    tmp_path: Path, ran: list[list[str]]
) -> None:
    runtime = buildah(tmp_path, egress="10.0.0.5:5000")
    await runtime.from_image("10.0.0.5:5000/team/app:1", "c", organization_id=ORG)
    (argv,) = ran
    assert "--tls-verify=true" in argv
