"""Domain errors of the identity service, each with a stable code and the failing field."""

from __future__ import annotations

from slipway_libs.errors import BusinessError


class DomainError(BusinessError):
    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, code=code, details={"field": field} if field else None)
        self.field = field


class InvalidInput(DomainError):
    status_code = 422


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Forbidden(DomainError):
    status_code = 403


class Unauthenticated(DomainError):
    status_code = 401


class RateLimited(DomainError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__("RATE_LIMITED", message)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}
