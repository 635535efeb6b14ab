"""Pull requests' preview environments, from the scheduler's side: a signed pull request
delivery becomes commands to the catalog (``scheduler.PreviewRequested``,
``scheduler.PreviewDeletionRequested``), written through the outbox in the delivery's
transaction; the catalog clones or deletes, the deployer deploys what the catalog says.

Invariants:
- A pull request has at most one open preview per blueprint (an environment with
  ``auto_preview`` whose applications build the pull request's base branch): a unique index
  over the open rows; the preview's environment id is chosen here, once, and every command
  about the preview names it (and is keyed by it, so they reach the catalog in order).
- Opened, reopened or pushed to: the open preview (created if there is none) is asked to
  build the head commit, unless it already builds it (a reopen after an open, a delivery
  the provider repeated under a new id): then nothing is sent.
- A pull request from a fork previews nothing (its code would run with the environment's
  secrets); its delivery's record says ``fork_refused``.
- Closed or merged: the open preview is ended and its environment deleted; none open,
  nothing sent. A later reopen opens a new preview (a new environment).
- Expired: an open preview past its time to live (the blueprint rule's
  ``preview_ttl_hours``, else ``SLIPWAY_SCHEDULER_PREVIEW_TTL_S``, counted from its opening)
  is ended the same way (``expire_due``, the worker's loop, ``FOR UPDATE SKIP LOCKED`` so
  that processes share the work).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import structlog

from slipway_contracts import EventPayload, new_event
from slipway_contracts.events import scheduler as commands
from slipway_libs import outbox
from slipway_libs.logging import correlation_id
from slipway_scheduler.db import git_queries as gq
from slipway_scheduler.db import preview_queries as pq
from slipway_scheduler.domain import git_hooks
from slipway_scheduler.domain import pull_requests as prs
from slipway_scheduler.domain.pull_requests import Change, PullRequest
from slipway_scheduler.domain.timers import Clock

log = structlog.get_logger(__name__)
SOURCE = "scheduler"
_RESULTS = {
    Change.OPENED: "preview_opened",
    Change.PUSHED: "preview_updated",
    Change.CLOSED: "preview_closed",
}


@dataclass(frozen=True)
class PreviewPolicy:
    clock: Clock
    time_to_live: timedelta


async def on_pull_request(
    conn: asyncpg.Connection,
    policy: PreviewPolicy,
    hook: gq.SealedGitWebhook,
    received: git_hooks.Delivery,
    body: bytes,
    row_id: uuid.UUID,
) -> gq.GitDelivery:
    """Settle the delivery's record with what the pull request did to its previews."""
    payload = _decoded(body)
    pr = prs.pull_request(received.provider, payload)
    if pr is None:  # a fork, another action (edited, labeled...), an unreadable body
        fork = prs.from_fork(received.provider, payload)
        if fork:
            log.info("previews.fork_refused", webhook_id=str(hook.webhook_id))
        return await gq.settle_git_delivery(
            conn,
            row_id,
            result="fork_refused" if fork else "ignored",
            branch=None,
            commit=None,
            triggered=[],
        )
    keys = sorted({git_hooks.repository_key(url) for url in pr.repository_urls})
    triggered = []
    for blueprint in await pq.blueprints(conn, hook.organization_id, keys, pr.base_branch):
        effect = await _apply(conn, policy, hook, blueprint, keys[0], pr)
        if effect is not None:
            triggered.append(effect)
    log.info(
        "previews.pull_request",
        webhook_id=str(hook.webhook_id),
        pull_request=pr.number,
        change=pr.change.value,
        commit=pr.head_commit,
        previews=len(triggered),
    )
    return await gq.settle_git_delivery(
        conn,
        row_id,
        result=_RESULTS[pr.change] if triggered else "no_match",
        branch=pr.head_branch,
        commit=pr.head_commit,
        triggered=triggered,
    )


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


