"""Slipway's variable resolver: how the variables one service receives are resolved. Pure.

The catalog (its API's checks and resolved view) and the deployer (what it hands to a running
service) both depend on this package, so both resolve exactly alike; it is versioned with them,
not with the event contracts. The shapes it works on (``VariableIn``, ``Resolved``,
``DatabaseConnectionInfo``) are in ``slipway_contracts.variables``.

- ``resolution``: precedence, overrides, aliases, interpolation, cycles; the save/delete checks.
- ``rules``: what one variable may be on its own (key, mount path, size) and ``ResolutionError``.
- ``builtin_variables``: the ``SLIPWAY_*`` variables generated for a service, database URLs.
"""

from slipway_resolver.builtin_variables import DATABASE_PORTS, built_ins, database_url, env_name
from slipway_resolver.resolution import (
    check_can_delete,
    check_can_save,
    find_problems,
    masked,
    resolve,
)
from slipway_resolver.rules import (
    MAX_ENV_STRING_BYTES,
    MAX_FILE_BYTES,
    MAX_KEY_LENGTH,
    MAX_MOUNT_PATH_LENGTH,
    RESERVED_PREFIX,
    ResolutionError,
    validate_key,
)

__all__ = [
    "DATABASE_PORTS",
    "MAX_ENV_STRING_BYTES",
    "MAX_FILE_BYTES",
    "MAX_KEY_LENGTH",
    "MAX_MOUNT_PATH_LENGTH",
    "RESERVED_PREFIX",
    "ResolutionError",
    "built_ins",
    "check_can_delete",
    "check_can_save",
    "database_url",
    "env_name",
    "find_problems",
    "masked",
    "resolve",
    "validate_key",
]
