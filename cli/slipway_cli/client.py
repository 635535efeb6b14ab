"""The public API's transport, as the CLI uses it: the gateway URL, the saved session, the
catalog revisions handed back, safe retries, errors as ``ApiError`` (the typed routes: ``api``)."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from slipway_cli.contexts import api_url, config_dir, session_path, write_private


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retry_after: float | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.retry_after, self.details = retry_after, details

    def detail_lines(self) -> list[str]:
        """What the API said more: each invalid field with why, or the field named."""
        if isinstance(self.details, list):
            return [
                f"  {d.get('path') or d.get('field') or '?'}: {d.get('message', '')}"
                for d in self.details
                if isinstance(d, dict)
            ]
        if isinstance(self.details, dict) and self.details.get("field"):
            return [f"  field: {self.details['field']}"]
        return []


def save_session(tokens: dict[str, Any]) -> Path:
    """The session tokens of the active context, readable by this user only."""
    path = session_path()
    write_private(path, {"url": api_url(), **tokens})
    return path


def _authorization() -> dict[str, str]:
    token = os.environ.get("SLIPWAY_TOKEN")  # an API token, for CI
    if token:
        return {"authorization": f"Token {token}"}
    path = session_path()
    if path.exists():
        session = json.loads(path.read_text())
        return {"authorization": f"Bearer {session['access_token']}"}
    return {}


def auth_headers() -> dict[str, str]:
    """The credentials (and origin) every request of the CLI carries."""
    return {"x-slipway-origin": "cli", **_authorization()}


# read-your-writes: the catalog answers each write with its project's revision; handed back
# with the next requests, it makes the deployer serve them from a copy of the catalog that has
# the write (one CLI command after another may reach different gateways)
REVISION_HEADER = "x-slipway-catalog-revision"
_REVISIONS_KEPT = 16  # projects, the most recently written


def _revisions_path() -> Path:
    return config_dir() / "catalog-revisions.json"


def _load_revisions() -> dict[str, int]:
    try:
        saved = json.loads(_revisions_path().read_text())
    except (OSError, ValueError):
        return {}
    return (
        {str(k): v for k, v in saved.items() if isinstance(v, int)}
        if isinstance(saved, dict)
        else {}
    )


def _remember_revisions(header: str) -> None:
    revisions = _load_revisions()
    for item in header.split(","):
        project, _, number = item.strip().partition(":")
        if project and number.isdigit():
            revisions[project] = max(int(number), revisions.pop(project, 0))  # now the newest
    kept = dict(list(revisions.items())[-_REVISIONS_KEPT:])
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(_revisions_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(kept, handle)


def _revision_headers() -> dict[str, str]:
    revisions = _load_revisions()
    if not revisions:
        return {}
    return {REVISION_HEADER: ",".join(f"{p}:{n}" for p, n in revisions.items())}


# Safe retries: a POST that creates or triggers carries an Idempotency-Key, the same on every
# attempt, so a retry after a timeout or a gateway 502/503/504 answers the first attempt's result
# and never queues a second deployment. A GET is retried as it is. The /auth routes (signup,
# login) are not retried: they are the user's to try again.
_ATTEMPTS = 4
_RETRIED_STATUSES = frozenset({502, 503, 504})
# asked to come back: the key's first request still runs, the deployer's copy of the catalog is
# a moment behind a write (both answer Retry-After)
_RETRIED_CODES = frozenset({"IDEMPOTENCY_KEY_IN_USE", "CATALOG_NOT_CAUGHT_UP"})
_MAX_PAUSE_S = 5.0


def _retried(method: str, path: str) -> bool:
    return method in ("GET", "POST") and not path.startswith("/auth/")


def call(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    *,
    auth: bool = True,
    headers: dict[str, str] | None = None,
) -> Any:
    """``headers``: the request's own (an ``If-Match``), besides the credentials and the rest."""
    headers = {
        "x-slipway-origin": "cli",
        **(_authorization() if auth else {}),
        **_revision_headers(),
        **(headers or {}),
    }
    if method == "POST" and _retried(method, path):
        headers["idempotency-key"] = str(uuid.uuid4())
    attempts = _ATTEMPTS if _retried(method, path) else 1
    for attempt in range(1, attempts + 1):
        try:
            return _attempt(method, path, body, params, headers)
        except ApiError as exc:
            if attempt == attempts or not _again(exc):
                raise
            time.sleep(min(_MAX_PAUSE_S, exc.retry_after or 0.25 * 2**attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _again(exc: ApiError) -> bool:
    return exc.status == 0 or exc.status in _RETRIED_STATUSES or exc.code in _RETRIED_CODES


def _attempt(
    method: str,
    path: str,
    body: dict[str, Any] | None,
    params: dict[str, str] | None,
    headers: dict[str, str],
) -> Any:
    try:
        response = httpx.request(
            method,
            f"{api_url()}/api/v1{path}",
            json=body,
            params=params,
            headers=headers,
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise ApiError(0, "UNREACHABLE", f"cannot reach {api_url()}: {exc}") from None
    if response.headers.get(REVISION_HEADER):
        _remember_revisions(response.headers[REVISION_HEADER])
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message, error = "HTTP_ERROR", response.text[:200], {}
        details = error.get("details")
        raise ApiError(response.status_code, code, message, _seconds(response), details)
    return response.json() if response.content else None


def _seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None