async def _apply(
    conn: asyncpg.Connection,
    policy: PreviewPolicy,
    hook: gq.SealedGitWebhook,
    blueprint: pq.Blueprint,
    repository_key: str,
    pr: PullRequest,
) -> dict[str, Any] | None:
    """What the pull request does to its preview of one blueprint: the triggered entry of the
    delivery's record, or None when it does nothing."""
    now = policy.clock.now()
    preview = await pq.open_preview(conn, blueprint.environment_id, repository_key, pr.number)
    if pr.change is Change.CLOSED:
        if preview is None:
            return None
        await pq.end_preview(conn, preview.preview_id, state="CLOSED", now=now)
        await _send(conn, preview, _deletion(preview, "closed"))
        return _entry(preview, "delete")
    if preview is None:
        preview = await pq.insert_preview(
            conn,
            organization_id=hook.organization_id,
            blueprint_id=blueprint.environment_id,
            repository_key=repository_key,
            pull_request=pr.number,
            branch=pr.head_branch,
            commit=pr.head_commit,
            now=now,
            expires_at=now + _time_to_live(policy, blueprint),
        )
        if preview is None:  # opened by a delivery that committed meanwhile: its commit goes
            return None
        action = "create"
    elif (preview.branch, preview.commit) == (pr.head_branch, pr.head_commit):
        return None  # it builds that commit already (a reopen after an open, a repeat)
    else:
        await pq.move_head(
            conn, preview.preview_id, branch=pr.head_branch, commit=pr.head_commit, now=now
        )
        action = "deploy"
    request = commands.PreviewRequested(
        organization_id=hook.organization_id,
        environment_id=preview.environment_id,
        blueprint_environment_id=blueprint.environment_id,
        service_ids=list(blueprint.service_ids),
        name=prs.preview_name(pr.number),
        pull_request=pr.number,
        branch=pr.head_branch,
        commit=pr.head_commit,
    )
    await _send(conn, preview, request)
    return _entry(preview, action)


def _time_to_live(policy: PreviewPolicy, blueprint: pq.Blueprint) -> timedelta:
    """The blueprint's rule says how long its previews live; else the scheduler's default."""
    if blueprint.preview_ttl_hours is None:
        return policy.time_to_live
    return timedelta(hours=blueprint.preview_ttl_hours)


def _entry(preview: pq.Preview, action: str) -> dict[str, Any]:
    return {
        "environment_id": str(preview.environment_id),
        "blueprint_environment_id": str(preview.blueprint_id),
        "pull_request": preview.pull_request,
        "action": action,
    }


def _deletion(
    preview: pq.Preview, reason: Literal["closed", "expired"]
) -> commands.PreviewDeletionRequested:
    return commands.PreviewDeletionRequested(
        organization_id=preview.organization_id,
        environment_id=preview.environment_id,
        reason=reason,
    )


async def _send(conn: asyncpg.Connection, preview: pq.Preview, payload: EventPayload) -> None:
    await outbox.append(
        conn,
        [
            (
                payload.topic,
                new_event(
                    payload,
                    subject=str(preview.environment_id),  # one preview's commands in order
                    source=SOURCE,
                    organization_id=preview.organization_id,
                    correlation_id=correlation_id.get(),
                ),
            )
        ],
    )


async def expire_due(conn: asyncpg.Connection, clock: Clock, *, limit: int) -> int:
    """End the open previews past their time to live (their environments deleted); how many."""
    now = clock.now()
    expired = await pq.claim_expired(conn, now, limit)
    for preview in expired:
        await pq.end_preview(conn, preview.preview_id, state="EXPIRED", now=now)
        await _send(conn, preview, _deletion(preview, "expired"))
        log.info(
            "previews.expired",
            environment_id=str(preview.environment_id),
            pull_request=preview.pull_request,
        )
    return len(expired)


async def next_expiry(conn: asyncpg.Connection) -> datetime | None:
    return await pq.next_expiry(conn)
