"""The OCI registry (docker-registry, htpasswd users)."""

from __future__ import annotations

import base64
import json
import secrets
import time

from slipway_devstack.proc import (
    daemon_pid,
    http_status,
    pid_alive,
    registry_port,
    run,
    spawn,
    tail,
    terminate,
    write_atomic,
)
from slipway_devstack.settings import (
    HOST,
    REGISTRY_ADMIN,
    REGISTRY_CONFIG,
    REGISTRY_DIR,
    REGISTRY_HTPASSWD,
    REGISTRY_LOG,
    REGISTRY_PID,
    REGISTRY_READY_TIMEOUT,
    REGISTRY_SERVICES,
    REGISTRY_STOP_TIMEOUT,
    DevstackError,
    Secrets,
)


def registry_address() -> str:
    return f"{HOST}:{registry_port()}"


def registry_users(pw: Secrets) -> dict[str, str]:
    return {u: pw[f"registry_{u}"] for u in (REGISTRY_ADMIN, *REGISTRY_SERVICES)}


def registry_basic(pw: Secrets) -> str:
    """The admin's `Authorization` header value (Basic)."""
    raw = f"{REGISTRY_ADMIN}:{pw[f'registry_{REGISTRY_ADMIN}']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def write_htpasswd(pw: Secrets) -> None:
    """bcrypt entries made by apache2-utils' htpasswd, the password on its stdin (not argv)."""
    lines = []
    for user, password in registry_users(pw).items():
        cmd = ["htpasswd", "-niB", "-C", "10", user]
        out = run(cmd, what=f"htpasswd {user}", input=password, stdin=None).stdout
        lines.append(out.strip())
    write_atomic(REGISTRY_HTPASSWD, "\n".join(lines) + "\n", 0o600)


def registry_config() -> str:
    data = json.dumps(str(REGISTRY_DIR / "data"))  # a JSON string is a YAML string
    htpasswd = json.dumps(str(REGISTRY_HTPASSWD))
    return f"""# written by deploy/devstack/devstack.py on every start
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: {registry_address()}
  secret: {secrets.token_hex(16)}
auth:
  htpasswd:
    realm: slipway-devstack
    path: {htpasswd}
"""


def registry_pid() -> int | None:
    return daemon_pid(REGISTRY_PID, str(REGISTRY_CONFIG))


def registry_authenticates() -> bool:
    """True when the running registry refuses a request without credentials (a registry started
    by an older devstack did not: it is restarted)."""
    return http_status(registry_port(), "/v2/") == 401


def start_registry(pw: Secrets) -> int:
    (REGISTRY_DIR / "data").mkdir(parents=True, exist_ok=True)
    write_htpasswd(pw)
    write_atomic(REGISTRY_CONFIG, registry_config(), 0o600)
    cmd = ["docker-registry", "serve", str(REGISTRY_CONFIG)]
    return spawn(cmd, REGISTRY_LOG, REGISTRY_DIR, REGISTRY_PID)


def wait_registry(pid: int, pw: Secrets) -> None:
    deadline = time.monotonic() + REGISTRY_READY_TIMEOUT
    auth = {"Authorization": registry_basic(pw)}
    while http_status(registry_port(), "/v2/", auth) != 200:
        if not pid_alive(pid):
            raise DevstackError(f"the registry exited during startup:\n{tail(REGISTRY_LOG)}")
        if time.monotonic() > deadline:
            raise DevstackError(
                f"registry not answering GET http://{registry_address()}/v2/ after "
                f"{REGISTRY_READY_TIMEOUT:.0f}s; see {REGISTRY_LOG}"
            )
        time.sleep(0.2)


def stop_registry() -> bool:
    pid = registry_pid()
    if pid is None:
        return False
    terminate(pid, "the registry", REGISTRY_STOP_TIMEOUT)
    REGISTRY_PID.unlink(missing_ok=True)
    return True
