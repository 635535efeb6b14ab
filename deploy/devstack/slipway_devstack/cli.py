"""The env file, status, and the commands (`up`, `down`, `stop`, `status`, `env`, `clean`)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
import time
from collections.abc import Callable

from slipway_devstack.image import (
    base_image_present,
    base_image_ref,
    buildah_root,
    buildah_runroot,
    ensure_base_image,
)
from slipway_devstack.kafka import ensure_kafka_libs, kafka_pid, start_kafka, stop_kafka, wait_kafka
from slipway_devstack.kubernetes import (
    ensure_kubernetes,
    kube_enabled,
    kube_env_lines,
    kube_running,
    kube_status_rows,
    stop_kubernetes,
)
from slipway_devstack.kubernetes_build import ensure_kube_bins
from slipway_devstack.mail import mail_pid, start_mail, stop_mail
from slipway_devstack.postgres import (
    load_secrets,
    pg_fallback_dir,
    pg_log_file,
    pg_pid,
    provision_pg,
    start_pg,
    stop_pg,
    wait_pg,
)
from slipway_devstack.proc import (
    cache_dir,
    kafka_controller_port,
    kafka_port,
    log,
    pg_port,
    port_free,
    registry_port,
    smtp_port,
    state_lock,
    write_atomic,
)
from slipway_devstack.registry import (
    registry_address,
    registry_authenticates,
    registry_pid,
    start_registry,
    stop_registry,
    wait_registry,
)
from slipway_devstack.settings import (
    BASE_REPOSITORY,
    BASE_TAG,
    ENV_FILE,
    HOST,
    KAFKA_ADMIN,
    KAFKA_DIR,
    KAFKA_LOG,
    LOGS,
    MAIL_DIR,
    MAIL_LOG,
    PG_ADMIN,
    PG_LINK,
    PRINCIPALS,
    REGISTRY_ADMIN,
    REGISTRY_DIR,
    REGISTRY_LOG,
    REGISTRY_SERVICES,
    RUN,
    SCRAM,
    SERVICES,
    STATE,
    DevstackError,
    Secrets,
)
from slipway_devstack.tools import ensure_tools


def env_text(pw: Secrets) -> str:
    bootstrap = f"{HOST}:{kafka_port()}"
    pg = f"{HOST}:{pg_port()}"
    lines = [
        f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}",
        f"SLIPWAY_KAFKA_BOOTSTRAP_SERVERS={bootstrap}",
        f"SLIPWAY_PG_ADMIN_URL=postgresql://{PG_ADMIN}:{pw['admin']}@{pg}/postgres",
    ]
    lines += [
        f"SLIPWAY_{s.upper()}_DATABASE_URL=postgresql://slipway_{s}:{pw[s]}@{pg}/slipway_{s}"
        for s in SERVICES
    ]
    lines += [
        # Kafka: SASL/SCRAM; the admin principal is for the devstack, the tests and the tools
        f"SLIPWAY_KAFKA_SASL_MECHANISM={SCRAM}",
        f"SLIPWAY_KAFKA_ADMIN_USERNAME={KAFKA_ADMIN}",
        f"SLIPWAY_KAFKA_ADMIN_PASSWORD={pw['kafka_admin']}",
    ]
    for p in PRINCIPALS:
        lines += [
            f"SLIPWAY_{p.upper()}_KAFKA_USERNAME={p}",
            f"SLIPWAY_{p.upper()}_KAFKA_PASSWORD={pw[f'kafka_{p}']}",
            # the token this service presents to other services' internal APIs
            f"SLIPWAY_{p.upper()}_INTERNAL_TOKEN={pw[f'internal_token_{p}']}",
        ]
    # the callers each service's internal API accepts, by the SHA-256 of their tokens (so that
    # a service cannot present another's token): today only the gateway calls internal APIs
    gateway = hashlib.sha256(pw["internal_token_gateway"].encode()).hexdigest()
    lines += [f"SLIPWAY_{s.upper()}_INTERNAL_CALLERS=gateway:{gateway}" for s in SERVICES]
    lines += [
        f"SLIPWAY_IDENTITY_SEALING_KEYS=dev1:{pw['identity_sealing_key']}",
        f"SLIPWAY_CATALOG_SEALING_KEYS=dev1:{pw['catalog_sealing_key']}",
        # outgoing webhooks' signing secrets
        f"SLIPWAY_SCHEDULER_SEALING_KEYS=dev1:{pw['scheduler_sealing_key']}",
        f"SLIPWAY_REGISTRY={registry_address()}",
        # the registry's admin (tests, tools); the builder and the deployer have users of their own
        f"SLIPWAY_REGISTRY_USERNAME={REGISTRY_ADMIN}",
        f"SLIPWAY_REGISTRY_PASSWORD={pw[f'registry_{REGISTRY_ADMIN}']}",
        *(
            line
            for s in REGISTRY_SERVICES
            for line in (
                f"SLIPWAY_{s.upper()}_REGISTRY_USERNAME={s}",
                f"SLIPWAY_{s.upper()}_REGISTRY_PASSWORD={pw[f'registry_{s}']}",
            )
        ),
        f"SLIPWAY_BASE_IMAGE={base_image_ref()}",
        f"SLIPWAY_BUILDAH_ROOT={buildah_root()}",
        f"SLIPWAY_BUILDAH_RUNROOT={buildah_runroot()}",
        "SLIPWAY_BUILDAH_STORAGE_DRIVER=vfs",
        # invitation mails go to the SMTP catcher (the platform started by tests sends none)
        f"SLIPWAY_IDENTITY_SMTP_HOST={HOST}",
        f"SLIPWAY_IDENTITY_SMTP_PORT={smtp_port()}",
    ]
    if kube_enabled() or kube_running():
        lines += kube_env_lines()
    return "\n".join(lines) + "\n"


def status_lines() -> tuple[list[str], bool]:
    kpid, ppid = kafka_pid(), pg_pid() if PG_LINK.exists() else None
    rpid, mpid = registry_pid(), mail_pid()
    kport, cport, pport = kafka_port(), kafka_controller_port(), pg_port()
    rows = [
        ("kafka", kpid, f"{HOST}:{kport} (controller {cport})", KAFKA_LOG),
        ("postgres", ppid, f"{HOST}:{pport}", pg_log_file() if PG_LINK.exists() else None),
        ("registry", rpid, registry_address(), REGISTRY_LOG),
        ("mail", mpid, f"{HOST}:{smtp_port()} -> {MAIL_DIR}", MAIL_LOG),
    ]
    kube = kube_status_rows()
    # the cluster is listed when it is switched on or still runs from a run that switched it on
    if kube_enabled() or any(pid for _, pid, _, _ in kube):
        rows += kube
    lines = []
    width = max(len(name) for name, *_ in rows) + 1
    for name, pid, addr, logf in rows:
        state = f"running  pid {pid:<7}" if pid else "stopped  pid -      "
        lines.append(f"{name:<{width}}{state} {addr}" + (f"  log {logf}" if pid and logf else ""))
    kube_up = not kube_enabled() or kube_running()
    return lines, bool(kpid and ppid and rpid and mpid and kube_up)


# --- commands


def check_ports_free(kafka: bool, pg: bool, registry: bool) -> None:
    """Before starting anything: the ports of the components to start must not be taken."""
    wanted = []
    if kafka:
        wanted += [
            (kafka_port(), "Kafka", "SLIPWAY_KAFKA_PORT"),
            (kafka_controller_port(), "Kafka controller", "SLIPWAY_KAFKA_CONTROLLER_PORT"),
        ]
    if pg:
        wanted.append((pg_port(), "PostgreSQL", "SLIPWAY_PG_PORT"))
    if registry:
        wanted.append((registry_port(), "registry", "SLIPWAY_REGISTRY_PORT"))
    for port, name, var in wanted:
        if not port_free(port):
            raise DevstackError(
                f"port {HOST}:{port} is already in use by a process that is not this "
                f"devstack's {name} (see `ss -ltnp`); stop it or set {var}"
            )


def cmd_up() -> int:
    started_at = time.monotonic()
    if kube_enabled():
        # outside the state lock: a first build takes minutes, and `up` elsewhere (or a test
        # run's) must not wait for it; the build has a machine-wide lock of its own
        ensure_kube_bins()
    with state_lock():
        lines, all_up = status_lines()
        pw = load_secrets()  # generated once, kept in .devstack/secrets.json
        if (
            all_up
            and ENV_FILE.exists()
            # an env file written before the last setting was added is written again
            and "SLIPWAY_SCHEDULER_SEALING_KEYS=" in ENV_FILE.read_text()
            and (not kube_enabled() or "SLIPWAY_KUBERNETES_KUBECONFIG=" in ENV_FILE.read_text())
            and registry_authenticates()
            and base_image_present(pw)
        ):
            print("devstack already running:")
            print("\n".join("  " + line for line in lines))
            return 0
        ensure_tools()
        for d in (RUN, LOGS, KAFKA_DIR, REGISTRY_DIR):
            d.mkdir(parents=True, exist_ok=True)
        libs = ensure_kafka_libs()
        started = []
        kpid, rpid = kafka_pid(), registry_pid()
        if rpid is not None and not registry_authenticates():
            log("the registry runs without authentication (an older devstack): restarting it")
            stop_registry()
            rpid = None
        check_ports_free(kafka=kpid is None, pg=pg_pid() is None, registry=rpid is None)
        if kpid is None:
            kpid = start_kafka(libs, pw)  # boots in the background while Postgres starts
            started.append("kafka")
        if rpid is None:
            rpid = start_registry(pw)
            started.append("registry")
        if mail_pid() is None:
            start_mail()
            started.append("mailcatcher")
        if pg_pid() is None:
            start_pg()
            started.append("postgres")
        provision_pg(pw)
        wait_pg(pw)
        wait_registry(rpid, pw)
        if ensure_base_image(pw):
            started.append(f"base image {BASE_REPOSITORY}:{BASE_TAG} (built and pushed)")
        # after the others: its first build takes minutes (printed as it goes)
        if kube_enabled() and ensure_kubernetes():
            started.append("kubernetes")
        wait_kafka(kpid, pw)
        write_atomic(ENV_FILE, env_text(pw), 0o600)
        lines, _ = status_lines()
    what = ", ".join(started) if started else "nothing (already running)"
    print(f"devstack up in {time.monotonic() - started_at:.1f}s; started: {what}")
    print("\n".join("  " + line for line in lines))
    print(f"  env file {ENV_FILE}  (load with: set -a; . {ENV_FILE}; set +a)")
    return 0


def cmd_down() -> int:
    with state_lock():
        stopped = [
            name
            for name, fn in (
                ("kafka", stop_kafka),
                ("postgres", lambda: PG_LINK.exists() and stop_pg()),
                ("registry", stop_registry),
                ("mailcatcher", stop_mail),
                ("kubernetes", stop_kubernetes),
            )
            if fn()
        ]
    print(f"devstack down; stopped: {', '.join(stopped) if stopped else 'nothing (not running)'}")
    return 0


def cmd_stop(component: str) -> int:
    """Stop one component (fault tests use it to make Kafka or PostgreSQL briefly unavailable)."""
    stoppers: dict[str, Callable[[], bool]] = {
        "kafka": stop_kafka,
        "postgres": lambda: PG_LINK.exists() and stop_pg(),
        "registry": stop_registry,
        "mailcatcher": stop_mail,
        "kubernetes": stop_kubernetes,
    }
    if component not in stoppers:
        print(f"devstack: stop takes one of {', '.join(stoppers)}", file=sys.stderr)
        return 2
    with state_lock():
        stopped = stoppers[component]()
    print(f"devstack: {component} {'stopped' if stopped else 'was not running'}")
    return 0


def cmd_status() -> int:
    lines, all_up = status_lines()
    print("\n".join(lines))
    return 0 if all_up else 3


def cmd_env() -> int:
    if not ENV_FILE.exists():
        print(f"devstack: no env file yet ({ENV_FILE}); run `up` first", file=sys.stderr)
        return 1
    sys.stdout.write(ENV_FILE.read_text())
    return 0


def cmd_clean() -> int:
    cmd_down()
    fallback = pg_fallback_dir()  # data (untraversable repo) or socket dir (long repo path)
    if fallback.exists():
        shutil.rmtree(fallback, ignore_errors=True)
        with contextlib.suppress(OSError):
            fallback.parent.rmdir()  # only when empty
    shutil.rmtree(STATE, ignore_errors=True)
    print(f"devstack cleaned: removed {STATE} (cache {cache_dir()}, with buildah's images, kept)")
    return 0


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "clean": cmd_clean,
}


USAGE = "Usage: python3 deploy/devstack/devstack.py up|down|status|env|clean|stop <component>"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "stop":
        return cmd_stop(argv[1])
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]]()
    except DevstackError as exc:
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
