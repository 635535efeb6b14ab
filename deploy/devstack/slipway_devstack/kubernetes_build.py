"""The Kubernetes binaries of the devstack, built from the Go module proxy once per machine.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm are built
with `go` (CGO off, `-trimpath`) into `$SLIPWAY_CACHE_DIR/<versions>/bin`, outside the repo, so
every checkout on the machine shares them. Invariants:
- the cache directory's name holds every version: changing one builds a new set, never a mix;
- `bin/` appears complete or not at all (built in a staging directory, then renamed);
- one build at a time per machine (an exclusive lock beside the directory): a second `up`
  waits for the first and then finds the binaries.
`go install` refuses kube-apiserver and etcd (their go.mod files have replace directives), so
each is built from a small wrapper module: for Kubernetes, one that pins every staging module of
upstream's replace block to its published v0.MINOR.PATCH, generated from upstream's go.mod.
A cold build takes about ten minutes on 2 idle cores (an hour on a busy machine); with Go's
build cache warm, under a minute.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from slipway_devstack.proc import cache_dir, log, run, tail, write_atomic
from slipway_devstack.settings import (
    ETCD_VERSION,
    HELM_VERSION,
    KUBERNETES_VERSION,
    KWOK_VERSION,
    DevstackError,
)

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
BINARIES = (*KUBE_COMMANDS, "etcd", "kwok", "helm")
KWOK_STAGES = "kwok-stages.yaml"
GO_FALLBACK = Path("/usr/local/go/bin/go")
HEARTBEAT = 30.0  # seconds between "still building" lines: a build step takes minutes


def kube_cache() -> Path:
    key = (
        f"kubernetes-v{KUBERNETES_VERSION}-etcd-v{ETCD_VERSION}"
        f"-kwok-v{KWOK_VERSION}-helm-v{HELM_VERSION}"
    )
    return cache_dir() / key


def kube_bin_dir() -> Path:
    return kube_cache() / "bin"


def kube_bins_complete(bin_dir: Path) -> bool:
    names = (*BINARIES, KWOK_STAGES)
    return all((bin_dir / name).is_file() for name in names)


def go_command() -> str:
    found = shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.exists() else None)
    if found is None:
        raise DevstackError(
            "the Kubernetes devstack is built from source and needs Go (1.21 or later; it "
            "fetches the toolchain the modules ask for): install it from https://go.dev/dl/ "
            "into /usr/local/go, or put `go` on PATH"
        )
    return found


def go_env(go: str) -> dict[str, str]:
    path = f"{Path(go).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # reproducible static binaries: no cgo, no VCS stamping, no local paths in them
    return dict(os.environ, PATH=path, CGO_ENABLED="0", GOFLAGS="-buildvcs=false -trimpath")


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    lock = kube_cache().with_name(kube_cache().name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another devstack is building the Kubernetes binaries; waiting for it ({lock})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure_kube_bins() -> Path:
    """The directory of the seven binaries (and kwok's stages), built on first use."""
    bin_dir = kube_bin_dir()
    if kube_bins_complete(bin_dir):
        return bin_dir
    with build_lock():
        if kube_bins_complete(bin_dir):  # built by the devstack we waited for
            return bin_dir
        build_all(bin_dir)
    return bin_dir


def build_all(bin_dir: Path) -> None:
    go = go_command()
    env = go_env(go)
    started = time.monotonic()
    log(
        f"building Kubernetes v{KUBERNETES_VERSION}, etcd v{ETCD_VERSION}, kwok v{KWOK_VERSION} "
        f"and helm v{HELM_VERSION} from source into {bin_dir} (once per machine; about 10 "
        "minutes on 2 idle cores, much longer on a busy machine; under a minute when Go's "
        "build cache is warm)"
    )
    shutil.rmtree(bin_dir, ignore_errors=True)  # an incomplete set (a binary deleted by hand)
    kube_cache().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kube_cache(), prefix=".build-") as tmp:
        staged = Path(tmp) / "bin"
        staged.mkdir()
        build_kubernetes(go, env, staged)
        build_etcd(go, env, staged)
        build_go_installs(go, env, staged)
        write_kwok_stages(go, env, staged / KWOK_STAGES)
        os.rename(staged, bin_dir)
    log(f"built the Kubernetes binaries in {time.monotonic() - started:.0f}s")


def go_step(cmd: list[str], what: str, env: dict[str, str], cwd: Path) -> None:
    """Run one `go` step, its output in the cache's build.log, a line every HEARTBEAT seconds."""
    out = kube_cache() / "build.log"
    started = time.monotonic()
    log(f"{what} ...")
    with open(out, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
        )
        next_beat = started + HEARTBEAT
        while proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() >= next_beat:
                log(f"  still {what} ({time.monotonic() - started:.0f}s)")
                next_beat += HEARTBEAT
    if proc.returncode != 0:
        raise DevstackError(f"{what} failed (exit {proc.returncode}); see {out}:\n{tail(out)}")
    log(f"  {what}: {time.monotonic() - started:.0f}s")


