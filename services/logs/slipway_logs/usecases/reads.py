"""Reading a stream back: a page of whole lines (parts joined) in cursor order, of at most
``paging.MAX_PAGE_BYTES`` of text (a longer page ends early, with its next or previous cursor).

A stream the service never heard of and another tenant's stream answer the same empty page
(the gateway answers 404 for ids the caller may not see; the service cannot tell "no line
yet" from "no such deployment", since it learns of streams only from their lines)."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_logs.db import queries
from slipway_logs.domain import lines, paging
from slipway_logs.domain.lines import StreamKind


async def read(
    conn: asyncpg.Connection,
    stream_kind: StreamKind,
    stream_id: uuid.UUID,
    query: paging.LogQuery,
    *,
    organization_id: uuid.UUID | None,
) -> paging.Page:
    head = await queries.stream_head(conn, stream_kind, stream_id)
    if head is None:
        return paging.Page(items=[], next_cursor=None, prev_cursor=None, head_cursor=0)
    found = await queries.read_cursors(conn, stream_id, query, organization_id)
    cursors, more = paging.chosen(query, found)
    if cursors:
        sizes = await queries.line_bytes(conn, stream_id, cursors)
        cursors, more = paging.within_budget(query, cursors, sizes, more=more)
    parts = await queries.read_parts(conn, stream_id, cursors) if cursors else []
    return paging.page(query, lines.join(parts), more=more, head=head)
