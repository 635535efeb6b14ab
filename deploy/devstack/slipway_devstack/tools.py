"""The host tools the devstack needs, installed from Debian packages when missing."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from slipway_devstack.proc import is_root, log, run
from slipway_devstack.settings import APT_PACKAGES, BUSYBOX, PG_BIN, DevstackError


def psql_bin() -> str:
    own = PG_BIN / "psql"
    return str(own) if own.exists() else (shutil.which("psql") or "psql")


def elf_is_static(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (no dynamic loader needed)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF":
                return False
            end = "<" if head[5] == 1 else ">"
            if head[4] == 2:  # ELFCLASS64
                (phoff,) = struct.unpack_from(end + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            else:
                (phoff,) = struct.unpack_from(end + "I", head, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
            for i in range(phnum):
                fh.seek(phoff + i * phentsize)
                if struct.unpack(end + "I", fh.read(4))[0] == 3:  # PT_INTERP
                    return False
            return bool(phnum)
    except (OSError, struct.error):
        return False


def missing_tools() -> list[str]:
    commands = ("java", "mvn", "psql", "buildah", "docker-registry", "htpasswd")
    missing = [t for t in commands if shutil.which(t) is None]
    if not all((PG_BIN / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
        missing.append("postgres")
    if not elf_is_static(BUSYBOX):  # absent, or the dynamic one of Debian's `busybox`
        missing.append("busybox")
    return missing


def ensure_tools() -> None:
    missing = missing_tools()
    if not missing:
        return
    pkgs = [APT_PACKAGES[t] for t in missing]
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]
    if not is_root():
        raise DevstackError(
            f"missing tools: {', '.join(missing)}. Install them with:\n"
            f"  sudo apt-get update && sudo {' '.join(cmd)}"
        )
    log(f"installing {' '.join(pkgs)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update"], what="apt-get update", env=env)
    run(cmd, what="apt-get install", env=env)
    still = missing_tools()
    if still:
        raise DevstackError(f"still missing after apt-get install: {', '.join(still)}")
