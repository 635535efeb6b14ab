"""Who may accept an invitation, and what its mail says (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipway_identity.domain.invitations import check_acceptance, invitation_mail
from slipway_libs.errors import DomainError

INVITED = "bob@example.com"


@pytest.mark.parametrize(
    ("user", "token_matches", "status", "code"),
    [
        ("eve@example.com", True, "pending", "INVITATION_NOT_FOUND"),  # the token is not enough
        ("eve@example.com", None, "pending", "INVITATION_NOT_FOUND"),
        (INVITED, None, "pending", "INVITATION_TOKEN_REQUIRED"),  # the address is not enough
        (INVITED, False, "pending", "INVITATION_TOKEN_INVALID"),
        (INVITED, False, "accepted", "INVITATION_TOKEN_INVALID"),  # a wrong token learns nothing
        (INVITED, True, "accepted", "INVITATION_NOT_PENDING"),  # single use
        (INVITED, True, "expired", "INVITATION_NOT_PENDING"),
        (INVITED, True, "revoked", "INVITATION_NOT_PENDING"),
    ],
)
def test_only_the_invited_address_with_the_live_token_accepts(
    user: str, token_matches: bool | None, status: str, code: str
) -> None:
    with pytest.raises(DomainError) as refused:
        check_acceptance(
            invited_email=INVITED, user_email=user, token_matches=token_matches, status=status
        )
    assert refused.value.code == code
    assert 400 <= refused.value.status_code < 500


def test_the_invited_address_with_the_live_token_accepts() -> None:
    check_acceptance(
        invited_email=INVITED, user_email=INVITED, token_matches=True, status="pending"
    )


def test_the_mail_carries_the_token_and_how_to_use_it() -> None:
    mail = invitation_mail(
        to=INVITED,
        organization="Acme",
        role="devops",
        invitation_id="0b7c3c9e-0000-4000-8000-000000000001",
        token="sli_secret",
        expires_at=datetime(2026, 1, 8, 12, 30, tzinfo=UTC),
        api_url="https://slipway.example.com/api/v1/",
    )
    assert mail.to == INVITED and mail.subject == "Join Acme on Slipway"
    assert "https://slipway.example.com/api/v1/invitations/0b7c3c9e-" in mail.body
    assert '{"token": "sli_secret"}' in mail.body
    assert "until 2026-01-08 12:30 UTC" in mail.body
