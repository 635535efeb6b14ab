"""Invitations are bound to the invited address (pure rules and the invitation mail's text).

An invitation names a normalized email. Whoever accepts must prove control of that address by
presenting the invitation's link token, which is delivered only to the address (by mail) or, when
no mailer is configured, shown once to the inviter to pass on. The token is random, stored only
as its SHA-256, single-use (acceptance ends the invitation) and expires with the invitation;
inviting the same address again mints a new token and the previous one stops working. Accepting
also needs a signed-in user whose normalized email is the invited one: the token alone is not
enough, and neither is the address alone (sign-up does not verify addresses).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from slipway_identity.domain.roles import role_reference
from slipway_libs.errors import Clash, Denied, InvalidInput, Missing


@dataclass(frozen=True, slots=True, kw_only=True)
class Invitation:
    """An invitation of a normalized address to a built-in or custom role; only the SHA-256 of
    its link token is kept (None for invitations from before link tokens)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: str | None
    custom_role_id: uuid.UUID | None
    status: str  # pending | accepted | revoked (stored; "expired" is derived)
    token_sha256: str | None
    expires_at: datetime
    created_at: datetime

    @property
    def role_name(self) -> str:
        return role_reference(self.role, self.custom_role_id)

    def status_at(self, now: datetime) -> str:
        """The status shown: a pending invitation past its expiry is ``expired``."""
        if self.status == "pending" and self.expires_at <= now:
            return "expired"
        return self.status


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def check_acceptance(
    *,
    invited_email: str,
    user_email: str,
    token_matches: bool | None,
    status: str,
) -> None:
    """Refuse, with a stable code, anything but the invited user holding the live token.

    ``token_matches`` is None when no token was presented. The order matters: someone else's
    invitation is not found (nothing about it is revealed), a wrong token says nothing about the
    invitation's state."""
    if invited_email != user_email:
        raise Missing("INVITATION_NOT_FOUND", "No such invitation for you.")
    if token_matches is None:
        raise InvalidInput(
            "INVITATION_TOKEN_REQUIRED",
            "Accepting needs the token of the invitation's link, sent to the invited address.",
            field="token",
        )
    if not token_matches:
        raise Denied(
            "INVITATION_TOKEN_INVALID",
            "This is not the token of this invitation's link (a newer invitation replaces it).",
        )
    if status != "pending":
        raise Clash("INVITATION_NOT_PENDING", f"This invitation is {status}.")


def invitation_mail(
    *,
    to: str,
    organization: str,
    role: str,
    invitation_id: str,
    token: str,
    expires_at: datetime,
    api_url: str,
) -> Mail:
    path = f"/invitations/{invitation_id}/accept"
    data = f'\'{{"token": "{token}"}}\''
    body = "\n".join(
        [
            f"You are invited to join {organization} on Slipway with the role {role}.",
            "",
            f"Sign in (or sign up) as {to}, then accept the invitation:",
            "",
            f"  slipway api POST {path} -d {data}",
            "",
            "or with any HTTP client:",
            "",
            f"  curl -X POST {api_url.rstrip('/')}{path} \\",
            '    -H "authorization: Bearer $TOKEN" -H "content-type: application/json" \\',
            f"    -d {data}",
            "",
            f"The token works once, until {expires_at:%Y-%m-%d %H:%M} UTC.",
            "If you did not expect this invitation, ignore this message.",
        ]
    )
    return Mail(to=to, subject=f"Join {organization} on Slipway", body=body)
