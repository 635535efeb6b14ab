"""Log-line events as the builder and the deployer publish them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from slipway_contracts import Envelope, new_event
from slipway_contracts.events.logs import LogLine, LogLinesAppended


def lines_event(
    organization_id: uuid.UUID,
    *texts: str,
    kind: str = "deploy",
    deployment_id: uuid.UUID | None = None,
    service_id: uuid.UUID | None = None,
    build_id: uuid.UUID | None = None,
    stream: str = "stdout",
) -> Envelope:
    payload = LogLinesAppended(
        kind=kind,  # type: ignore[arg-type]
        deployment_id=deployment_id,
        service_id=service_id,
        build_id=build_id,
        lines=[LogLine(at=datetime.now(UTC), stream=stream, text=t) for t in texts],  # type: ignore[arg-type]
    )
    key = deployment_id if kind != "live" else service_id
    return new_event(payload, subject=str(key), source="test", organization_id=organization_id)
