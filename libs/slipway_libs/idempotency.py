"""Safe retries: a POST that creates or triggers honours an ``Idempotency-Key`` header.

A client that timed out cannot know whether its request took effect; it sends it again with the
same key. The first request with a key claims it *inside the route's own transaction*: the
key's row and the request's effect commit together, or neither does (an error answer rolls both
back, so a retry after a 4xx or 5xx is a new attempt). Then, for 24 hours:

- the same key with the same request (method, path, query and JSON body) answers the first
  answer again, with ``Idempotent-Replayed: true``, and does nothing;
- the same key with another request answers 422 ``IDEMPOTENCY_KEY_REUSED``;
- a duplicate arriving while the first is in flight waits for it on the key's unique index (the
  first's uncommitted row), then replays its answer; after ``_WAIT`` it answers 409
  ``IDEMPOTENCY_KEY_IN_USE`` with ``Retry-After`` instead. It never runs the effect twice.

Keys are scoped by organization and principal (``slipway_libs.actor``): another user's key of
the same text is another key. The table (``sql/0003_idempotency.sql``) is in every service's
database, under the same row-level tenant policy as the service's own tables. Expired rows are
reclaimed by the next claim of their key, and a claim deletes a few expired rows of others, so
the table holds about a day of keys without a cleaner of its own.

A route uses it through the ``Once`` dependency::

    async def create(..., once: Once) -> dict[str, Any]:
        return await once.run(tx, lambda conn: usecase(conn, ...))
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from slipway_libs.actor import Actor, actor_from
from slipway_libs.errors import BusinessError, InvalidInput
from slipway_libs.tenancy import GUC

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
TTL_HOURS = 24
_WAIT = "5s"  # how long a duplicate waits for the first request with its key
_SWEEP = 20  # expired rows a claim deletes on its way

Tx = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
Work = Callable[[asyncpg.Connection], Awaitable[Any]]


def parse_key(raw: str | None) -> str | None:
    """The request's key (None: no header); 1 to 255 printable ASCII characters."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in raw):
        raise InvalidInput(
            "INVALID_IDEMPOTENCY_KEY",
            f"An {KEY_HEADER} is 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            field=KEY_HEADER,
        )
    return raw


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What "the same request" means: method, path, query and body; a JSON body by its content
    (key order and spacing aside), anything else byte for byte."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return digest.hexdigest()


def principal_of(actor: Actor) -> str:
    return f"{actor.type}:{actor.id or actor.user_id or ''}"


@dataclass(frozen=True)
class Claim:
    organization_id: uuid.UUID | None
    principal: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Stored:
    status: int
    body: Any
    headers: dict[str, str]


_CLAIM = f"""
INSERT INTO idempotency_keys (organization_id, principal, key, fingerprint, expires_at)
VALUES ($1, $2, $3, $4, now() + interval '{TTL_HOURS} hours')
ON CONFLICT ON CONSTRAINT idempotency_keys_unique DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, status = NULL, body = NULL, headers = '{{}}',
        created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE idempotency_keys.expires_at <= now()
RETURNING true
"""

_STORED = """
SELECT fingerprint, status, body, headers FROM idempotency_keys
WHERE organization_id IS NOT DISTINCT FROM $1 AND principal = $2 AND key = $3
"""

_SWEEP_SQL = f"""
DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM idempotency_keys WHERE expires_at <= now()
    LIMIT {_SWEEP} FOR UPDATE SKIP LOCKED)
"""


