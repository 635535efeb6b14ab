"""buildah as the builder runs it: chroot isolation, no daemon, a store of its own whose id mapping
is the build range, the platform registry's credentials in a 0600 auth file (``--authfile``,
never an argv), and each run a process group of its own (killed as a whole on timeout or
cancel)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from slipway_builder.config import BuilderSettings
from slipway_libs import process
from slipway_libs.registries import RegistryCredentials, write_authfile

STOP_GRACE_S = 8.0  # buildah removes its working container on SIGTERM; SIGKILL leaks it


class Buildah:
    def __init__(self, settings: BuilderSettings, credentials: RegistryCredentials | None) -> None:
        self._settings = settings
        registry_dir = Path(settings.workspace) / _registry_dir_name(settings.registry, credentials)
        self._authfile = (
            write_authfile(registry_dir / "auth.json", settings.registry, credentials)
            if credentials is not None
            else None
        )
        # only the platform's registry may be plain http (``--tls-verify=false`` would allow it
        # for every registry a Dockerfile pulls from): a registries.conf marks it insecure
        self._registries_conf = (
            None
            if settings.registry_tls
            else _insecure_registry_conf(registry_dir, settings.registry)
        )

    def bud_args(
        self, image: str, *, dockerfile: Path, context_dir: Path, build_args: Mapping[str, str]
    ) -> list[str]:
        args = [
            "bud",
            "--isolation",
            "chroot",
            # root of a user namespace may still chroot: into a subdirectory, then up with ``..``
            # out of the build's root (it stays an unprivileged host uid there, but could read
            # every world-readable file of the host)
            "--cap-drop",
            "CAP_SYS_CHROOT",
            *self._auth(),
            "--layers=false",
            "-f",
            str(dockerfile),
            "-t",
            image,
        ]
        for key, value in sorted(build_args.items()):
            args += ["--build-arg", f"{key}={value}"]
        return [*args, str(context_dir)]

    def push_args(self, image: str, *, digest_file: Path) -> list[str]:
        return ["push", *self._auth(), "--digestfile", str(digest_file), image, f"docker://{image}"]

    async def run(
        self,
        args: list[str],
        *,
        on_line: process.LineSink,
        on_start: Callable[[int], Awaitable[None]],
    ) -> int:
        """Run ``buildah args`` to its end; its exit code. ``on_start`` gets its process group."""
        result = await process.run_process(
            ["buildah", *storage_flags(self._settings), *args],
            env=_buildah_env(self._registries_conf),
            on_line=on_line,
            timeout_s=self._settings.build_timeout_s,
            on_start=on_start,
            grace_s=STOP_GRACE_S,
        )
        return result.returncode

    def _auth(self) -> list[str]:
        return ["--authfile", str(self._authfile)] if self._authfile is not None else []


def storage_flags(settings: BuilderSettings) -> list[str]:
    """buildah's storage flags: a store of the builder's own (beside the configured one, which
    the devstack and the deployer share) whose default id mapping is the build range. Every
    layer is extracted there already shifted into the range (once, no copy per build), and
    buildah runs each ``RUN`` step in a user namespace with that mapping. Given to ``bud`` alone,
    the mapping makes the store copy each base image's top layer instead, and that copy keeps a
    root-owned ``/`` (containers/storage 1.43's vfs: the template copy keeps the template's root
    owner and the id shift skips ``.``): a ``RUN`` step could not write to ``/``."""
    base, count = settings.build_id_base, settings.build_id_count
    mapping = f"0:{base}:{count}"
    suffix = f"-ids{base}-{count}"  # another range is another store: its files are others'
    return [
        "--root",
        settings.buildah_root + suffix,
        "--runroot",
        settings.buildah_runroot + suffix,
        "--storage-driver",
        "vfs",
        "--userns-uid-map",
        mapping,
        "--userns-gid-map",
        mapping,
    ]


def _registry_dir_name(registry: str, credentials: RegistryCredentials | None) -> str:
    """The directory of the auth file and registries.conf, named by what they hold: builders of
    two platforms on one machine (``make up`` beside a test run, each with its own registry) share
    the workspace, and one ``.registry`` made each overwrite the other's files — a build of one
    then pushed over https, or with the other's password, to its own plain-http registry."""
    held = "\0".join(
        [registry, *((credentials.username, credentials.password) if credentials else ())]
    )
    return ".registry-" + hashlib.sha256(held.encode()).hexdigest()[:16]


def _buildah_env(registries_conf: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    if registries_conf is not None:
        env["CONTAINERS_REGISTRIES_CONF"] = str(registries_conf)
    return env


def _insecure_registry_conf(directory: Path, registry: str) -> Path:
    """A registries.conf (replacing the system's; its registries.conf.d short-name aliases still
    apply) that lets buildah reach ``registry`` over plain http, and no other registry."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "registries.conf"
    path.write_text(f"[[registry]]\nlocation = {json.dumps(registry)}\ninsecure = true\n")
    return path
