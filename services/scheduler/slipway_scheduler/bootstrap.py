"""Composition root of the scheduler service: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter

from slipway_libs.bus import ConsumerSpec
from slipway_libs.crypto import Sealer
from slipway_libs.egress import EgressPolicy
from slipway_libs.git_local import roots_from_setting
from slipway_libs.service import ApiTask, Container, Resources, ServiceDefinition
from slipway_scheduler.adapters.clock import SystemClock
from slipway_scheduler.adapters.git_remote import GitRemote
from slipway_scheduler.adapters.webhook_sender import HttpSender
from slipway_scheduler.api.git_webhooks import build_git_webhook_router
from slipway_scheduler.api.routes import build_router
from slipway_scheduler.api.webhooks import build_webhook_router
from slipway_scheduler.config import SchedulerSettings
from slipway_scheduler.domain.git_polling import PollPolicy
from slipway_scheduler.domain.timers import Clock
from slipway_scheduler.events.subscribers import consumers
from slipway_scheduler.poll_worker import GitPollLoop
from slipway_scheduler.usecases.delivering import DeliveryDeps, RetryPolicy
from slipway_scheduler.usecases.git_polling import PollDeps
from slipway_scheduler.usecases.git_pushes import GitHookDeps
from slipway_scheduler.usecases.webhooks import WebhookDeps
from slipway_scheduler.worker import DeliveryLoop, PreviewExpiryLoop, TimerLoop

# the scheduler's parts: the clock its projection and its timer loop read
SchedulerContainer = Container[SchedulerSettings, Clock]


def _clock(resources: Resources[SchedulerSettings]) -> Clock:
    return SystemClock()


def webhook_deps(settings: SchedulerSettings) -> WebhookDeps:
    return WebhookDeps(
        sealer=Sealer.from_setting(settings.sealing_keys),
        egress=EgressPolicy.from_setting(settings.egress_allow),
    )


def _routers(container: SchedulerContainer) -> Sequence[APIRouter]:
    pool, callers = container.require_pool(), container.settings.internal_caller_digests()
    return [
        build_router(pool, callers),
        build_webhook_router(pool, callers, webhook_deps(container.settings), container.parts),
        build_git_webhook_router(pool, callers, git_hook_deps(container.settings, container.parts)),
    ]


def git_hook_deps(settings: SchedulerSettings, clock: Clock) -> GitHookDeps:
    return GitHookDeps(
        sealer=Sealer.from_setting(settings.sealing_keys),
        clock=clock,
        preview_ttl=timedelta(seconds=settings.preview_ttl_s),
        poll_quiet=timedelta(seconds=settings.git_poll_webhook_quiet_s),
    )


def _consumers(container: SchedulerContainer) -> Sequence[ConsumerSpec]:
    return consumers(container.parts)


def _worker_tasks(container: SchedulerContainer) -> Sequence[ApiTask]:
    settings = container.settings
    loop = TimerLoop(
        container.require_pool(),
        settings.database_url,
        container.parts,
        batch_size=settings.timer_batch_size,
        poll_s=settings.timer_poll_s,
    )
    deliveries = DeliveryLoop(
        container.require_pool(),
        settings.database_url,
        delivery_deps(settings, container.parts),
        batch_size=settings.webhook_batch_size,
        poll_s=settings.webhook_poll_s,
    )
    expiry = PreviewExpiryLoop(
        container.require_pool(), container.parts, poll_s=settings.preview_expiry_poll_s
    )
    polls = GitPollLoop(
        container.require_pool(),
        poll_deps(settings, container.parts),
        batch_size=settings.git_poll_batch_size,
        concurrency=settings.git_poll_concurrency,
        discover_s=settings.git_poll_discover_s,
    )
    return [loop.run, deliveries.run, expiry.run, polls.run]


def poll_deps(settings: SchedulerSettings, clock: Clock) -> PollDeps:
    egress = EgressPolicy.from_setting(settings.egress_allow)
    return PollDeps(
        remote=GitRemote(
            egress,
            timeout_s=settings.git_poll_timeout_s,
            local_roots=roots_from_setting(settings.git_local_roots),
        ),
        clock=clock,
        policy=PollPolicy(
            interval=timedelta(seconds=settings.git_poll_interval_s),
            backoff_cap=timedelta(seconds=settings.git_poll_backoff_cap_s),
            webhook_quiet=timedelta(seconds=settings.git_poll_webhook_quiet_s),
            # longer than a poll can last, so that no other process takes it meanwhile
            lease=timedelta(seconds=settings.git_poll_timeout_s * 2 + 30),
        ),
        transport=Sealer.from_setting(settings.transport_keys) if settings.transport_keys else None,
    )


def delivery_deps(settings: SchedulerSettings, clock: Clock) -> DeliveryDeps:
    return DeliveryDeps(
        sealer=Sealer.from_setting(settings.sealing_keys),
        sender=HttpSender(
            EgressPolicy.from_setting(settings.egress_allow), timeout_s=settings.webhook_timeout_s
        ),
        clock=clock,
        retry=RetryPolicy(
            base_s=settings.webhook_retry_base_s,
            cap_s=settings.webhook_retry_cap_s,
            window=timedelta(seconds=settings.webhook_retry_window_s),
            # longer than an attempt can last, so that no other process takes it meanwhile
            lease=timedelta(seconds=settings.webhook_timeout_s * 2 + 30),
        ),
    )


DEFINITION = ServiceDefinition(
    name="scheduler",
    settings_cls=SchedulerSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=_clock,
    routers=_routers,
    consumers=_consumers,
    worker_tasks=_worker_tasks,
)
