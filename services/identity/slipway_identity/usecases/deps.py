"""What the use cases need besides a connection, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from slipway_identity.config import IdentitySettings
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
    login_window: timedelta
    max_failures_per_account: int
    max_failures_per_address: int

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
            login_window=timedelta(seconds=settings.login_window_s),
            max_failures_per_account=settings.login_max_failures_per_account,
            max_failures_per_address=settings.login_max_failures_per_address,
        )
