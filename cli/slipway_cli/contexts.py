"""Contexts: several gateways (say a staging and a production installation), each with its own
saved session, and one of them current.

``contexts.json`` in the configuration directory holds ``{"current": name, "contexts": {name:
{"url": ...}}}``. The gateway a command talks to is ``$SLIPWAY_API_URL`` when set, else the
context named by ``$SLIPWAY_CONTEXT``, else the current context's, else the local default. A
context's session is ``session-<name>.json``; without a context it is ``session.json``, as
before contexts existed. Files are written readable by the user only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway_cli.inputs import UsageError

DEFAULT_URL = "http://127.0.0.1:8080"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ContextError(UsageError):
    """A context that does not exist or cannot be: a usage error (exit 2)."""


@dataclass(frozen=True)
class Context:
    name: str
    url: str


def config_dir() -> Path:
    base = os.environ.get("SLIPWAY_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "slipway"
    )
    return Path(base)


def write_private(path: Path, data: Any) -> None:
    """JSON readable by this user only (the directory too)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)


def _load() -> dict[str, Any]:
    try:
        saved = json.loads((config_dir() / "contexts.json").read_text())
    except (OSError, ValueError):
        return {"current": None, "contexts": {}}
    return saved if isinstance(saved, dict) else {"current": None, "contexts": {}}


def listed() -> tuple[list[Context], str | None]:
    saved = _load()
    items = [Context(n, str(c.get("url", ""))) for n, c in sorted(saved["contexts"].items())]
    return items, os.environ.get("SLIPWAY_CONTEXT") or saved.get("current")  # the active one


def add(name: str, url: str) -> Context:
    if not _NAME.match(name):
        raise ContextError(f"{name!r}: a context's name is lowercase letters, digits, - and _")
    if not re.match(r"^https?://[^\s/]+(/.*)?$", url):
        raise ContextError(f"{url!r}: the gateway's URL, http(s)://host[:port]")
    saved = _load()
    saved["contexts"][name] = {"url": url.rstrip("/")}
    saved["current"] = saved.get("current") or name  # the first one added is used
    write_private(config_dir() / "contexts.json", saved)
    return Context(name, url.rstrip("/"))


def use(name: str) -> Context:
    saved = _load()
    if name not in saved["contexts"]:
        raise ContextError(f"no context {name!r} (slipway context list)")
    saved["current"] = name
    write_private(config_dir() / "contexts.json", saved)
    return Context(name, saved["contexts"][name]["url"])


def remove(name: str) -> None:
    saved = _load()
    if saved["contexts"].pop(name, None) is None:
        raise ContextError(f"no context {name!r} (slipway context list)")
    if saved.get("current") == name:
        saved["current"] = None
    write_private(config_dir() / "contexts.json", saved)
    session_path(name).unlink(missing_ok=True)


def active() -> Context | None:
    """The context commands use ($SLIPWAY_CONTEXT, else the current one), if any."""
    saved = _load()
    name = os.environ.get("SLIPWAY_CONTEXT") or saved.get("current")
    if not name:
        return None
    if name not in saved["contexts"]:
        raise ContextError(f"no context {name!r} (slipway context list)")
    return Context(name, saved["contexts"][name]["url"])


def api_url() -> str:
    if os.environ.get("SLIPWAY_API_URL"):
        return os.environ["SLIPWAY_API_URL"].rstrip("/")
    context = active()
    return context.url if context else DEFAULT_URL


def session_path(name: str | None = None) -> Path:
    """Where the session of a context (default: the active one) is saved."""
    if name is None:
        context = None if os.environ.get("SLIPWAY_API_URL") else active()
        name = context.name if context else None
    return config_dir() / (f"session-{name}.json" if name else "session.json")
