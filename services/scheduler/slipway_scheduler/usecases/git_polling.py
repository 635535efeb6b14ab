"""Polling the remotes of deployed applications for new commits (``domain.git_polling``).

Invariants:
- A branch is polled by one process at a time: ``claim`` pushes its next poll out by the
  lease in a short transaction (``FOR UPDATE SKIP LOCKED``), and the poll itself (network I/O)
  runs outside any transaction; a process that dies mid-poll leaves the row due again once the
  lease is over.
- A new head is written with a compare-and-set on the head the poll started from, in the
  transaction that appends its commands to the outbox: a push recorded meanwhile (which sent
  its own commands) wins, and a head is announced (and deployed) once.
- A new commit takes the path a push takes: ``NewCommitAvailable`` for each environment whose
  applications build the branch, and ``ServiceDeployRequested`` for those with ``auto_deploy``
  on (a poll cannot tell which files changed, so path filters do not hold it back, as for a
  push that lists no files), the poll's id standing for the delivery.
- A credential is opened (transport key) only for the poll that uses it; failures record a
  fixed sentence, never a secret.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from slipway_libs import outbox
from slipway_libs.crypto import Sealer, SealError
from slipway_libs.db import transaction
from slipway_scheduler.db import git_queries
from slipway_scheduler.db import poll_queries as q
from slipway_scheduler.domain import git_hooks
from slipway_scheduler.domain.git_polling import (
    GitCredential,
    HeadReader,
    PollError,
    PollPolicy,
    Secret,
    Seen,
    choose,
    observe,
    poll_id,
)
from slipway_scheduler.domain.timers import Clock
from slipway_scheduler.usecases.git_pushes import deploy_command, new_commit_commands

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PollDeps:
    remote: HeadReader
    clock: Clock
    policy: PollPolicy
    # opens the credentials the catalog sealed (None: no key, every poll goes without)
    transport: Sealer | None = None


async def discover(pool: asyncpg.Pool, clock: Clock) -> int:
    """Start polling the branches deployed applications build; stop for forgotten ones."""
    async with transaction(pool) as conn:
        added = await q.add_deployed_branches(conn, clock.now())
        await q.remove_forgotten_branches(conn)
    return added


async def poll_due(pool: asyncpg.Pool, deps: PollDeps, *, limit: int, concurrency: int) -> int:
    """Poll the due branches (at most ``limit``, ``concurrency`` at once); how many."""
    now = deps.clock.now()
    async with transaction(pool) as conn:
        claimed = await q.claim_due(conn, now, now + deps.policy.lease, limit)
    gate = asyncio.Semaphore(concurrency)

    async def one(branch: q.PolledBranch) -> None:
        async with gate:
            await poll(pool, deps, branch)

    async with asyncio.TaskGroup() as group:  # one failing (a bug) cancels the others
        for branch in claimed:
            group.create_task(one(branch))
    return len(claimed)


async def next_due(pool: asyncpg.Pool) -> datetime | None:
    async with pool.acquire() as conn:
        return await q.next_due(conn)


async def poll(pool: asyncpg.Pool, deps: PollDeps, branch: q.PolledBranch) -> None:
    async with transaction(pool) as conn:
        credentials = await q.credentials(conn, branch.organization_id)
    try:
        secret = _secret(deps.transport, choose(credentials, branch.repository_url))
        head = await deps.remote.head(branch.repository_url, branch.branch, secret)
    except PollError as failed:
        await _failed(pool, deps, branch, failed)
        return
    async with transaction(pool) as conn:
        await settle(conn, deps, branch, head)


async def settle(
    conn: asyncpg.Connection, deps: PollDeps, branch: q.PolledBranch, head: str
) -> Seen | None:
    """Record the head a poll saw and send what it means; None: a push got there first."""
    now = deps.clock.now()
    seen = observe(branch.last_commit, head)
    written = await q.record_head(
        conn, branch, head=head, polled_at=now, next_poll_at=deps.policy.after_success(now)
    )
    if not written:
        return None
    if seen is Seen.SAME:
        return seen
    on_branch = await git_queries.pushed_applications(
        conn, branch.organization_id, [branch.repository_key], branch.branch
    )
    push = git_hooks.Push(branch.branch, head, (branch.repository_url,))
    news = new_commit_commands(branch.organization_id, on_branch, push, now)
    noticed = poll_id(branch.organization_id, branch.repository_key, branch.branch, head)
    deploys = [
        deploy_command(branch.organization_id, app, head, noticed)
        for app in on_branch
        if app.auto_deploy and seen is Seen.NEW
    ]
    await outbox.append(conn, deploys + news)
    log.info(
        "git_poll.new_commit",
        organization_id=str(branch.organization_id),
        repository=branch.repository_key,
        branch=branch.branch,
        commit=head,
        seen=seen.value,
        deploys=len(deploys),
    )
    return seen


async def states(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[dict[str, Any]]:
    """The organization's polled branches: the last head seen, when, and the last failure."""
    return [
        {
            "repository": state.repository_key,
            "branch": state.branch,
            "last_commit": state.last_commit,
            "polled_at": state.polled_at,
            "failures": state.failures,
            "last_error": state.last_error,
            "last_error_at": state.last_error_at,
        }
        for state in await q.poll_states(conn, organization_id)
    ]


def _secret(transport: Sealer | None, credential: GitCredential | None) -> Secret:
    if credential is None or transport is None:
        return Secret()
    try:
        sealed = base64.b64decode(credential.secret_sealed)
        clear = transport.open(sealed, aad=credential.id.bytes).decode()
    except (SealError, ValueError):
        raise PollError(
            "CREDENTIAL_UNREADABLE",
            f"the organization's git credential {credential.name!r} cannot be opened",
        ) from None
    if credential.kind == "token":
        return Secret(token=clear)
    return Secret(ssh_key=clear, known_hosts=credential.known_hosts)


async def _failed(
    pool: asyncpg.Pool, deps: PollDeps, branch: q.PolledBranch, failed: PollError
) -> None:
    now = deps.clock.now()
    failures = branch.failures + 1
    if failed.lasting:
        retry_at = deps.policy.after_lasting_failure(now)
    else:
        retry_at = deps.policy.after_failure(now, failures)
    async with transaction(pool) as conn:
        await q.record_failure(
            conn, branch, error=failed.record(), polled_at=now, next_poll_at=retry_at
        )
    # a lasting refusal is said once per run of failures (git-polls keeps saying it)
    say = log.debug if failed.lasting and failures > 1 else log.warning
    say(
        "git_poll.failed",
        organization_id=str(branch.organization_id),
        repository=branch.repository_key,
        branch=branch.branch,
        reason=failed.reason,
        failures=failures,
        retry_at=retry_at.isoformat(),
    )
