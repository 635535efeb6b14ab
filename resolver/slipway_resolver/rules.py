"""What one variable may be on its own: its key, mount path, value and size; and the error every
rule of the resolver raises."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slipway_contracts.variables import VariableIn

RESERVED_PREFIX = "SLIPWAY_"
MAX_KEY_LENGTH = 128
MAX_MOUNT_PATH_LENGTH = 4096
MAX_FILE_BYTES = 1024 * 1024  # what one Kubernetes Secret or ConfigMap holds
MAX_ENV_STRING_BYTES = 128 * 1024 - 1  # Linux MAX_ARG_STRLEN, less the NUL, for "KEY=value"

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ResolutionError(ValueError):
    """A variable set that cannot be resolved. ``code`` is stable; ``key`` is the variable at fault.

    Codes: INVALID_KEY, RESERVED_KEY, INVALID_SCOPE, DUPLICATE_KEY, BUILT_IN_READ_ONLY,
    INVALID_MOUNT_PATH, MOUNT_PATH_CONFLICT, INVALID_VALUE, VALUE_TOO_LARGE, ALIAS_TARGET_INVALID,
    ALIAS_TARGET_MISSING, OVERRIDE_TARGET_MISSING, INTERPOLATION_MISSING, VARIABLE_CYCLE,
    VARIABLE_IN_USE.
    """

    status_code = 422

    def __init__(self, code: str, message: str, *, key: str, path: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key
        self.path = list(path)  # the cycle, for VARIABLE_CYCLE: ["A", "B", "A"]

    @property
    def details(self) -> dict[str, Any]:
        return {"key": self.key, "path": self.path} if self.path else {"key": self.key}

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.code, self.key, self.message)


def validate_key(key: str) -> None:
    """Check a key a user may create; only built-ins may start with ``SLIPWAY_``."""
    _check_key_syntax(key)
    if key.startswith(RESERVED_PREFIX):
        raise ResolutionError(
            "RESERVED_KEY", f"Keys starting with {RESERVED_PREFIX} are reserved.", key=key
        )


def check_variable(var: VariableIn) -> None:
    """Raise the first problem ``var`` has on its own, whatever else the set holds."""
    if var.kind == "built_in":
        _check_built_in(var)
    else:
        validate_key(var.key)
    if var.kind == "alias" and (len(var.value) > MAX_KEY_LENGTH or not KEY.fullmatch(var.value)):
        raise ResolutionError(
            "ALIAS_TARGET_INVALID", f"{var.key} must name the variable it aliases.", key=var.key
        )
    _check_mount_path(var)
    _check_value(var)


def check_size(key: str, value: str, mount_path: str | None) -> None:
    """A resolved value must fit where it is delivered: one environment string, or one file."""
    size = len(value.encode())
    if mount_path is None:
        size += len(key) + 1  # the kernel counts "KEY=value"
    if size > (MAX_FILE_BYTES if mount_path else MAX_ENV_STRING_BYTES):
        raise too_large(key)


def too_large(key: str) -> ResolutionError:
    return ResolutionError(
        "VALUE_TOO_LARGE",
        f"{key} is too large once resolved: an environment variable holds at most"
        f" {MAX_ENV_STRING_BYTES} bytes with its key, a file {MAX_FILE_BYTES} bytes.",
        key=key,
    )


def read_only(key: str) -> ResolutionError:
    return ResolutionError(
        "BUILT_IN_READ_ONLY", f"{key} is built in: alias it instead of changing it.", key=key
    )


def _check_key_syntax(key: str) -> None:
    if len(key) > MAX_KEY_LENGTH or not KEY.fullmatch(key):
        raise ResolutionError(
            "INVALID_KEY",
            "A key is made of letters, digits and _, does not start with a digit, and has at"
            f" most {MAX_KEY_LENGTH} characters.",
            key=key,
        )


def _check_built_in(var: VariableIn) -> None:
    _check_key_syntax(var.key)
    if not var.key.startswith(RESERVED_PREFIX):
        raise ResolutionError(
            "INVALID_KEY", f"Built-in variables are named {RESERVED_PREFIX}*.", key=var.key
        )
    if var.scope == "project":
        raise ResolutionError(
            "INVALID_SCOPE",
            "Built-in variables belong to an environment or a service.",
            key=var.key,
        )


def _check_mount_path(var: VariableIn) -> None:
    path = var.mount_path
    if var.kind != "file":
        if path is not None:
            raise ResolutionError(
                "INVALID_MOUNT_PATH", "Only file variables have a mount path.", key=var.key
            )
        return
    parts = (path or "").split("/")
    if (
        path is None
        or len(path) > MAX_MOUNT_PATH_LENGTH
        or "\x00" in path
        or parts[0] != ""
        or any(part in ("", ".", "..") for part in parts[1:])
    ):
        raise ResolutionError(
            "INVALID_MOUNT_PATH",
            "A file variable needs an absolute file path, such as /etc/app/config.yaml.",
            key=var.key,
        )


def _check_value(var: VariableIn) -> None:
    if "\x00" in var.value:
        raise ResolutionError("INVALID_VALUE", "Values cannot contain NUL characters.", key=var.key)
    try:
        size = len(var.value.encode())
    except UnicodeEncodeError:
        raise ResolutionError(
            "INVALID_VALUE", "Values must be valid Unicode text.", key=var.key
        ) from None
    if size > MAX_FILE_BYTES:
        raise too_large(var.key)
