"""Outgoing webhooks: what an organization subscribes to, how a delivery is signed, which
events match, and when a failed delivery is tried again. Pure: no I/O."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from slipway_libs.errors import InvalidInput

SIGNATURE_HEADER = "X-Slipway-Signature"
EVENTS = frozenset(
    {
        "deployment.queued",
        "deployment.started",
        "deployment.succeeded",
        "deployment.failed",
        "deployment.canceled",
        "environment.stopped",
    }
)
ENVIRONMENT_MODES = frozenset({"production", "staging", "development", "preview"})
# a delivery that keeps failing is tried again for this long after the event, then given up
RETRY_WINDOW = timedelta(hours=24)
MAX_URL_LENGTH = 2048
MAX_PATTERN_LENGTH = 200


class Format(StrEnum):
    JSON = "json"
    SLACK = "slack"


@dataclass(frozen=True)
class Target:
    """Where deliveries go: an http(s) URL, split the way the egress check needs it."""

    url: str
    host: str
    port: int
    literal_address: bool  # the host is an IP address, checkable before any resolution


def target(url: str) -> Target:
    """The webhook's target, or 422 ``INVALID_WEBHOOK_URL``: http or https, a host, no
    credentials in the URL (they would be logged with every delivery)."""
    if len(url) > MAX_URL_LENGTH:
        raise _bad_url(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad_url("The URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad_url("The URL must be http(s)://host[:port]/path.")
    if parts.username is not None or parts.password is not None:
        raise _bad_url("The URL must not carry credentials; the secret signs each delivery.")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    return Target(
        url=url,
        host=host,
        port=port or (443 if parts.scheme == "https" else 80),
        literal_address=literal,
    )


def _bad_url(message: str) -> InvalidInput:
    return InvalidInput("INVALID_WEBHOOK_URL", message, field="url")


def events(names: list[str]) -> list[str]:
    """The subscribed events, sorted and unique, or 422 ``INVALID_WEBHOOK_EVENT``."""
    unknown = sorted(set(names) - EVENTS)
    if unknown or not names:
        raise InvalidInput(
            "INVALID_WEBHOOK_EVENT",
            f"Events must be some of {', '.join(sorted(EVENTS))}"
            + (f"; unknown: {', '.join(unknown)}." if unknown else "."),
            field="events",
        )
    return sorted(set(names))


def environment_modes(modes: list[str] | None) -> list[str]:
    """The environment modes filtered on (empty: every mode), or 422
    ``INVALID_ENVIRONMENT_MODE``."""
    unknown = sorted(set(modes or []) - ENVIRONMENT_MODES)
    if unknown:
        raise InvalidInput(
            "INVALID_ENVIRONMENT_MODE",
            f"Environment modes must be some of {', '.join(sorted(ENVIRONMENT_MODES))}.",
            field="environment_modes",
        )
    return sorted(set(modes or []))


def project_pattern(pattern: str | None) -> str | None:
    """A glob on project names (``api-*``), or 422 ``INVALID_PROJECT_PATTERN``."""
    if pattern is None or pattern == "":
        return None
    if len(pattern) > MAX_PATTERN_LENGTH or any(ch in pattern for ch in "\r\n\0"):
        raise InvalidInput(
            "INVALID_PROJECT_PATTERN",
            f"The project name pattern is a glob of at most {MAX_PATTERN_LENGTH} characters.",
            field="project_pattern",
        )
    return pattern


def matches(
    *,
    subscribed: list[str],
    pattern: str | None,
    modes: list[str],
    event: str,
    project_name: str | None,
    environment_mode: str | None,
) -> bool:
    """Whether a webhook wants an event: one of its events, a project name its glob matches
    (case-sensitive, as project names are), an environment of one of its modes. An event whose
    project or mode is unknown matches only a webhook that does not filter on it."""
    if event not in subscribed:
        return False
    if pattern is not None and (
        project_name is None or not fnmatch.fnmatchcase(project_name, pattern)
    ):
        return False
    return not modes or environment_mode in modes


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Slipway-Signature``'s value: ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
    ``"<timestamp>." + body`` — the timestamp is signed so that a captured delivery cannot be
    replayed later with a fresh one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """The receiver's check (what the README shows), constant-time."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}")


# each wait is spread by up to this fraction either way, so that the deliveries of one
# receiver's outage do not all come back at the same instant
JITTER = 0.2


def retry_delay(
    attempt: int, *, base_s: float, cap_s: float = 3600.0, fraction: float = 0.5
) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based): ``base_s`` doubled each time,
    at most ``cap_s`` (an hour), so that about twenty attempts spread over the 24 hours; then
    spread by ``JITTER`` either way (``fraction``, in [0, 1], is the caller's random draw: 0.5
    spreads nothing)."""
    delay = min(base_s * 2 ** (min(attempt, 64) - 1), cap_s)
    return timedelta(seconds=delay * (1 - JITTER + 2 * JITTER * fraction))


def next_attempt_after(
    attempt: int,
    elapsed: timedelta,
    *,
    base_s: float,
    cap_s: float = 3600.0,
    fraction: float = 0.5,
    window: timedelta = RETRY_WINDOW,
) -> timedelta | None:
    """How long after failed attempt ``attempt`` to try again, or None when the next try
    would fall past ``window`` after the event (the delivery is then given up)."""
    delay = retry_delay(attempt, base_s=base_s, cap_s=cap_s, fraction=fraction)
    return delay if elapsed + delay <= window else None
