"""The organizations' git credentials, for builds of private repositories and git charts.

The projection keeps each credential as the catalog sent it: sealed with the transport key,
bound to the credential's id. A build request opens the chosen one only to seal it again,
bound to the build's id, for the builder — so a sealed secret copied onto another build or
credential does not open, and nothing the deployer stores, logs or publishes holds it in clear.
A Helm chart from git is fetched by the deployer itself: the credential is opened for that
fetch only (in memory, handed to the runtime's git), never stored nor published.
"""

from __future__ import annotations

import base64
import uuid

import asyncpg
import structlog

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import catalog as ev
from slipway_deployer.adapters.runtime import GitAccess
from slipway_deployer.db import git_credential_queries as q
from slipway_deployer.domain.git_credentials import choose
from slipway_libs.crypto import Sealer

log = structlog.get_logger(__name__)


async def on_changed(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """``catalog.GitCredentialChanged``, in the inbox transaction of the catalog consumer."""
    event = REGISTRY.parse(envelope)
    assert isinstance(event, ev.GitCredentialChanged)
    await q.project(conn, event)


async def for_build(
    conn: asyncpg.Connection,
    transport: Sealer,
    *,
    org_id: uuid.UUID,
    url: str,
    build_id: uuid.UUID,
) -> dict[str, str]:
    """The ``BuildRequested`` fields that carry the credential a build of ``url`` uses, sealed
    for that build (empty: no credential serves it)."""
    credential = choose(await q.of_organization(conn, org_id), url)
    if credential is None or credential.secret_sealed is None:
        return {}
    clear = transport.open(base64.b64decode(credential.secret_sealed), aad=credential.id.bytes)
    sealed = base64.b64encode(transport.seal(clear, aad=build_id.bytes)).decode()
    log.info(
        "build.git_credential",
        build_id=str(build_id),
        credential_id=str(credential.id),
        kind=credential.kind,
    )
    if credential.kind == "token":
        return {"git_token_sealed": sealed}
    fields = {"git_ssh_key_sealed": sealed}
    if credential.known_hosts:
        fields["git_known_hosts"] = credential.known_hosts
    return fields


async def for_chart(
    conn: asyncpg.Connection, transport: Sealer, *, org_id: uuid.UUID, url: str
) -> GitAccess:
    """The credential a git chart of ``url`` is fetched with, opened (empty: none serves it)."""
    credential = choose(await q.of_organization(conn, org_id), url)
    if credential is None or credential.secret_sealed is None:
        return GitAccess()
    clear = transport.open(base64.b64decode(credential.secret_sealed), aad=credential.id.bytes)
    log.info("chart.git_credential", credential_id=str(credential.id), kind=credential.kind)
    if credential.kind == "token":
        return GitAccess(token=clear.decode())
    return GitAccess(ssh_key=clear.decode(), known_hosts=credential.known_hosts)
