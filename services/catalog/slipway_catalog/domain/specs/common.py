"""Shared pieces of the service specs: error helpers, names and paths, git and image sources."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from slipway_libs.fields import Text, Value

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str, str, Any]  # (loc, stable code, message, offending value)


def _invalid(problems: Sequence[Problem]) -> ValidationError:
    details = [
        InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=value)
        for loc, code, message, value in problems
    ]
    return ValidationError.from_exception_data("ServiceSpec", details)


def _check(problems: Sequence[Problem]) -> None:
    if problems:
        raise _invalid(problems)


def _matching(code: str, pattern: str, message: str, max_length: int) -> AfterValidator:
    """The whole string must match ``pattern``; the message never quotes the user's text."""
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if len(value) > max_length or not compiled.fullmatch(value):
            raise PydanticCustomError(code, message)
        return value

    return AfterValidator(validate)


class _Model(BaseModel):
    # strict: a port is a number, not `true` (stored as 1) or "80"; specs hold no ids or times
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# A spec is stored as jsonb, which refuses NUL and unpaired surrogates: every free-form string of
# a spec is a Text or a Value, or a pattern that excludes them (the ones below and the ASCII ones).
Description = Annotated[Text, Field(max_length=500)]


def _optional_in_schema(*fields: str) -> ConfigDict:
    """For fields a before-validator fills in: the published JSON Schema must not require them."""

    def edit(schema: dict[str, Any]) -> None:
        schema["required"] = [name for name in schema.get("required", []) if name not in fields]

    return ConfigDict(json_schema_extra=edit)


# --- names, paths, command lines ------------------------------------------------------------

_DNS_LABEL = r"[a-z]([a-z0-9-]*[a-z0-9])?"
_NAME_RULE = "1-63 lowercase letters, digits and '-', starting with a letter, not ending with '-'"
ServiceName = Annotated[str, _matching("invalid_name", _DNS_LABEL, _NAME_RULE, 63)]
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
EnvName = Annotated[str, _matching("invalid_env_name", _ENV_NAME, "letters, digits and '_'", 256)]
_NO_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _segments(value: str) -> list[str]:
    if _NO_CONTROL.search(value) or len(value) > 1024:
        raise PydanticCustomError("invalid_path", "at most 1024 characters, no control characters")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PydanticCustomError("invalid_path", "'..' is not allowed in a path")
    return parts


def _repo_dir(value: str) -> str:
    return "/" + "/".join(_segments(value))


def _repo_file(value: str) -> str:
    if value.startswith("/") or value.endswith("/"):
        raise PydanticCustomError("invalid_path", "a file path relative to root_path")
    parts = _segments(value)
    if not parts:
        raise PydanticCustomError("invalid_path", "a file path relative to root_path")
    return "/".join(parts)


RepoDir = Annotated[str, AfterValidator(_repo_dir)]
RepoFile = Annotated[str, AfterValidator(_repo_file)]
Argument = Annotated[Value, Field(max_length=4096)]
# null keeps the image's own entrypoint or arguments; an empty list would be ambiguous: refused
Argv = Annotated[list[Argument], Field(min_length=1, max_length=256)]
Cpu = Annotated[int, Field(ge=10, le=64000)]
Memory = Annotated[int, Field(ge=16, le=262144)]


# --- git ------------------------------------------------------------------------------------

_SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9._~-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^:].*)")
_REMOTE_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_OPTION_LIKE = re.compile(r"(^|[/:@?&=#;])-|--")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_GIT_FORMS = "https://host/repo.git, ssh://host/repo.git, git@host:org/repo.git or a local path"


def _git_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_git_url", message)


def _check_url(value: str, *, code: str, hint: str, user: bool = False, path: bool = True) -> None:
    """Refuse credentials (a bare user only when ``user``), a bad port, a missing host or path."""
    parts = urlsplit(value)
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and (not user or ":" in userinfo):
        raise PydanticCustomError(code, "no credentials in the URL: {hint}", {"hint": hint})
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise PydanticCustomError(code, "the URL has an invalid port") from None
    if not parts.hostname or (path and parts.path in ("", "/")) or parts.query or parts.fragment:
        raise PydanticCustomError(code, "the URL needs a host and a path, no query or fragment")


