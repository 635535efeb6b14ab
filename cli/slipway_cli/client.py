"""The public API, as the CLI uses it: the gateway URL, the saved session, errors as messages."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def config_dir() -> Path:
    base = os.environ.get("SLIPWAY_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "slipway"
    )
    return Path(base)


def api_url() -> str:
    return os.environ.get("SLIPWAY_API_URL", DEFAULT_URL).rstrip("/")


def save_session(tokens: dict[str, Any]) -> Path:
    """The session tokens, readable by this user only."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "session.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": api_url(), **tokens}, handle)
    return path


def _authorization() -> dict[str, str]:
    token = os.environ.get("SLIPWAY_TOKEN")  # an API token, for CI
    if token:
        return {"authorization": f"Token {token}"}
    path = config_dir() / "session.json"
    if path.exists():
        session = json.loads(path.read_text())
        return {"authorization": f"Bearer {session['access_token']}"}
    return {}


def call(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    *,
    auth: bool = True,
) -> Any:
    headers = {"x-slipway-origin": "cli", **(_authorization() if auth else {})}
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
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise ApiError(response.status_code, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(response.status_code, "HTTP_ERROR", response.text[:200]) from None
    return response.json() if response.content else None
