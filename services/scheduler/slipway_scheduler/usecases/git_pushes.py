"""A delivery to a git webhook endpoint (the public route ``POST /api/v1/hooks/git/{id}``):
checked, recorded, and, for a push to a branch, turned into deploy commands.

Invariants:
- The signature is the authentication: a delivery whose signature does not verify against
  the endpoint's secret answers 401 and writes nothing (no delivery row, no command).
- One delivery id is handled once per endpoint: its row is inserted with ``ON CONFLICT DO
  NOTHING`` in the transaction that writes its commands, so a redelivery (the provider's
  retry, a replay) finds the row, triggers nothing and answers the first one's record.
- A push deploys only the endpoint's organization's applications with ``auto_deploy`` on
  whose repository and branch it names and whose path filters (if any) match a file it
  changed, each at the pushed commit, by a ``scheduler.ServiceDeployRequested`` command
  through the outbox; the deployer does the rest asynchronously. Matching is one indexed
  query on the scheduler's own projection, so the provider is answered (202) well within its
  timeout.
- A push also records its commit as the branch's head seen by polling (``git_polls``) and
  keeps polling away for a while (``usecases.git_polling``): a branch whose pushes come
  through a webhook is not polled, and its pushed commit is not announced nor deployed twice.
- A pull request (merge request) goes to ``usecases.previewing``: its preview environments.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from slipway_contracts import Envelope, EventPayload, new_event
from slipway_contracts.events import scheduler as commands
from slipway_libs import outbox
from slipway_libs.crypto import Sealer, SealError
from slipway_libs.errors import Unauthenticated
from slipway_libs.logging import correlation_id
from slipway_scheduler.db import git_queries as q
from slipway_scheduler.db import poll_queries
from slipway_scheduler.domain import git_hooks, path_filters, pull_requests
from slipway_scheduler.domain.timers import Clock
from slipway_scheduler.usecases import previewing
from slipway_scheduler.usecases.git_webhooks import delivery_view, missing

log = structlog.get_logger(__name__)
SOURCE = "scheduler"


@dataclass(frozen=True)
class GitHookDeps:
    sealer: Sealer
    clock: Clock
    # how long a pull request's preview environment lives, from its opening
    preview_ttl: timedelta = timedelta(days=7)
    # after a push, how long polling leaves its branch alone (``domain.git_polling``)
    poll_quiet: timedelta = timedelta(days=1)


async def receive(
    conn: asyncpg.Connection,
    deps: GitHookDeps,
    webhook_id: uuid.UUID,
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """Record a signed delivery and do what it asks; the record, with ``duplicate`` true when
    this endpoint had already received that delivery id."""
    hook = await q.sealed_git_webhook(conn, webhook_id)
    if hook is None:
        raise missing()
    received = git_hooks.delivery(headers, body)
    if not _verified(deps.sealer, hook, received, body):
        log.warning(
            "git_hooks.bad_signature", webhook_id=str(webhook_id), provider=received.provider
        )
        raise Unauthenticated("INVALID_SIGNATURE", "The delivery's signature does not verify.")
    row_id = uuid.uuid4()
    fresh = await q.insert_git_delivery(
        conn,
        row_id=row_id,
        hook=hook,
        provider=received.provider.value,
        delivery_id=received.delivery_id,
        event=received.event,
        received_at=deps.clock.now(),
    )
    if not fresh:
        first = await q.git_delivery_by_delivery_id(conn, webhook_id, received.delivery_id)
        assert first is not None  # the row that conflicted, committed before this transaction
        log.info("git_hooks.duplicate", webhook_id=str(webhook_id), delivery=received.delivery_id)
        return {**delivery_view(first), "duplicate": True}
    if pull_requests.is_pull_request(received):
        policy = previewing.PreviewPolicy(clock=deps.clock, time_to_live=deps.preview_ttl)
        settled = await previewing.on_pull_request(conn, policy, hook, received, body, row_id)
    else:
        settled = await _act(conn, deps, hook, received, body, row_id)
    return {**delivery_view(settled), "duplicate": False}


def _verified(
    sealer: Sealer, hook: q.SealedGitWebhook, received: git_hooks.Delivery, body: bytes
) -> bool:
    try:
        secret = sealer.open(hook.secret_sealed, aad=hook.webhook_id.bytes).decode()
    except SealError:
        # the sealing key that sealed it is gone: no delivery can be verified, none accepted
        log.error("git_hooks.secret_unreadable", webhook_id=str(hook.webhook_id))
        return False
    return git_hooks.signed(secret, received, body)


async def _act(
    conn: asyncpg.Connection,
    deps: GitHookDeps,
    hook: q.SealedGitWebhook,
    received: git_hooks.Delivery,
    body: bytes,
    row_id: uuid.UUID,
) -> q.GitDelivery:
    if not git_hooks.is_push(received):
        result = "ping" if received.event == "ping" else "ignored"
        return await q.settle_git_delivery(
            conn, row_id, result=result, branch=None, commit=None, triggered=[]
        )
    push = git_hooks.push(body)
    if push is None:  # a tag, a deleted branch, or a body that names no repository
        return await q.settle_git_delivery(
            conn, row_id, result="ignored", branch=None, commit=None, triggered=[]
        )
    keys = sorted({git_hooks.repository_key(url) for url in push.repository_urls})
    on_branch = await q.pushed_applications(conn, hook.organization_id, keys, push.branch)
    deployable = [app for app in on_branch if app.auto_deploy]
    matched = [
        app for app in deployable if path_filters.wanted(app.path_filters, push.changed_files)
    ]
    now = deps.clock.now()
    news = new_commit_commands(hook.organization_id, on_branch, push, now)
    deploys = [deploy_command(hook.organization_id, app, push.commit, row_id) for app in matched]
    # the news after the deploys: once the deployer shows the new commit, it has had them
    await outbox.append(conn, deploys + news)
    await poll_queries.record_push(
        conn,
        hook.organization_id,
        keys,
        push.branch,
        commit=push.commit,
        pushed_at=now,
        next_poll_at=now + deps.poll_quiet,
    )
    triggered = [
        {"service_id": str(app.service_id), "environment_id": str(app.environment_id)}
        for app in matched
    ]
    log.info(
        "git_hooks.push",
        webhook_id=str(hook.webhook_id),
        branch=push.branch,
        commit=push.commit,
        deploys=len(matched),
    )
    return await q.settle_git_delivery(
        conn,
        row_id,
        result=_result(matched, deployable),
        branch=push.branch,
        commit=push.commit,
        triggered=triggered,
    )


def _result(matched: list[q.Application], deployable: list[q.Application]) -> str:
    if matched:
        return "deployed"
    return "filtered" if deployable else "no_match"  # filtered: no changed file matched


def new_commit_commands(
    organization_id: uuid.UUID,
    on_branch: list[q.Application],
    push: git_hooks.Push,
    pushed_at: datetime,
) -> list[tuple[str, Envelope]]:
    """One ``NewCommitAvailable`` per environment with applications on the pushed branch,
    deployed by this push or not: their environments' freshness."""
    by_environment: dict[uuid.UUID, list[uuid.UUID]] = {}
    for app in on_branch:
        by_environment.setdefault(app.environment_id, []).append(app.service_id)
    return [
        _envelope(
            organization_id,
            commands.NewCommitAvailable(
                organization_id=organization_id,
                environment_id=environment_id,
                service_ids=service_ids,
                branch=push.branch,
                commit=push.commit,
                pushed_at=pushed_at,
            ),
            environment_id,
        )
        for environment_id, service_ids in by_environment.items()
    ]


def deploy_command(
    organization_id: uuid.UUID, app: q.Application, commit: str, delivery_id: uuid.UUID
) -> tuple[str, Envelope]:
    """Deploy ``app`` at ``commit``; ``delivery_id``: what noticed the commit (a delivery's
    record, or a poll's id), one deploy request per (it, service)."""
    payload = commands.ServiceDeployRequested(
        organization_id=organization_id,
        environment_id=app.environment_id,
        service_id=app.service_id,
        commit=commit,
        delivery_id=delivery_id,
    )
    return _envelope(organization_id, payload, app.environment_id)


def _envelope(
    organization_id: uuid.UUID, payload: EventPayload, environment_id: uuid.UUID
) -> tuple[str, Envelope]:
    return payload.topic, new_event(
        payload,
        subject=str(environment_id),  # one environment's commands stay in order
        source=SOURCE,
        organization_id=organization_id,
        correlation_id=correlation_id.get(),
    )
