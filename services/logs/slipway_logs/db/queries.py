"""Every SQL statement of the logs service (asyncpg, ``$n`` parameters, typed results).

The follow side builds on three things here: ``NOTIFY_CHANNEL`` (a notification per stream and
ingest commit, payload ``{"stream_kind", "stream_id", "cursor"}`` where ``cursor`` is the
stream's newest), ``stream_head`` (the newest cursor now) and ``read_cursors`` +
``read_parts`` (lines after a cursor, in cursor order).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from slipway_logs.domain.lines import Chunk, Part, Row, StreamGrowth, StreamKind
from slipway_logs.domain.paging import LogQuery

NOTIFY_CHANNEL = "logs_appended"


async def ensure_partition(conn: asyncpg.Connection, day: date | None = None) -> bool:
    """The partition of ``day`` (default: the transaction's own UTC day, where its rows go)."""
    if day is None:
        return bool(
            await conn.fetchval("SELECT logs_ensure_partition((now() AT TIME ZONE 'UTC')::date)")
        )
    return bool(await conn.fetchval("SELECT logs_ensure_partition($1)", day))


async def today(conn: asyncpg.Connection) -> date:
    """The database's UTC day (the partitions follow its clock, not the process's)."""
    day: date = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    return day


async def partitions(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        """
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'log_lines'::regclass
        """
    )
    return [r["relname"] for r in rows]


async def drop_partition(conn: asyncpg.Connection, name: str) -> None:
    """``name`` comes from ``partitions`` (checked by the caller against the naming scheme);
    quoted all the same; its day's search chunks go with it. Dropping needs the parents'
    locks: wait briefly, else try next run."""
    await conn.execute("SET LOCAL lock_timeout = '2s'")
    await conn.execute(f"DROP TABLE IF EXISTS {_identifier(_search_sibling(name))}")
    await conn.execute(f"DROP TABLE IF EXISTS {_identifier(name)}")


def _search_sibling(name: str) -> str:
    """The ``log_search`` partition of the same day as the ``log_lines`` one (migration 0005)."""
    return "log_search_" + name.removeprefix("log_lines_")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def advance_cursors(
    conn: asyncpg.Connection, growth: Sequence[StreamGrowth]
) -> dict[uuid.UUID, int]:
    """Each stream's counter moved on by its lines, locked until the transaction ends (rows in
    ``growth``'s order, which is the stream id order: no deadlock); its new value per stream."""
    rows = await conn.fetch(
        """
        INSERT INTO log_streams AS s
            (stream_id, stream_kind, organization_id, environment_id, last_cursor)
        SELECT stream_id, stream_kind, organization_id, environment_id, lines
        FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::bigint[])
            WITH ORDINALITY AS g(stream_id, stream_kind, organization_id, environment_id,
                                 lines, n)
        ORDER BY n
        ON CONFLICT (stream_id) DO UPDATE
            SET last_cursor = s.last_cursor + excluded.last_cursor, updated_at = now()
        RETURNING stream_id, last_cursor
        """,
        [g.stream_id for g in growth],
        [g.stream_kind for g in growth],
        [g.organization_id for g in growth],
        [g.environment_id for g in growth],
        [g.lines for g in growth],
    )
    return {r["stream_id"]: r["last_cursor"] for r in rows}


async def insert_lines(conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
    """One statement for the whole batch (COPY is refused on a table under row security)."""
    await conn.execute(
        """
        INSERT INTO log_lines (stream_id, cursor, part, parts, at, organization_id, kind,
                               stream, service_id, build_id, text, overlap)
        SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::int[], $4::int[],
                             $5::timestamptz[], $6::uuid[], $7::text[], $8::text[],
                             $9::uuid[], $10::uuid[], $11::text[], $12::text[])
        """,
        [r.stream_id for r in rows],
        [r.part.cursor for r in rows],
        [r.part.part for r in rows],
        [r.part.parts for r in rows],
        [r.part.at for r in rows],
        [r.organization_id for r in rows],
        [r.part.kind for r in rows],
        [r.part.stream for r in rows],
        [r.part.service_id for r in rows],
        [r.part.build_id for r in rows],
        [r.part.text for r in rows],
        [r.part.overlap for r in rows],
    )


async def insert_chunks(conn: asyncpg.Connection, chunks: Sequence[Chunk]) -> None:
    """The batch's search chunks, stored at the same instant (the transaction's) as its lines."""
    await conn.execute(
        """
        INSERT INTO log_search (stream_id, first_cursor, last_cursor, organization_id, words)
        SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[])
        """,
        [c.stream_id for c in chunks],
        [c.first_cursor for c in chunks],
        [c.last_cursor for c in chunks],
        [c.organization_id for c in chunks],
        [c.words for c in chunks],
    )


async def notify(
    conn: asyncpg.Connection, growth: Sequence[StreamGrowth], heads: dict[uuid.UUID, int]
) -> None:
    """One notification per stream, delivered when (and only if) the transaction commits, in
    commit order: a listener reads the stream after the cursor it last saw."""
    payloads = [
        json.dumps(
            {
                "stream_kind": g.stream_kind,
                "stream_id": str(g.stream_id),
                "cursor": heads[g.stream_id],
            }
        )
        for g in growth
    ]
    await conn.execute(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", NOTIFY_CHANNEL, payloads
    )


async def stream_head(
    conn: asyncpg.Connection, stream_kind: StreamKind, stream_id: uuid.UUID
) -> int | None:
    """The stream's newest cursor, or None when the stream is unknown (or another tenant's)."""
    head: int | None = await conn.fetchval(
        "SELECT last_cursor FROM log_streams WHERE stream_id = $1 AND stream_kind = $2",
        stream_id,
        stream_kind,
    )
    return head


async def stream_organization(
    conn: asyncpg.Connection, stream_kind: StreamKind, stream_id: uuid.UUID
) -> uuid.UUID | None:
    """The organization whose lines the stream holds (None: no line stored yet)."""
    organization: uuid.UUID | None = await conn.fetchval(
        "SELECT organization_id FROM log_streams WHERE stream_id = $1 AND stream_kind = $2",
        stream_id,
        stream_kind,
    )
    return organization


@dataclass(frozen=True)
class _Sql:
    where: list[str]
    args: list[object]

    def add(self, condition: str, value: object) -> None:
        self.args.append(value)
        self.where.append(condition.format(f"${len(self.args)}"))


async def read_cursors(
    conn: asyncpg.Connection,
    stream_id: uuid.UUID,
    query: LogQuery,
    organization_id: uuid.UUID | None,
) -> list[int]:
    """The cursors of the lines matching ``query``, in its direction, ``size + 1`` at most.
    Only the filters given go into the statement (fixed fragments, values as parameters), so
    that the planner sees e.g. the search chunks' trigram condition and uses their index."""
    sql = _Sql(where=[], args=[])
    sql.add("l.stream_id = {}", stream_id)
    if organization_id is not None:
        sql.add("l.organization_id = {}", organization_id)
    if query.after is not None:
        sql.add("l.cursor > {}", query.after)
    if query.before is not None:
        sql.add("l.cursor < {}", query.before)
    if query.since is not None:
        sql.add("l.at >= {}", query.since)
    if query.until is not None:
        sql.add("l.at < {}", query.until)
    if query.stream is not None:
        sql.add("l.stream = {}", query.stream)
    source = "log_lines l"
    pattern = query.pattern()
    if pattern is None:
        sql.where.append("l.part = 1")  # one row per line
    else:
        # any part may hold the match, or two parts across their split: the second one's
        # overlap (the first one's end) and text
        sql.add("(l.overlap || l.text) ILIKE {}", pattern)
        if words := query.search_words():
            source = _matching_chunks(sql, query, words)
        # a cached generic plan cannot know the pattern: a 2-letter one (no trigram) took the
        # GIN index over the whole stream (1 s) where the stream's own index takes 2 ms
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    order = "DESC" if query.direction == "backward" else "ASC"
    sql.args.append(query.size + 1)
    rows = await conn.fetch(
        f"SELECT DISTINCT l.cursor FROM {source} WHERE {' AND '.join(sql.where)} "
        f"ORDER BY l.cursor {order} LIMIT ${len(sql.args)}",
        *sql.args,
    )
    return [r["cursor"] for r in rows]


def _matching_chunks(sql: _Sql, query: LogQuery, words: list[str]) -> str:
    """Lines only within the search chunks that hold every word of ``q`` (found by their
    trigram index; ``sql`` holds the stream as $1): a chunk and its lines share their stream,
    cursor range and storage time (the last prunes the other days' partitions)."""
    sql.where.append("s.stream_id = $1")
    for word in words:
        sql.add("s.words ILIKE {}", f"%{word}%")  # letters and digits: no wildcard in a word
    if query.after is not None:
        sql.add("s.last_cursor > {}", query.after)
    if query.before is not None:
        sql.add("s.first_cursor < {}", query.before)
    return (
        "log_search s JOIN log_lines l ON l.stream_id = s.stream_id "
        "AND l.cursor BETWEEN s.first_cursor AND s.last_cursor AND l.stored_at = s.stored_at"
    )


async def line_bytes(
    conn: asyncpg.Connection, stream_id: uuid.UUID, cursors: Sequence[int]
) -> dict[int, int]:
    """Each line's size in bytes of text (its parts' together), by cursor (the range bounds
    the index read, as in ``read_parts``)."""
    if not cursors:
        return {}
    rows = await conn.fetch(
        """
        SELECT cursor, sum(octet_length(text))::bigint AS size
        FROM log_lines
        WHERE stream_id = $1 AND cursor BETWEEN $3 AND $4 AND cursor = ANY($2::bigint[])
        GROUP BY cursor
        """,
        stream_id,
        list(cursors),
        min(cursors),
        max(cursors),
    )
    return {r["cursor"]: r["size"] for r in rows}


async def read_parts(
    conn: asyncpg.Connection, stream_id: uuid.UUID, cursors: Sequence[int]
) -> list[Part]:
    """Every part of the lines at ``cursors``. The range between the lowest and the highest
    is what the index reads: with ``= ANY`` alone and a page of 1,000 cursors, the planner
    (estimating from a young partition's missing statistics) read the *whole stream* by its
    id and filtered the cursors, so each page cost more as the stream grew (60 ms at 100,000
    lines): a follower of 5,000 lines/s fell further behind with every page it read."""
    if not cursors:
        return []
    rows = await conn.fetch(
        """
        SELECT cursor, part, parts, at, kind, stream, service_id, build_id, text
        FROM log_lines
        WHERE stream_id = $1 AND cursor BETWEEN $3 AND $4 AND cursor = ANY($2::bigint[])
        ORDER BY cursor, part
        """,
        stream_id,
        list(cursors),
        min(cursors),
        max(cursors),
    )
    return [
        Part(
            cursor=r["cursor"],
            part=r["part"],
            parts=r["parts"],
            at=r["at"],
            kind=r["kind"],
            stream=r["stream"],
            service_id=r["service_id"],
            build_id=r["build_id"],
            text=r["text"],
        )
        for r in rows
    ]


async def organization_retentions(conn: asyncpg.Connection) -> dict[uuid.UUID, int]:
    rows = await conn.fetch("SELECT organization_id, days FROM organization_retention")
    return {r["organization_id"]: r["days"] for r in rows}


async def organization_retention(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> int | None:
    days: int | None = await conn.fetchval(
        "SELECT days FROM organization_retention WHERE organization_id = $1", organization_id
    )
    return days


async def set_organization_retention(
    conn: asyncpg.Connection, organization_id: uuid.UUID, days: int | None
) -> None:
    """``days`` None: the installation's retention again."""
    if days is None:
        await conn.execute(
            "DELETE FROM organization_retention WHERE organization_id = $1", organization_id
        )
        return
    await conn.execute(
        """
        INSERT INTO organization_retention (organization_id, days) VALUES ($1, $2)
        ON CONFLICT (organization_id) DO UPDATE SET days = excluded.days, updated_at = now()
        """,
        organization_id,
        days,
    )


async def delete_older(conn: asyncpg.Connection, organization_id: uuid.UUID, days: int) -> int:
    """The organization's lines stored more than ``days`` days ago, whole lines at once (their
    parts share a storage time); a stream loses a prefix of its cursors, as when a partition is
    dropped. How many rows went."""
    await conn.execute(
        """
        DELETE FROM log_search
        WHERE organization_id = $1 AND stored_at < now() - make_interval(days => $2)
        """,
        organization_id,
        days,
    )
    status = await conn.execute(
        """
        DELETE FROM log_lines
        WHERE organization_id = $1 AND stored_at < now() - make_interval(days => $2)
        """,
        organization_id,
        days,
    )
    return int(status.split()[-1])


ENDED_CHANNEL = "logs_deployment_ended"


async def record_deployment_end(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, organization_id: uuid.UUID, status: str
) -> None:
    """Once per deployment (a later event of an ended one changes nothing); followers hear of
    it on commit (``ENDED_CHANNEL``, payload ``<deployment id>:<status>``)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO ended_deployments (deployment_id, organization_id, status)
        VALUES ($1, $2, $3) ON CONFLICT (deployment_id) DO NOTHING
        RETURNING true
        """,
        deployment_id,
        organization_id,
        status,
    )
    if inserted:
        await conn.execute("SELECT pg_notify($1, $2)", ENDED_CHANNEL, f"{deployment_id}:{status}")


async def deployment_end(
    conn: asyncpg.Connection, deployment_id: uuid.UUID
) -> tuple[str, float, uuid.UUID] | None:
    """How the deployment ended, how many seconds ago that was recorded and its organization
    (None: not yet)."""
    row = await conn.fetchrow(
        """
        SELECT status, extract(epoch FROM now() - recorded_at)::float8 AS age_s, organization_id
        FROM ended_deployments WHERE deployment_id = $1
        """,
        deployment_id,
    )
    if row is None:
        return None
    return row["status"], max(0.0, row["age_s"]), row["organization_id"]
