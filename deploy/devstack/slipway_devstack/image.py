"""The base image, built with buildah (storage in the cache: the same flags the builder gets
via the env) and pushed to the registry."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from slipway_devstack.proc import cache_dir, http_status, log, registry_port, run
from slipway_devstack.registry import registry_address, registry_basic
from slipway_devstack.settings import (
    BASE_REPOSITORY,
    BASE_TAG,
    BUSYBOX,
    MANIFEST_TYPES,
    REGISTRY_ADMIN,
    RUN,
    DevstackError,
    Secrets,
)


def buildah_root() -> Path:
    return cache_dir() / "buildah" / "root"


def buildah_runroot() -> Path:
    return cache_dir() / "buildah" / "runroot"


def buildah(*args: str, what: str) -> str:
    storage = ["--root", str(buildah_root()), "--runroot", str(buildah_runroot())]
    cmd = ["buildah", *storage, "--storage-driver", "vfs", *args]
    return run(cmd, what=f"buildah {what}", cwd="/").stdout.strip()


def base_image_ref() -> str:
    return f"{registry_address()}/{BASE_REPOSITORY}:{BASE_TAG}"


def base_image_present(pw: Secrets) -> bool:
    path = f"/v2/{BASE_REPOSITORY}/manifests/{BASE_TAG}"
    headers = {"Accept": MANIFEST_TYPES, "Authorization": registry_basic(pw)}
    return http_status(registry_port(), path, headers) == 200


def install_applets(ctr: str) -> None:
    """/bin/sh, httpd, ... as symlinks to /bin/busybox: by busybox itself, else prepared here."""
    try:
        buildah(
            "run",
            "--isolation",
            "chroot",
            ctr,
            "--",
            str(BUSYBOX),
            "--install",
            "-s",
            "/bin",
            what="run busybox --install",
        )
        return
    except DevstackError as exc:
        log(f"`buildah run` is not possible here, copying prepared symlinks instead ({exc})")
    applets = run([str(BUSYBOX), "--list"], what="busybox --list").stdout.split()
    with tempfile.TemporaryDirectory(prefix="slipway-busybox-") as tmp:
        for name in applets:
            if name != "busybox" and "/" not in name:
                os.symlink(str(BUSYBOX), Path(tmp) / name)
        buildah("copy", ctr, tmp, "/bin", what="copy applet symlinks")


@contextlib.contextmanager
def registry_authfile(pw: Secrets) -> Iterator[Path]:
    """A 0600 containers-auth.json with the admin's credentials, removed afterwards (buildah's
    `--creds` would put the password in its argv, which every user can read)."""
    raw = f"{REGISTRY_ADMIN}:{pw[f'registry_{REGISTRY_ADMIN}']}".encode()
    auths = {"auths": {registry_address(): {"auth": base64.b64encode(raw).decode()}}}
    fd, name = tempfile.mkstemp(prefix=".auth-", suffix=".json", dir=RUN)  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(auths, fh)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def build_base_image(pw: Secrets) -> None:
    """scratch + static busybox and its applets, committed and pushed to the devstack registry."""
    started = time.monotonic()
    name = f"{BASE_REPOSITORY}:{BASE_TAG}"
    log(f"building {name} from {BUSYBOX} (busybox-static) and pushing it to {registry_address()}")
    ctr = buildah("from", "scratch", what="from scratch")
    try:
        buildah("copy", ctr, str(BUSYBOX), str(BUSYBOX), what="copy busybox")
        install_applets(ctr)
        buildah(
            "config",
            "--entrypoint",
            "[]",
            "--cmd",
            '["/bin/sh"]',
            "--env",
            "PATH=/bin:/usr/bin",
            "--label",
            "org.opencontainers.image.title=slipway-busybox",
            ctr,
            what="config",
        )
        buildah("commit", "--quiet", ctr, name, what="commit")
    finally:
        with contextlib.suppress(DevstackError):
            buildah("rm", ctr, what="rm")
    with registry_authfile(pw) as authfile:
        buildah(
            "push",
            "--quiet",
            "--tls-verify=false",
            "--authfile",
            str(authfile),
            name,
            f"docker://{base_image_ref()}",
            what="push",
        )
    log(f"pushed {base_image_ref()} in {time.monotonic() - started:.1f}s")


def ensure_base_image(pw: Secrets) -> bool:
    """Build and push the base image unless the registry already has it; True when built."""
    if base_image_present(pw):
        return False
    build_base_image(pw)
    if not base_image_present(pw):
        raise DevstackError(f"{base_image_ref()} is not in the registry after the push")
    return True