def _git_url(value: str) -> str:
    if _REMOTE_HELPER.match(value):
        raise _git_error("remote helper transports (ext::, fd::, ...) are not allowed")
    if not value or len(value) > 2048 or _SPACE_OR_CONTROL.search(value):
        raise _git_error("1-2048 characters, no spaces or control characters")
    if _OPTION_LIKE.search(value):
        raise _git_error("'-' may not start a URL or one of its parts, and '--' is not allowed")
    if value.startswith("https://"):
        _check_url(value, code="invalid_git_url", hint="register a git token instead")
    elif value.startswith("ssh://"):
        _check_url(value, code="invalid_git_url", hint="use an ssh key", user=True)
    elif value.startswith(("file://", "/")):
        path = value.removeprefix("file://")
        if not path.startswith("/") or ".." in path.split("/"):
            raise _git_error("a local repository is an absolute path without '..'")
    elif value.startswith(("http://", "git://")):
        raise _git_error("unencrypted transports are not allowed: use https or ssh")
    elif not _SCP_LIKE.fullmatch(value):
        raise _git_error(f"expected {_GIT_FORMS}")
    return value


_BAD_REF = re.compile(
    r"^[-/.]|[/.]$|\.lock$|\.\.|//|/\.|\.lock/|@\{|[\x00-\x20\x7f-\x9f\ud800-\udfff~^:?*\[\\]"
)


def _git_ref(value: str) -> str:
    if not value or value == "@" or len(value) > 255 or _BAD_REF.search(value):
        raise PydanticCustomError("invalid_branch", "not a valid git branch name")
    return value


def _commit(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{7,40}", value):
        raise PydanticCustomError("invalid_commit", "a commit sha: 7 to 40 hexadecimal digits")
    return value.lower()


GitUrl = Annotated[str, AfterValidator(_git_url)]
GitRef = Annotated[str, AfterValidator(_git_ref)]
CommitSha = Annotated[str, AfterValidator(_commit)]


class GitSource(_Model):
    url: GitUrl
    branch: GitRef = "main"
    commit: CommitSha | None = None  # null: the branch's latest commit at deploy time
    root_path: RepoDir = "/"
    dockerfile_path: RepoFile = "Dockerfile"  # relative to root_path
    build_args: dict[EnvName, Argument] = Field(default_factory=dict, max_length=100)


# --- images ---------------------------------------------------------------------------------

_HOST_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_REGISTRY = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*(:(?P<port>[0-9]{{1,5}}))?")
_REPO_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_IMAGE_NAME = re.compile(rf"{_REPO_COMPONENT}(/{_REPO_COMPONENT})*")


def _registry(value: str) -> str:
    value = value.lower()
    match = _REGISTRY.fullmatch(value)
    if len(value) > 253 or not match or not 0 < int(match["port"] or 443) < 65536:
        raise PydanticCustomError("invalid_registry", "a registry host with an optional :port")
    return value


def _image_name(value: str) -> str:
    first, slash, _ = value.partition("/")
    if ":" in value or "@" in value:
        raise PydanticCustomError("invalid_image_name", "put the tag in 'tag', not in the name")
    if slash and ("." in first or first == "localhost"):
        raise PydanticCustomError("invalid_image_name", "put the registry host in 'registry'")
    if len(value) > 255 or not _IMAGE_NAME.fullmatch(value):
        raise PydanticCustomError(
            "invalid_image_name", "lowercase path components of letters, digits, '.', '_', '-'"
        )
    return value


_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_TAG_RULE = "up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'"


class ImageSource(_Model):
    registry: Annotated[str, AfterValidator(_registry)] = "docker.io"
    name: Annotated[str, AfterValidator(_image_name)]
    tag: Annotated[str, _matching("invalid_image_tag", _TAG, _TAG_RULE, 128)] = "latest"