async def claim(conn: asyncpg.Connection, claim: Claim) -> Stored | None:
    """Claims the key in the caller's transaction (None: go on, then ``record`` the answer), or
    the answer stored by the first request with it. Raises 422 for the key used for another
    request, 409 while the first request is still in flight after the wait."""
    previous = await conn.fetchval("SHOW lock_timeout")
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", _WAIT)
    try:
        claimed = await conn.fetchval(
            _CLAIM, claim.organization_id, claim.principal, claim.key, claim.fingerprint
        )
    except asyncpg.LockNotAvailableError:
        raise BusinessError(
            "A request with this Idempotency-Key is still in progress.",
            code="IDEMPOTENCY_KEY_IN_USE",
            status_code=409,
            headers={"Retry-After": "1"},
        ) from None
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", previous)
    if claimed:
        await _sweep(conn)
        return None
    row = await conn.fetchrow(_STORED, claim.organization_id, claim.principal, claim.key)
    if row is None or row["status"] is None:  # cannot happen: the row commits with its answer
        raise BusinessError(
            "A request with this Idempotency-Key is still in progress.",
            code="IDEMPOTENCY_KEY_IN_USE",
            status_code=409,
            headers={"Retry-After": "1"},
        )
    if row["fingerprint"] != claim.fingerprint:
        raise InvalidInput(
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was used for another request.",
            field=KEY_HEADER,
        )
    return Stored(row["status"], row["body"], dict(row["headers"] or {}))


async def _sweep(conn: asyncpg.Connection) -> None:
    """Deletes a few expired keys of any organization: rows of a tenant that sends no more keys
    would stay forever under its row policy. Only expired rows, by a fixed statement; the
    request's organization is bound again right after."""
    bound = await conn.fetchval("SELECT current_setting($1, true)", GUC)
    await conn.execute("SELECT set_config($1, '', true)", GUC)
    await conn.execute(_SWEEP_SQL)
    await conn.execute("SELECT set_config($1, $2, true)", GUC, bound or "")


async def record(conn: asyncpg.Connection, claim: Claim, answer: Stored) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status = $4, body = $5, headers = $6"
        " WHERE organization_id IS NOT DISTINCT FROM $1 AND principal = $2 AND key = $3",
        claim.organization_id,
        claim.principal,
        claim.key,
        answer.status,
        answer.body,
        answer.headers,
    )


def replay(stored: Stored) -> Response:
    headers = {**stored.headers, REPLAYED_HEADER: "true"}
    if stored.body is None:
        return Response(status_code=stored.status, headers=headers)
    return JSONResponse(stored.body, status_code=stored.status, headers=headers)


HeadersOf = Callable[[Any], Mapping[str, str]]


class Idempotent:
    """One request's idempotency: runs the route's work once per key (see the module's doc)."""

    def __init__(self, request: Request, response: Response, claim: Claim | None) -> None:
        self._request = request
        self._response = response
        self._claim = claim

    async def run(self, tx: Tx, work: Work, *, headers: HeadersOf | None = None) -> Any:
        """``work(conn)`` in a transaction of ``tx``; its result is the answer's body (with
        ``headers(body)``, and the route's status). A replay answers a ``Response``, which the
        route returns as it is."""
        if self._claim is None:
            async with tx() as conn:
                body = await work(conn)
            self._response.headers.update(headers(body) if headers else {})
            return body
        async with tx() as conn:
            stored = await claim(conn, self._claim)
            if stored is None:
                body = jsonable_encoder(await work(conn))
                extra = dict(headers(body)) if headers else {}
                await record(conn, self._claim, Stored(self._status(), body, extra))
        if stored is not None:
            return replay(stored)
        self._response.headers.update(extra)
        return body

    def _status(self) -> int:
        route = self._request.scope.get("route")
        return getattr(route, "status_code", None) or 200


async def idempotent(request: Request, response: Response) -> Idempotent:
    """The dependency: validates the key before anything else is done."""
    key = parse_key(request.headers.get(KEY_HEADER))
    if key is None:
        return Idempotent(request, response, None)
    actor = actor_from(request)
    found = Claim(
        organization_id=actor.organization_id,
        principal=principal_of(actor),
        key=key,
        fingerprint=fingerprint(
            request.method, request.url.path, request.url.query, await request.body()
        ),
    )
    return Idempotent(request, response, found)


Once = Annotated[Idempotent, Depends(idempotent)]
