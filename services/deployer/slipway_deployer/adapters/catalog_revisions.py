"""How far the deployer's projection of the catalog has come, per project, and waiting for it.

The catalog numbers the changes inside each project (its ``revision``, carried by every
``catalog.project.v1`` event); the projection records the highest one it applied in the same
transaction as the rows (``record``), and announces it with a NOTIFY on commit. A request that
carries a revision (the caller's last write) waits here until the projection has it.

Invariants:
- the database row is the truth: a notification only shortens a wait (it can be missed: no
  listener connection, a reconnect), so a waiter reads the row again at least every ``poll_s``;
- the listener only ever raises what it knows, and never past what committed (NOTIFY is
  delivered on commit), so a waiter released by it reads rows at least that fresh;
- a waiter registers before it reads, so a notification that lands between its read and its
  sleep wakes it.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

import asyncpg
import structlog

from slipway_deployer.db import queries as q
from slipway_libs import db, leadership, retry

log = structlog.get_logger(__name__)

CHANNEL = "deployer_catalog_revision"
_KNOWN_MAX = 10_000  # projects whose last notified revision is kept in memory (LRU)


async def record(
    conn: asyncpg.Connection, project_id: uuid.UUID, org_id: uuid.UUID, revision: int
) -> None:
    """In the transaction that applied the project's event carrying ``revision``."""
    await q.reach_revision(conn, project_id, org_id, revision)
    await q.notify(conn, CHANNEL, f"{project_id}:{revision}")


class CatalogRevisions:
    def __init__(self, pool: asyncpg.Pool, dsn: str, *, poll_s: float = 0.5) -> None:
        self._pool, self._dsn, self._poll_s = pool, dsn, poll_s
        self._known: OrderedDict[uuid.UUID, int] = OrderedDict()  # notified, a lower bound
        self._waiters: dict[uuid.UUID, tuple[leadership.Wake, int]] = {}  # how many wait

    async def reached(self, project_id: uuid.UUID, revision: int, *, timeout_s: float) -> bool:
        """True once the projection has applied ``revision`` of the project; False when it has
        not within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            woken = self._register(project_id)
            try:
                if await self._current(project_id, revision) >= revision:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                await woken.wait(min(self._poll_s, remaining))
            finally:
                self._unregister(project_id, woken)

    def _register(self, project_id: uuid.UUID) -> leadership.Wake:
        event, count = self._waiters.get(project_id) or (leadership.Wake(self._poll_s), 0)
        self._waiters[project_id] = (event, count + 1)
        return event

    def _unregister(self, project_id: uuid.UUID, event: leadership.Wake) -> None:
        current = self._waiters.get(project_id)
        if current is None or current[0] is not event:
            return  # already woken and removed
        if current[1] <= 1:
            del self._waiters[project_id]
        else:
            self._waiters[project_id] = (event, current[1] - 1)

    async def _current(self, project_id: uuid.UUID, wanted: int) -> int:
        known = self._known.get(project_id, 0)
        if known >= wanted:
            return known
        async with db.transaction(self._pool) as conn:  # the request's tenant: RLS applies
            read = await q.catalog_revision(conn, project_id)
        return max(known, read)

    def _reach(self, project_id: uuid.UUID, revision: int) -> None:
        self._known[project_id] = max(revision, self._known.get(project_id, 0))
        self._known.move_to_end(project_id)
        while len(self._known) > _KNOWN_MAX:
            self._known.popitem(last=False)
        woken = self._waiters.pop(project_id, None)
        if woken is not None:
            woken[0].set()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        project, _, revision = payload.partition(":")
        try:
            self._reach(uuid.UUID(project), int(revision))
        except ValueError:
            log.warning("catalog_revisions.bad_notification", payload=payload)

    async def listen(self) -> None:
        """Beside the API, for the life of the process: follow the projection's notifications
        on a connection of its own, reconnecting after a failure (waiters poll meanwhile)."""
        await retry.forever(
            lambda: leadership.follow(dsn=self._dsn, listeners={CHANNEL: self._on_notify}),
            event="catalog_revisions.listen_failed",
            backoff=retry.Backoff(self._poll_s, self._poll_s),
        )
