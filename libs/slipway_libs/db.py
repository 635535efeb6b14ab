"""PostgreSQL access through asyncpg: pools, and driver errors translated at this boundary.

Use cases take a connection; only the entrypoint (route, subscriber) opens the transaction.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import structlog

from slipway_libs.tenancy import GUC, current_organization

log = structlog.get_logger(__name__)

# Errors that mean "the database is unreachable or restarting", not "this statement is wrong"
# (``slipway_libs.retry`` retries them, and only them, of the database's errors).
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
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


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
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
    a pooled connection that LISTENs removes its listener (hence the UNLISTEN) before release."""


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection from the pool inside one transaction; commits on success. The
    transaction sees only the rows of the request's organization, when one is bound
    (``slipway_libs.tenancy``)."""
    async with pool.acquire() as conn, conn.transaction():
        organization = current_organization.get()
        if organization is not None:
            await conn.execute("SELECT set_config($1, $2, true)", GUC, str(organization))
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
