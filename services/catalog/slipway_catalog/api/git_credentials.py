"""Internal routes of the organizations' git credentials (the gateway allows them to the
organization's owners and admins). No route answers a secret: create answers what list does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Response

from slipway_catalog.api.answers import GitCredentialOut, GitCredentialPage
from slipway_catalog.api.schemas import shaped
from slipway_catalog.domain.git_credentials import GitCredential, GitCredentialIn, view
from slipway_catalog.usecases import git_credentials
from slipway_catalog.usecases.deps import Deps
from slipway_libs.actor import Actor, actor_from
from slipway_libs.idempotency import Once

CurrentActor = Annotated[Actor, Depends(actor_from)]
Tx = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


def _out(row: GitCredential) -> dict[str, Any]:
    """The answer as the routes' model sends it (an idempotent replay stores this one)."""
    return shaped(GitCredentialOut, view(row))


def add_routes(router: APIRouter, tx: Tx, deps: Deps) -> None:
    base = "/organizations/{org_id}/git-credentials"

    @router.get(base, response_model=GitCredentialPage)
    async def list_git_credentials(org_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            rows = await git_credentials.list_for(conn, deps, org_id)
        return {"items": [_out(row) for row in rows], "next_cursor": None}

    @router.post(base, status_code=201, response_model=GitCredentialOut)
    async def create_git_credential(
        org_id: uuid.UUID, body: GitCredentialIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return _out(await git_credentials.create(conn, deps, actor, org_id, body))

        return await once.run(tx, work)

    @router.get(base + "/{credential_id}", response_model=GitCredentialOut)
    async def read_git_credential(org_id: uuid.UUID, credential_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return _out(await git_credentials.get(conn, org_id, credential_id))

    @router.delete(base + "/{credential_id}", status_code=204)
    async def delete_git_credential(
        org_id: uuid.UUID, credential_id: uuid.UUID, actor: CurrentActor
    ) -> Response:
        async with tx() as conn:
            await git_credentials.delete(conn, actor, org_id, credential_id)
        return Response(status_code=204)
