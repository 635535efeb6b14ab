"""PostgreSQL access through asyncpg: pools, and driver errors translated at this boundary.

Use cases take a connection; only the entrypoint (route, subscriber) opens the transaction.

The tenant binding (``slipway_libs.tenancy``) is a setting of the pooled connection's session,
set when the connection is acquired and only when it changes:

- ``transaction`` and ``reading`` acquire for the request's organization (none bound: every
  row); any other ``pool.acquire()`` acquires for no organization, as it always did;
- each pooled connection remembers the organization its session is bound to, so a request of
  the same organization as the connection's last one pays no statement for it (a read was
  ``BEGIN``, ``set_config``, the query, ``COMMIT``: four round trips; through ``reading`` it is
  the query alone);
- the binding is set outside any transaction (a rollback cannot undo it) and forgotten before
  the statement is sent: a change that was interrupted (cancelled, failed) leaves the
  connection "unknown", bound again by its next user whatever that one wants.

This needs each pooled connection to be one PostgreSQL session: a pooler in transaction mode
(PgBouncer's ``pool_mode = transaction``) between the services and PostgreSQL would hand the
binding of one request to another's statements. Slipway connects to PostgreSQL directly.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any, Final

import asyncpg
import structlog

from slipway_libs.tenancy import GUC, current_organization

log = structlog.get_logger(__name__)

# Errors that mean "the database is unreachable or restarting", not "this statement is wrong"
# (``slipway_libs.retry`` retries them, and only them, of the database's errors).
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # asyncpg's protocol out of step with the server: seen when PostgreSQL shut down under a
    # connection ("cannot switch to state 12; another operation (2) is in progress": the
    # server's FATAL read, the close not yet) — a fresh connection cures it. Not a statement's
    # fault; the relay treated it as a bug and the deployer's process exited mid-deployment
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.LockNotAvailableError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    ConnectionError,
    OSError,
    TimeoutError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class _Unknown:
    """A session whose binding is not known (its last change did not complete)."""


_UNKNOWN: Final = _Unknown()


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """A pooled connection that remembers the organization its session is bound to."""

    _bound: uuid.UUID | _Unknown | None = None  # a new session binds nothing

    async def bind_organization(self, organization: uuid.UUID | None) -> None:
        """Binds the session to ``organization`` (None: no organization, every row), with one
        statement if it was bound to another, none if it was bound to this one."""
        if self._bound is not _UNKNOWN and self._bound == organization:
            return
        # unknown until PostgreSQL has answered (asyncpg also closes a connection whose pool
        # ``setup`` failed or was cancelled: this covers any other caller)
        self._bound = _UNKNOWN
        value = "" if organization is None else str(organization)
        await self.execute("SELECT set_config($1, $2, false)", GUC, value)
        self._bound = organization

    @property
    def bound_organization(self) -> uuid.UUID | _Unknown | None:
        return self._bound


# the organization the acquire in progress is for: set by ``transaction`` and ``reading``
# around their acquire only, so that any other acquire (a relay, a consumer, a worker, even one
# nested in a request) gets an unbound session, as before the binding lived in the session
_acquiring_for: ContextVar[uuid.UUID | None] = ContextVar("slipway_acquiring_for", default=None)


async def _bind_session(conn: asyncpg.Connection) -> None:
    """The pool's ``setup``: runs on every acquire, in the acquiring task's context."""
    await conn.bind_organization(_acquiring_for.get())


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        setup=_bind_session,
        reset=_keep_session,
        connection_class=TenantConnection,
        **kwargs,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a released connection gets besides asyncpg's own cleanup (an open transaction rolled
    back, listener callbacks dropped): nothing. The default reset (``UNLISTEN *``, ``RESET ALL``,
    advisory unlock...) is a round trip on every release, a tenth of a busy deployer's queries,
    for session state pool users never leave: they use ``SET LOCAL`` and transaction-scoped
    advisory locks; session locks and LISTEN live on connections of their own (``connect``), and
    a pooled connection that LISTENs removes its listener (hence the UNLISTEN) before release.
    The one session setting kept, the tenant binding, is set again by the next acquire when it
    is not what that acquire wants (``_bind_session``)."""


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@contextlib.asynccontextmanager
async def _for_request(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the pool whose session is bound to the request's organization."""
    organization = current_organization.get()
    token = _acquiring_for.set(organization)
    acquired = False
    try:
        async with pool.acquire() as conn:
            _acquiring_for.reset(token)  # what the block acquires itself is the platform's
            acquired = True
            _ensure_bound(conn, organization)
            yield conn
    finally:
        if not acquired:
            _acquiring_for.reset(token)


def _ensure_bound(conn: asyncpg.Connection, organization: uuid.UUID | None) -> None:
    """Fails closed: a pool not made by ``create_pool`` (no binding on acquire) or a session
    whose binding is not known would show a request every tenant's rows."""
    bound = getattr(conn, "bound_organization", _UNKNOWN)  # a pool's proxy passes it through
    if bound is _UNKNOWN or bound != organization:
        raise RuntimeError("the pooled connection is not bound to the request's organization")


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection from the pool inside one transaction; commits on success. The
    transaction sees only the rows of the request's organization, when one is bound
    (``slipway_libs.tenancy``)."""
    async with _for_request(pool) as conn, conn.transaction():
        yield conn


@contextlib.asynccontextmanager
async def reading(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection from the pool for reads, outside any explicit transaction: each statement
    commits alone, and sees what a ``READ COMMITTED`` transaction's statement would (a snapshot
    per statement), without the ``BEGIN`` and ``COMMIT`` round trips. For routes that only read
    (a write here would commit statement by statement); bound as ``transaction`` is."""
    async with _for_request(pool) as conn:
        yield conn


async def check(pool: asyncpg.Pool) -> None:
    """Readiness: the database answers a query."""
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1", timeout=2)


async def fetchrow_unique(
    conn: asyncpg.Connection, clash: Callable[[], Exception], sql: str, *args: Any
) -> Any:
    """One write whose unique violation is a clash the domain names (``clash()`` is raised), so
    that use cases never see the driver's error. A savepoint keeps the caller's transaction
    usable after the violation."""
    try:
        async with conn.transaction():
            return await conn.fetchrow(sql, *args)
    except asyncpg.UniqueViolationError:
        raise clash() from None
