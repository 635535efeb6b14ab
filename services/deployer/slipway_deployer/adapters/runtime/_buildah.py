"""buildah as the local runtime drives it: working containers made from registry images, their
image config, their rootfs, and the argv that runs a process in them with chroot isolation.

Invariants: every call uses the same storage flags (``--root/--runroot/--storage-driver``, shared
with the builder and the devstack); buildah runs without a shell, with a minimal environment (no
inherited secrets); environment values reach buildah's argv only through ``set_env``, the
documented fallback for images without ``/bin/sh`` (buildah 1.28 has no ``--env-file``), and are
redacted from anything it reports.

Pulls: the image's registry passes the egress guard first (``slipway_libs.registries``): a
registry a user named on a loopback, private, link-local or metadata address is refused with
TARGET_NOT_ALLOWED before buildah connects, unless it is the platform's own registry or the
operator allow-listed its exact host:port. Only the platform's registry may be plain http (when it
has no TLS); every other one is pulled over verified TLS. The platform registry's credentials are
in a 0600 auth file (``--authfile``), never in an argv.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure
from slipway_libs.egress import EgressError, EgressPolicy, TargetNotAllowed
from slipway_libs.process import ProcessTimeout, lower_session_priority, run_process
from slipway_libs.registries import (
    RegistryCredentials,
    builds_of_another,
    check_registry,
    is_platform,
    registry_of,
    write_authfile,
)

_LISTING_ATTEMPTS = 5


@dataclass(frozen=True)
class RegistryAccess:
    """The platform's registry (``SLIPWAY_REGISTRY``: always allowed, the one with credentials)
    and the egress rules for every other registry an image names."""

    platform: str | None = None
    platform_tls: bool = False
    credentials: RegistryCredentials | None = field(default=None, repr=False)
    egress: EgressPolicy = field(default_factory=EgressPolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RegistryAccess:
        """From the devstack's ``SLIPWAY_REGISTRY`` and the deployer's registry user."""
        return cls(
            platform=env.get("SLIPWAY_REGISTRY"),
            credentials=RegistryCredentials.of(
                env.get("SLIPWAY_DEPLOYER_REGISTRY_USERNAME"),
                env.get("SLIPWAY_DEPLOYER_REGISTRY_PASSWORD"),
            ),
            egress=EgressPolicy.from_setting(env.get("SLIPWAY_EGRESS_ALLOW", "")),
        )


@dataclass(frozen=True)
class BuildahStorage:
    root: str
    runroot: str
    driver: str = "vfs"
    registry: RegistryAccess = field(default_factory=RegistryAccess)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BuildahStorage:
        """From ``SLIPWAY_BUILDAH_ROOT``/``_RUNROOT``/``_STORAGE_DRIVER`` and the registry
        settings (see .devstack/env)."""
        return cls(
            root=env["SLIPWAY_BUILDAH_ROOT"],
            runroot=env["SLIPWAY_BUILDAH_RUNROOT"],
            driver=env.get("SLIPWAY_BUILDAH_STORAGE_DRIVER", "vfs"),
            registry=RegistryAccess.from_env(env),
        )


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: list[str]
    cmd: list[str]


class Buildah:
    def __init__(
        self,
        storage: BuildahStorage,
        *,
        timeout_s: float = 300.0,
        nice: int = 0,
        authfile: Path | None = None,
    ) -> None:
        """``authfile``: where the platform registry's credentials are written (0600), in a
        directory only the deployer reads."""
        self._storage = storage
        self._timeout_s = timeout_s
        self._nice = nice
        access = storage.registry
        self._authfile = (
            write_authfile(authfile, access.platform, access.credentials)
            if authfile is not None and access.platform and access.credentials
            else None
        )

    def command(self, *args: str) -> list[str]:
        """``nice`` execs buildah: the pid, and what /proc shows of it, are buildah's."""
        s = self._storage
        base = ["buildah", "--root", s.root, "--runroot", s.runroot, "--storage-driver", s.driver]
        niced = ["nice", "-n", str(self._nice)] if self._nice else []
        return [*niced, *base, *args]

    def deprioritize(self, pid: int) -> None:
        """The session of a process started from ``command`` (see ``lower_session_priority``)."""
        lower_session_priority(pid, self._nice)

    async def _started(self, pgid: int) -> None:
        self.deprioritize(pgid)

    def env(self, tmpdir: Path | None = None) -> dict[str, str]:
        """buildah's environment: PATH and locale only; ``TMPDIR`` (where ``buildah run`` writes
        the OCI spec of the process) when given."""
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
        env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        if tmpdir is not None:
            env["TMPDIR"] = str(tmpdir)
        return env

    def run_argv(
        self,
        container: str,
        argv: Sequence[str],
        *,
        volumes: Sequence[tuple[Path, str]] = (),
        writable: Sequence[tuple[Path, str]] = (),
        user: str | None = None,
    ) -> list[str]:
        """``buildah run`` of ``argv`` in ``container`` on the host network, chroot isolation,
        as ``user`` (``uid:gid``) when given; ``volumes`` mounted read-only, ``writable`` not."""
        mounts = [
            *(arg for host, inside in volumes for arg in ("-v", f"{host}:{inside}:ro")),
            *(arg for host, inside in writable for arg in ("-v", f"{host}:{inside}:rw")),
        ]
        as_user = ["--user", user] if user else []
        return self.command(
            "run", "--isolation", "chroot", *as_user, *mounts, container, "--", *argv
        )

    async def from_image(self, image: str, name: str, *, organization_id: str | None = None) -> str:
        """A working container from ``image``, pulled unless its registry is refused, or it is
        another organization's build (``organization_id``: whose workload it is)."""
        access = self._storage.registry
        registry = registry_of(image)
        platform = access.platform is not None and is_platform(registry, access.platform)
        if (
            platform
            and organization_id is not None
            and builds_of_another(
                image, platform_registry=access.platform or "", organization_id=organization_id
            )
        ):
            raise RuntimeFailure(
                FailureReason.TARGET_NOT_ALLOWED,
                f"pulling {image}: the platform registry's slipway/<organization>/ images are "
                "that organization's only",
            )
        try:
            await check_registry(
                registry, platform_registry=access.platform or "", policy=access.egress
            )
        except EgressError as refused:
            reason = (
                FailureReason.TARGET_NOT_ALLOWED
                if isinstance(refused, TargetNotAllowed)
                else FailureReason.PULL_FAILED  # a name that does not resolve
            )
            raise RuntimeFailure(reason, f"pulling {image}: {refused.message}") from None
        tls = "--tls-verify=false" if platform and not access.platform_tls else "--tls-verify=true"
        auth = ["--authfile", str(self._authfile)] if self._authfile is not None else []
        args = ["from", "--pull", tls, *auth, "--quiet", "--name", name, image]
        out = await self._run(args, FailureReason.PULL_FAILED, f"pulling {image}")
        return out.strip().splitlines()[-1]

    async def image_config(self, container: str) -> ImageConfig:
        out = await self._run(["inspect", "--type", "container", container], None, "inspect")
        config: dict[str, Any] = json.loads(out).get("OCIv1", {}).get("config") or {}
        return ImageConfig(
            entrypoint=list(config.get("Entrypoint") or []), cmd=list(config.get("Cmd") or [])
        )

    async def mount(self, container: str) -> Path:
        return Path((await self._run(["mount", container], None, "mount")).strip())

    async def set_env(self, container: str, env: Mapping[str, str]) -> None:
        """Store ``env`` in the container's config (values are visible in buildah's argv for
        the few milliseconds this takes): only for images without ``/bin/sh``."""
        args = ["config", *(a for k, v in env.items() for a in ("--env", f"{k}={v}")), container]
        await self._run(args, None, "setting the environment", secrets=list(env.values()))

    async def remove(self, container: str) -> None:
        """Remove the working container; a container that no longer exists is not an error."""
        result = await run_process(
            self.command("rm", container),
            env=self.env(),
            timeout_s=self._timeout_s,
            on_start=self._started,
        )
        if result.returncode != 0 and container in await self.containers():
            raise RuntimeFailure(FailureReason.RUNTIME_ERROR, f"buildah rm {container} failed")

    async def containers(self) -> list[str]:
        """The store's working containers. A listing can fail while another process sharing the
        store removes a container (seen as exit 125 beside a busy stack): tried again, briefly."""
        args = ["containers", "--all", "--format", "{{.ContainerName}}"]
        for attempt in range(_LISTING_ATTEMPTS):
            try:
                return (await self._run(args, None, "listing containers")).split()
            except RuntimeFailure as failure:
                if failure.reason is not FailureReason.RUNTIME_ERROR:
                    raise
                if attempt == _LISTING_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _run(
        self,
        args: list[str],
        reason: FailureReason | None,
        what: str,
        *,
        secrets: Sequence[str] = (),
    ) -> str:
        try:
            result = await run_process(
                self.command(*args),
                env=self.env(),
                timeout_s=self._timeout_s,
                capture_stdout=True,
                secrets=secrets,
                on_start=self._started,
            )
        except ProcessTimeout as exc:
            raise RuntimeFailure(FailureReason.TIMEOUT, f"{what}: {exc}") from None
        if result.returncode != 0:
            detail = " | ".join(result.stderr_tail[-3:])
            raise RuntimeFailure(reason or FailureReason.RUNTIME_ERROR, f"{what} failed ({detail})")
        return result.stdout
