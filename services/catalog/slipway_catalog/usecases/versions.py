"""Concurrent edits: a write that names the version it was based on (``If-Match``) is refused
with 412 when another change came first (``slipway_libs.preconditions``)."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_libs import preconditions


async def require(
    conn: asyncpg.Connection, table: str, row_id: uuid.UUID, if_match: str | None
) -> None:
    """Before the write, in its transaction: the row stays locked until it commits. A missing
    row is left to the write, which answers its own 404."""
    if if_match is None:
        return
    current = await q.locked_version(conn, table, row_id)
    if current is not None:
        preconditions.require(if_match, current)
