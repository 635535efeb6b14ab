"""What the use cases need besides a connection, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from slipway_identity.config import IdentitySettings
from slipway_identity.domain.login_throttle import Limits
from slipway_identity.mail import Mailer, SmtpMailer
from slipway_identity.security import Passwords
from slipway_libs.crypto import Sealer

SOURCE = "identity"


@dataclass(frozen=True)
class Deps:
    passwords: Passwords
    sealer: Sealer
    access_ttl: timedelta
    refresh_ttl: timedelta
    invitation_ttl: timedelta
    login_limits: Limits
    mailer: Mailer | None  # None: invitation link tokens go to the inviter
    public_api_url: str

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> Deps:
        return cls(
            passwords=Passwords.create(
                time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
            ),
            sealer=Sealer.from_setting(settings.sealing_keys),
            access_ttl=timedelta(seconds=settings.access_token_ttl_s),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
            invitation_ttl=timedelta(seconds=settings.invitation_ttl_s),
            login_limits=Limits(
                window=timedelta(seconds=settings.login_window_s),
                per_account=settings.login_max_failures_per_account,
                per_address=settings.login_max_failures_per_address,
            ),
            mailer=SmtpMailer.from_settings(settings),
            public_api_url=settings.public_api_url,
        )
