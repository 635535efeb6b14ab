"""Image registries: the platform's credentials in an auth file, and the egress check of the
registries users name (a resolver stub stands for DNS)."""

from __future__ import annotations

import ipaddress
import json
import stat
from pathlib import Path

import pytest

from slipway_libs.egress import EgressPolicy, IPAddress, TargetNotAllowed
from slipway_libs.registries import (
    RegistryCredentials,
    builds_of_another,
    check_registry,
    host_port,
    registry_of,
    write_authfile,
)

PLATFORM = "127.0.0.1:15000"
ORG = "0b6c8f0e-5d4e-4c6a-9a53-1f2d3c4b5a69"
OTHER = "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"


@pytest.mark.parametrize(
    ("reference", "registry"),
    [
        ("busybox", "docker.io"),
        ("library/busybox:1", "docker.io"),
        ("ghcr.io/acme/app:1", "ghcr.io"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000"),
        ("localhost/x", "localhost"),
        ("Registry.Example:443/x", "registry.example:443"),
    ],
)
def test_the_registry_of_a_reference_is_read_as_docker_reads_it(
    reference: str, registry: str
) -> None:
    assert registry_of(reference) == registry


def test_a_registry_without_a_port_is_reached_on_https() -> None:
    assert host_port("ghcr.io") == ("ghcr.io", 443)
    assert host_port("10.0.0.5:5000") == ("10.0.0.5", 5000)
    with pytest.raises(ValueError):
        host_port(":5000")


def resolver(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    return resolve


async def test_internal_registries_are_refused_and_the_platform_one_is_not() -> None:
    nothing = EgressPolicy()
    for registry, answer in (
        ("127.0.0.1:5000", "127.0.0.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("registry.lan:5000", "10.0.0.5"),  # a name resolving to a private address
    ):
        with pytest.raises(TargetNotAllowed):
            await check_registry(
                registry, platform_registry=PLATFORM, policy=nothing, resolver=resolver(answer)
            )
    # the platform's registry is never resolved nor refused; a public one passes
    await check_registry(PLATFORM, platform_registry=PLATFORM, policy=nothing, resolver=None)  # type: ignore[arg-type]
    await check_registry(
        "ghcr.io", platform_registry=PLATFORM, policy=nothing, resolver=resolver("140.82.112.34")
    )
    # the allow-list is exact: host and port
    allowed = EgressPolicy.from_setting("10.0.0.5:5000")
    await check_registry(
        "10.0.0.5:5000", platform_registry=PLATFORM, policy=allowed, resolver=resolver("10.0.0.5")
    )
    with pytest.raises(TargetNotAllowed):
        await check_registry(
            "10.0.0.5:5001",
            platform_registry=PLATFORM,
            policy=allowed,
            resolver=resolver("10.0.0.5"),
        )


def test_another_organizations_builds_are_not_its_to_pull() -> None:
    def other(image: str) -> bool:
        return builds_of_another(image, platform_registry=PLATFORM, organization_id=ORG)

    assert other(f"{PLATFORM}/slipway/{OTHER}/svc:abc")
    assert not other(f"{PLATFORM}/slipway/{ORG}/svc:abc")
    assert not other(f"{PLATFORM}/slipway/busybox:latest")  # the platform's shared base image
    assert not other(f"ghcr.io/slipway/{OTHER}/svc:1")  # another registry's namespace


def test_the_auth_file_is_0600_and_names_only_the_platform_registry(tmp_path: Path) -> None:
    path = write_authfile(tmp_path / "state" / "auth.json", PLATFORM, RegistryCredentials("u", "p"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"auths": {PLATFORM: {"auth": "dTpw"}}}
    assert "s3cret" not in repr(RegistryCredentials("u", "s3cret"))
    with pytest.raises(ValueError):
        RegistryCredentials.of("u", None)
    assert RegistryCredentials.of(None, None) is None
