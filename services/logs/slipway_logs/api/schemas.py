"""The answers of the read API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from slipway_logs.domain.lines import Line, LineKind, OutputStream
from slipway_logs.domain.paging import Page


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
