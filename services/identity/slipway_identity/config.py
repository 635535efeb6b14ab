from pydantic import Field, SecretStr
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
    # login throttling, in one window: failures per account (from the addresses that never signed
    # in to it; a known address counts only its own) and per client address (domain/login_throttle)
    login_window_s: int = 300
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 30
    # invitation mail: with no SMTP host, the invitation's link token is answered once to the
    # inviter, who passes it on; with one, it only goes by mail to the invited address
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_s: float = 10.0
    mail_from: str = "Slipway <slipway@localhost>"
    # the public API as invitees reach it (the gateway), for the instructions in the mail
    public_api_url: str = "http://127.0.0.1:8080/api/v1"
