"""Domain errors of the identity service (the shared family, under the names used here)."""

from slipway_libs.errors import Clash as Conflict
from slipway_libs.errors import Denied as Forbidden
from slipway_libs.errors import DomainError, InvalidInput, RateLimited, Unauthenticated
from slipway_libs.errors import Missing as NotFound

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RateLimited",
    "Unauthenticated",
]
