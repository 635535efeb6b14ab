"""Log lines, produced by the builder (build logs) and the deployer (deployment and live logs).

One event carries a small batch of lines of one source, in order, so that a chatty build does not
cost one Kafka record per line. Keyed by the deployment id (build/deploy logs) or the service id
(live logs) so that one source's lines stay ordered.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from slipway_contracts.envelope import EventPayload

LINES_TOPIC = "logs.lines.v1"


class LogLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    at: datetime
    stream: Literal["stdout", "stderr", "system"]
    text: str


class LogLinesAppended(EventPayload):
    event_type = "logs.LogLinesAppended"
    topic = LINES_TOPIC

    kind: Literal["build", "deploy", "live"]
    environment_id: uuid.UUID | None = None
    service_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    build_id: uuid.UUID | None = None
    lines: list[LogLine]


PAYLOADS: tuple[type[EventPayload], ...] = (LogLinesAppended,)
