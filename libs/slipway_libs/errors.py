"""The error classes every layer agrees on.

- ``BusinessError``: the request is wrong or not allowed now; carries a stable ``code`` and an
  HTTP status (4xx). The API answers it as ``{"error": {"code", "message", "details"}}``.
- ``RetryableError``: a temporary failure (a dependency down, a lock timeout); consumers back off
  and retry it.
- ``PermanentError``: processing this input can never succeed; consumers send it to the
  dead-letter topic instead of retrying.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class BusinessError(Exception):
    status_code = 400
    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details
        self.headers = headers or {}


class DomainError(BusinessError):
    """A business rule broken, with a stable code and (when one field is at fault) its path."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, code=code, details={"field": field} if field else None)
        self.field = field


class InvalidInput(DomainError):
    status_code = 422


class Missing(DomainError):
    status_code = 404


class Clash(DomainError):
    status_code = 409


class Denied(DomainError):
    status_code = 403


class Unauthenticated(DomainError):
    status_code = 401


class RateLimited(DomainError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__("RATE_LIMITED", message)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class RetryableError(Exception):
    """Try again later; ``delay_s`` suggests when."""

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PermanentError(Exception):
    """This input will never be processed successfully."""


class ErrorBody(BaseModel):
    """What every refusal carries: a stable code to branch on, a message for people."""

    code: str = Field(examples=["ENVIRONMENT_NOT_FOUND"])
    message: str = Field(examples=["No such environment."])
    details: Any = Field(
        default=None,
        description="Which fields are at fault and why (a list for 422 VALIDATION_ERROR), "
        "or what the code needs to be acted on; null when the code says it all.",
    )


class ErrorResponse(BaseModel):
    """``{"error": {"code", "message", "details"}}``: the answer of every 4xx and 5xx."""

    error: ErrorBody
