"""What the user typed, made into the API's request bodies (pure: no I/O, unit-tested).

A problem raises ``UsageError`` with a sentence naming the option; the command line shows it as a
usage error (exit code 2), before anything is sent.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

KINDS = ("application", "container", "database", "cronjob", "job")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# the API's name for a run-once job is "lifecycle" (it runs on start/stop/delete)
_API_KIND = {"job": "lifecycle"}


class UsageError(ValueError):
    pass


def assignment(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (the value may contain ``=`` and be empty)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"expected KEY=VALUE, got {text!r}")
    if not _KEY.match(key):
        raise UsageError(f"{key!r} is not a variable name (letters, digits, _; not a digit first)")
    return key, value


def image(reference: str, tag: str | None = None) -> dict[str, str]:
    """``[registry/]name[:tag]`` as the API's image source; the first part is a registry when
    it looks like a host (a dot or a port, or ``localhost``), as docker reads it."""
    first, slash, rest = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", reference
    name, colon, written_tag = path.rpartition(":") if ":" in path else (path, "", "")
    if not name:
        raise UsageError(f"--image {reference!r}: no image name")
    chosen = tag or (written_tag if colon else "") or "latest"
    return {"registry": registry, "name": name, "tag": chosen}


def port(text: str) -> dict[str, Any]:
    """``8080``, ``8080/tcp`` or ``8080/grpc``."""
    number, _, protocol = text.partition("/")
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise UsageError(f"--port {text!r}: a port number 1-65535, optionally /http|grpc|tcp")
    if protocol and protocol not in ("http", "grpc", "tcp"):
        raise UsageError(f"--port {text!r}: the protocol is http, grpc or tcp")
    return {"port": int(number), "protocol": protocol or "http"}


@dataclass(frozen=True, kw_only=True)
class ServiceOptions:
    name: str
    kind: str
    repo: str | None = None
    branch: str | None = None
    dockerfile: str | None = None
    root: str | None = None
    image: str | None = None
    tag: str | None = None
    ports: list[str] = field(default_factory=list)
    private: bool = False
    engine: str | None = None
    version: str | None = None
    schedule: str | None = None
    timezone: str | None = None
    command: str | None = None
    triggers: list[str] = field(default_factory=list)


def service_body(options: ServiceOptions) -> dict[str, Any]:
    """The body of ``POST /environments/{env}/services`` for the kind's options; options of
    another kind are refused rather than silently dropped."""
    kind = options.kind
    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}")
    _refuse_foreign(options)
    body: dict[str, Any] = {"name": options.name, "kind": _API_KIND.get(kind, kind)}
    if kind == "database":
        if not options.engine:
            raise UsageError("a database needs --engine (postgresql, mysql, mongodb, redis)")
        body["engine"] = options.engine
        if options.version:
            body["version"] = options.version
        return body
    body.update(_source(options))
    if kind in ("application", "container") and options.ports:
        body["ports"] = [{**port(p), "public": not options.private} for p in options.ports]
    if options.command:
        body["command"] = shlex.split(options.command)
    if kind == "cronjob":
        if not options.schedule:
            raise UsageError("a cron job needs --schedule (5 cron fields, e.g. '*/5 * * * *')")
        body["schedule"] = options.schedule
        if options.timezone:
            body["timezone"] = options.timezone
    if kind == "job" and options.triggers:
        body["triggers"] = options.triggers
    return body


def _source(options: ServiceOptions) -> dict[str, Any]:
    """Built from git (``--repo``) or pulled (``--image``): applications build, containers
    pull, jobs do either."""
    if options.kind == "application" and not options.repo:
        raise UsageError("an application is built from git: give --repo")
    if options.kind == "container" and not options.image:
        raise UsageError("a container runs an image: give --image")
    if options.repo and options.image:
        raise UsageError("give --repo or --image, not both")
    if options.repo:
        git: dict[str, Any] = {"url": options.repo}
        for key, value in (
            ("branch", options.branch),
            ("dockerfile_path", options.dockerfile),
            ("root_path", options.root),
        ):
            if value:
                git[key] = value
        return {"git": git}
    if options.image:
        return {"image": image(options.image, options.tag)}
    raise UsageError(f"a {options.kind} needs --repo or --image")


# which options belong to which kinds (the others are refused)
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "repo": ("application", "cronjob", "job"),
    "branch": ("application", "cronjob", "job"),
    "dockerfile": ("application", "cronjob", "job"),
    "root": ("application", "cronjob", "job"),
    "image": ("container", "cronjob", "job"),
    "tag": ("container", "cronjob", "job"),
    "ports": ("application", "container"),
    "private": ("application", "container"),
    "engine": ("database",),
    "version": ("database",),
    "schedule": ("cronjob",),
    "timezone": ("cronjob",),
    "command": ("application", "container", "cronjob", "job"),
    "triggers": ("job",),
}


def _refuse_foreign(options: ServiceOptions) -> None:
    for name, kinds in _ONLY_FOR.items():
        if getattr(options, name) and options.kind not in kinds:
            flag = "--" + name.removesuffix("s") if name in ("ports", "triggers") else f"--{name}"
            raise UsageError(f"{flag} does not apply to a {options.kind}")


def merge_patch(sets: list[str], unsets: list[str]) -> dict[str, Any]:
    """``--set git.branch=dev --set min_instances=2 --unset healthchecks`` as a JSON merge patch
    (RFC 7396, what ``PATCH /services/{id}`` takes): dotted paths nest, a value is JSON when it
    reads as JSON (numbers, true/false, lists, objects) else a string, an unset path is null
    (back to its default)."""
    patch: dict[str, Any] = {}
    for text in sets:
        path, sep, raw = text.partition("=")
        if not sep or not path:
            raise UsageError(f"--set {text!r}: expected path=value, like git.branch=dev")
        _put(patch, path, _value(raw))
    for path in unsets:
        _put(patch, path, None)
    if not patch:
        raise UsageError("nothing to change: give --set path=value or --unset path")
    return patch


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _put(patch: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    if not leaf or any(not p for p in parents):
        raise UsageError(f"{path!r}: not a field path")
    node = patch
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"{path}: {part} is set to a value and used as an object")
        node = child
    node[leaf] = value
