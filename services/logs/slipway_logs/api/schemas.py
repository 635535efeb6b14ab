"""The answers of the read API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from slipway_logs.domain.lines import Line, LineKind, OutputStream
from slipway_logs.domain.paging import Page
from slipway_logs.usecases.retention import OrganizationRetention


class LineOut(BaseModel):
    cursor: int
    at: datetime
    kind: LineKind  # build | deploy | live: the step that printed it
    stream: OutputStream
    service_id: uuid.UUID | None
    build_id: uuid.UUID | None
    text: str


class PageOut(BaseModel):
    items: list[LineOut]
    next_cursor: int | None  # pass as ``after`` for the next page
    prev_cursor: int | None  # pass as ``before`` for the previous page
    head_cursor: int  # the stream's newest cursor at the time of the read (0: none)


def line_out(line: Line) -> LineOut:
    return LineOut(
        cursor=line.cursor,
        at=line.at,
        kind=line.kind,
        stream=line.stream,
        service_id=line.service_id,
        build_id=line.build_id,
        text=line.text,
    )


def page_out(page: Page) -> PageOut:
    return PageOut(
        items=[line_out(line) for line in page.items],
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
        head_cursor=page.head_cursor,
    )


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # fewer days than the installation keeps lines; null: as long as the installation
    days: int | None = Field(ge=1)


class RetentionOut(BaseModel):
    days: int | None
    default_days: int
    effective_days: int


def retention_out(retention: OrganizationRetention) -> RetentionOut:
    return RetentionOut(
        days=retention.days,
        default_days=retention.default_days,
        effective_days=retention.effective_days,
    )
