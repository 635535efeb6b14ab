"""Pull requests' preview environments deployed: the catalog's ``catalog.PreviewChanged`` (the
preview cloned, or pointed at the pull request's new head commit), queued as a DEPLOY of the
whole preview environment with the trigger ``preview`` and the head commit as its version.

- It comes through the ``deployer.catalog`` consumer, after the preview's own changes (the
  catalog publishes it last, in their transaction, on the project's ordered topic): the
  projection already has the whole preview environment when the deploy is queued.
- Each event is applied once (the inbox); identical pending requests merge as any do.
- An environment the deployer does not know (deleted since) or whose state refuses a deploy
  (being deleted) is done: nothing queued, logged.
"""

from __future__ import annotations

import asyncpg

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import catalog as ev
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.usecases import requests
from slipway_libs.actor import Actor

PREVIEW = Actor(type="system", id="preview", name="pull request preview", origin="git")


async def on_preview_changed(conn: asyncpg.Connection, envelope: Envelope) -> None:
    change = REGISTRY.parse(envelope)
    assert isinstance(change, ev.PreviewChanged)
    await requests.request_for_event(
        conn,
        "preview_deploy",
        {
            "environment_id": str(change.environment_id),
            "pull_request": change.pull_request,
            "commit": change.commit,
        },
        environment_id=change.environment_id,
        action=sm.Action.DEPLOY,
        actor=PREVIEW,
        version=change.commit,
        trigger=sm.TriggerKind.PREVIEW.value,
    )
