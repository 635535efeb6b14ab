"""Keeping the partitions in shape: created days ahead, dropped whole once expired, and the
lines of organizations with a shorter retention deleted. Run by one leading worker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg
import structlog

from slipway_libs.errors import InvalidInput
from slipway_logs.db import queries
from slipway_logs.domain import partitions

log = structlog.get_logger(__name__)


@dataclass
class Maintained:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted: dict[uuid.UUID, int] = field(default_factory=dict)


async def maintain(pool: asyncpg.Pool, *, retention_days: int, days_ahead: int) -> Maintained:
    """One pass; each step its own transaction, so a lock it could not get (a long read of the
    parent) fails that step only, and the next pass tries again."""
    done = Maintained()
    async with pool.acquire() as conn:
        today = await queries.today(conn)
        for day in partitions.ahead(today, days_ahead):
            async with conn.transaction():
                if await queries.ensure_partition(conn, day):
                    done.created.append(partitions.name(day))
        existing = await queries.partitions(conn)
        for name in partitions.expired(existing, today, retention_days):
            async with conn.transaction():
                await queries.drop_partition(conn, name)
            done.dropped.append(name)
        async with conn.transaction():
            shorter = await queries.organization_retentions(conn)
        for organization_id, days in shorter.items():
            if days >= retention_days:
                continue  # the partitions' drop already does it
            async with conn.transaction():
                done.deleted[organization_id] = await queries.delete_older(
                    conn, organization_id, days
                )
    log.info(
        "logs.maintained",
        created=done.created,
        dropped=done.dropped,
        deleted=sum(done.deleted.values()),
    )
    return done


@dataclass(frozen=True)
class OrganizationRetention:
    days: int | None  # the organization's own, or None: the installation's
    default_days: int

    @property
    def effective_days(self) -> int:
        return min(self.days, self.default_days) if self.days else self.default_days


async def organization_retention(
    conn: asyncpg.Connection, organization_id: uuid.UUID, *, default_days: int
) -> OrganizationRetention:
    days = await queries.organization_retention(conn, organization_id)
    return OrganizationRetention(days, default_days)


async def set_organization_retention(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    days: int | None,
    *,
    default_days: int | None = None,
) -> OrganizationRetention | None:
    """``days`` None: the installation's again. An organization may keep its lines for fewer
    days than the installation, never more (``default_days``: the installation's, when known)."""
    if days is not None and default_days is not None and days > default_days:
        raise InvalidInput(
            "LOGS_RETENTION_TOO_LONG",
            f"Lines are kept {default_days} days at most on this installation.",
            field="days",
        )
    await queries.set_organization_retention(conn, organization_id, days)
    return OrganizationRetention(days, default_days) if default_days is not None else None
