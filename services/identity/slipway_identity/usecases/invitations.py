"""Invitations: minted with a single-use link token, accepted only by the invited address.

The token is delivered after the invitation is committed (a mail is never sent for an invitation
that does not exist). A mail lost by the server or by a crash between the commit and the send is
logged; inviting the same address again is the recovery: it mints a new token (the previous one
stops working) and sends it again. Rules: ``domain/invitations.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import structlog

from slipway_identity import security
from slipway_identity.db import queries as q
from slipway_identity.domain.accounts import normalize_email
from slipway_identity.domain.invitations import Invitation, check_acceptance, invitation_mail
from slipway_identity.domain.organizations import Member
from slipway_identity.domain.roles import check_can_grant
from slipway_identity.mail import MailError
from slipway_identity.usecases import access
from slipway_identity.usecases.deps import SOURCE, Deps
from slipway_identity.usecases.members import resolve_role
from slipway_identity.usecases.organizations import get as get_org
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import Clash, Missing

log = structlog.get_logger(__name__)

# how the link token reached (or will reach) the invitee
Delivery = Literal["mail", "mail_failed", "inviter"]


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str  # in plain text only here: mailed, or answered once to the inviter
    organization_name: str


def invitation_status(invitation: Invitation) -> str:
    return invitation.status_at(datetime.now(UTC))


async def invite(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, org_id: uuid.UUID, *, email: str, role: str
) -> NewInvitation:
    """A pending invitation with a new link token; an address already invited gets a new token
    (and the role and expiry of this invitation)."""
    org = await get_org(conn, org_id)
    email = normalize_email(email)
    builtin, custom = await resolve_role(conn, org_id, role)
    check_can_grant(actor_role=actor.organization_role, granted_role=builtin)
    existing = await q.user_by_email(conn, email)
    if existing is not None and await q.member(conn, org_id, existing.id) is not None:
        raise Clash("ALREADY_MEMBER", "This person is already a member.", field="email")
    await q.expire_pending_invitation(conn, org_id, email)
    token = security.new_invitation_token()
    invitation, created = await q.upsert_pending_invitation(
        conn,
        invitation_id=uuid.uuid4(),
        org_id=org_id,
        email=email,
        role=builtin,
        custom_role_id=custom,
        invited_by=actor.user_id,
        token_sha256=security.sha256(token),
        expires_at=datetime.now(UTC) + deps.invitation_ttl,
    )
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="CREATE" if created else "UPDATE",
        target_type="INVITATION",
        target_id=invitation.id,
        target_name=email,
        change={"email": email, "role": role},
    )
    return NewInvitation(invitation=invitation, token=token, organization_name=org.name)


async def deliver(deps: Deps, invitation: NewInvitation) -> Delivery:
    """Mail the link token to the invited address (outside any transaction)."""
    if deps.mailer is None:
        return "inviter"
    invited = invitation.invitation
    mail = invitation_mail(
        to=invited.email,
        organization=invitation.organization_name,
        role=invited.role_name,
        invitation_id=str(invited.id),
        token=invitation.token,
        expires_at=invited.expires_at,
        api_url=deps.public_api_url,
    )
    try:
        await deps.mailer.send(mail)
    except MailError as exc:
        # the invitation stands; inviting the address again sends a new link
        log.warning(
            "identity.invitation_mail_failed", invitation_id=str(invited.id), error=str(exc)
        )
        return "mail_failed"
    return "mail"


async def accept(
    conn: asyncpg.Connection, actor: Actor, invitation_id: uuid.UUID, *, token: str | None
) -> Member:
    """The signed-in user whose address was invited, holding the link token, becomes a member
    with the invited role; the token is used up."""
    invitation = await q.invitation(conn, invitation_id)
    user = await q.user_by_id(conn, actor.user_id) if actor.user_id else None
    if invitation is None or user is None:
        raise Missing("INVITATION_NOT_FOUND", "No such invitation for you.")
    check_acceptance(
        invited_email=invitation.email,
        user_email=user.email,
        token_matches=(security.token_matches(token, invitation.token_sha256) if token else None),
        status=invitation_status(invitation),
    )
    await get_org(conn, invitation.organization_id)
    member = await q.upsert_member(
        conn,
        org_id=invitation.organization_id,
        user_id=user.id,
        role=invitation.role,
        custom_role_id=invitation.custom_role_id,
    )
    await q.set_invitation_status(conn, invitation_id, "accepted")
    await access.membership_changed(conn, member)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=invitation.organization_id,
        action="ACCEPT",
        target_type="INVITATION",
        target_id=invitation_id,
        target_name=user.email,
        change={"role": member.role_name},
    )
    return member


async def revoke(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, invitation_id: uuid.UUID
) -> None:
    row = await q.invitation(conn, invitation_id, org_id=org_id)
    if row is None or row.status != "pending":
        raise Missing("INVITATION_NOT_FOUND", "No such pending invitation.")
    await q.set_invitation_status(conn, invitation_id, "revoked")
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="DELETE",
        target_type="INVITATION",
        target_id=invitation_id,
        target_name=row.email,
    )
