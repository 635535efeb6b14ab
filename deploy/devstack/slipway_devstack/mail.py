"""The SMTP catcher: invitation mails of the dev platform land in .devstack/mail/*.eml."""

from __future__ import annotations

import sys
import time

from slipway_devstack.proc import (
    daemon_pid,
    pid_alive,
    port_free,
    port_open,
    smtp_port,
    spawn,
    tail,
    terminate,
)
from slipway_devstack.settings import (
    HOST,
    MAIL_CATCHER,
    MAIL_DIR,
    MAIL_LOG,
    MAIL_PID,
    MAIL_READY_TIMEOUT,
    REGISTRY_STOP_TIMEOUT,
    STATE,
    DevstackError,
)


def mail_pid() -> int | None:
    return daemon_pid(MAIL_PID, str(MAIL_CATCHER))


def start_mail() -> None:
    if not port_free(smtp_port()):
        raise DevstackError(
            f"port {HOST}:{smtp_port()} is already in use by a process that is not this "
            "devstack's SMTP catcher (see `ss -ltnp`); stop it or set SLIPWAY_SMTP_PORT"
        )
    MAIL_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(MAIL_CATCHER), "--port", str(smtp_port()), "--dir", str(MAIL_DIR)]
    pid = spawn(cmd, MAIL_LOG, STATE, MAIL_PID)
    deadline = time.monotonic() + MAIL_READY_TIMEOUT
    while not port_open(smtp_port(), 0.5):
        if not pid_alive(pid) or time.monotonic() > deadline:
            raise DevstackError(f"the SMTP catcher did not start:\n{tail(MAIL_LOG)}")
        time.sleep(0.1)


def stop_mail() -> bool:
    pid = mail_pid()
    if pid is None:
        return False
    terminate(pid, "the SMTP catcher", REGISTRY_STOP_TIMEOUT)
    MAIL_PID.unlink(missing_ok=True)
    return True