def module_info(go: str, env: dict[str, str], module: str) -> dict[str, str]:
    res = run([go, "mod", "download", "-json", module], what=f"go mod download {module}", env=env)
    info: dict[str, str] = json.loads(res.stdout)
    return info


def kubernetes_wrapper_gomod(upstream_gomod: str) -> str:
    """go.mod of a module requiring k8s.io/kubernetes, with every `./staging/...` replace of
    upstream's replace block pinned to the published staging version instead."""
    lines = upstream_gomod.splitlines()
    go_line = next(line for line in lines if line.startswith("go "))
    godebug = [line for line in lines if line.startswith("godebug ")]
    staging_version = "v0." + KUBERNETES_VERSION.split(".", 1)[1]
    replaces = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            replaces.append(f"\t{parts[0]} => {parts[0]} {staging_version}")
    if not replaces:
        raise DevstackError("k8s.io/kubernetes' go.mod has no ./staging replace directives")
    return "\n".join(
        [
            "module k8sbins",
            "",
            go_line,
            *godebug,
            "",
            f"require k8s.io/kubernetes v{KUBERNETES_VERSION}",
            "",
            "replace (",
            *replaces,
            ")",
            "",
        ]
    )


def tools_go(*packages: str) -> str:
    """A file that keeps the commands' dependencies in the wrapper's go.mod at `go mod tidy`."""
    imports = "".join(f'\t_ "{p}"\n' for p in packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n"


def version_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",  # reproducible
        ]
    return " ".join(flags)


def build_kubernetes(go: str, env: dict[str, str], out: Path) -> None:
    upstream = module_info(go, env, f"k8s.io/kubernetes@v{KUBERNETES_VERSION}")
    src = kube_cache() / "src" / "kubernetes"
    src.mkdir(parents=True, exist_ok=True)
    write_atomic(src / "go.mod", kubernetes_wrapper_gomod(Path(upstream["GoMod"]).read_text()))
    cmds = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS]
    write_atomic(src / "tools.go", tools_go(*cmds))
    go_step([go, "mod", "tidy"], "resolving Kubernetes' modules", env, src)
    for name, pkg in zip(KUBE_COMMANDS, cmds, strict=True):
        cmd = [go, "build", "-ldflags", version_ldflags(), "-o", str(out / name), pkg]
        go_step(cmd, f"building {name}", env, src)


def build_etcd(go: str, env: dict[str, str], out: Path) -> None:
    src = kube_cache() / "src" / "etcd"
    src.mkdir(parents=True, exist_ok=True)
    pkg = "go.etcd.io/etcd/server/v3"
    if not (src / "go.mod").exists():
        run([go, "mod", "init", "etcdbin"], what="go mod init", env=env, cwd=src)
    # `go get` (not a hand-written require) also raises the go line to what etcd needs
    go_step([go, "get", f"{pkg}@v{ETCD_VERSION}"], "resolving etcd's modules", env, src)
    write_atomic(src / "tools.go", tools_go(pkg))
    go_step([go, "mod", "tidy"], "tidying etcd's modules", env, src)
    cmd = [go, "build", "-ldflags", "-s -w", "-o", str(out / "etcd"), pkg]
    go_step(cmd, "building etcd", env, src)


def build_go_installs(go: str, env: dict[str, str], out: Path) -> None:
    env = dict(env, GOBIN=str(out))
    kwok = f"sigs.k8s.io/kwok/cmd/kwok@v{KWOK_VERSION}"
    go_step([go, "install", "-ldflags", "-s -w", kwok], "building kwok", env, out)
    # helm's own release flags: its version, and the Kubernetes version it assumes offline
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version=v{HELM_VERSION}"]
    for pkg in ("chartutil", "lint/rules"):
        flags += [
            f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMinor=36",
        ]
    helm = f"helm.sh/helm/v3/cmd/helm@v{HELM_VERSION}"
    go_step([go, "install", "-ldflags", " ".join(flags), helm], "building helm", env, out)


def write_kwok_stages(go: str, env: dict[str, str], path: Path) -> None:
    """kwok's default fast pod stages plus one that completes bare pods with restartPolicy
    Never (`helm test` hooks): kwok's own pod-complete stage only finishes pods owned by a Job,
    and a --config with pod stages replaces kwok's defaults, so they are all written here."""
    kwok_dir = Path(module_info(go, env, f"sigs.k8s.io/kwok@v{KWOK_VERSION}")["Dir"])
    stages = kwok_dir / "kustomize" / "stage" / "pod" / "fast"
    texts = [(stages / f"pod-{n}.yaml").read_text() for n in ("ready", "complete", "delete")]
    bare = (
        texts[1]
        .replace("name: pod-complete\n", "name: pod-complete-bare-never\n")
        .replace("- key: '.metadata.ownerReferences.[].kind'", "- key: '.spec.restartPolicy'")
        .replace("      - 'Job'", "      - 'Never'")
    )
    if bare == texts[1] or "'Never'" not in bare:
        raise DevstackError(f"kwok's pod-complete stage changed shape ({stages})")
    write_atomic(path, "---\n".join(t if t.endswith("\n") else t + "\n" for t in [*texts, bare]))
