from pydantic import Field
from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class IdentitySettings(DatabaseServiceSettings):
    """Environment variables prefixed ``SLIPWAY_IDENTITY_``."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_IDENTITY_", extra="ignore")

    http_port: int = 8081
    # kid:base64(32 bytes)[,kid:base64...]: seals the token-signing private keys at rest
    sealing_keys: str = Field(min_length=8)
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    invitation_ttl_s: int = 7 * 24 * 3600
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024
    # login throttling: failures per account, failures per client address, in one window
    login_window_s: int = 300
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 30
