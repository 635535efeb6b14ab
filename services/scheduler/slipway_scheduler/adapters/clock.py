"""The system's clock (tests drive a hand-held one through the same ``Clock`` protocol)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
