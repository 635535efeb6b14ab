from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class SchedulerSettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_SCHEDULER_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_SCHEDULER_", extra="ignore")

    http_port: int = 8085
    # timers fired per transaction; a full batch is followed at once by the next
    timer_batch_size: int = Field(default=500, ge=1)
    # the longest sleep of the timer loop: what a lost notification can cost a re-armed timer
    timer_poll_s: float = Field(default=1.0, gt=0)
    # kid:base64(32 bytes)[,...]: seals outgoing webhooks' signing secrets at rest (first =
    # active)
    sealing_keys: str = Field(min_length=8)
    # loopback, private, link-local and metadata targets (webhook receivers) the platform may
    # deliver to anyway: exact host:port entries, comma-separated; empty allows none
    egress_allow: str = Field(
        default="",
        validation_alias=AliasChoices("SLIPWAY_SCHEDULER_EGRESS_ALLOW", "SLIPWAY_EGRESS_ALLOW"),
    )
    # outgoing webhooks' deliveries: the first retry's wait (doubled after each failure, at
    # most webhook_retry_cap_s, with jitter) and how long after the event they are retried
    webhook_retry_base_s: float = Field(default=30.0, gt=0)
    webhook_retry_cap_s: float = Field(default=3600.0, gt=0)
    webhook_retry_window_s: float = Field(default=86400.0, gt=0)
    # one attempt's time limit (connecting, sending, the answer)
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # deliveries sent at once by one process per round
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    # the delivery loop's longest sleep: what a lost notification can cost a due delivery
    webhook_poll_s: float = Field(default=1.0, gt=0)
    # how long a pull request's preview environment lives after it opened (then deleted)
    preview_ttl_s: float = Field(default=7 * 86400.0, gt=0)
    # the expiry loop's longest sleep: how late past its time to live a preview may go
    preview_expiry_poll_s: float = Field(default=30.0, gt=0)
    # polling the remotes of deployed applications for new commits (a repository without a
    # git webhook): each branch at most this often; a failure waits twice as long each time
    # (at most git_poll_backoff_cap_s); after a webhook's push, polling waits
    # git_poll_webhook_quiet_s
    git_poll_interval_s: float = Field(default=180.0, gt=0)
    git_poll_backoff_cap_s: float = Field(default=3600.0, gt=0)
    git_poll_webhook_quiet_s: float = Field(default=86400.0, ge=0)
    # one ls-remote's time limit; branches polled at once by one process
    git_poll_timeout_s: float = Field(default=30.0, gt=0, le=300)
    git_poll_concurrency: int = Field(default=4, ge=1, le=64)
    git_poll_batch_size: int = Field(default=50, ge=1, le=1000)
    # how soon a newly deployed application's branch is first polled (at most)
    git_poll_discover_s: float = Field(default=10.0, gt=0)
    # local repositories (an absolute path) are polled only from under these roots
    # (os.pathsep-separated, as the builder's and the deployer's); empty allows none
    git_local_roots: str = Field(
        default="",
        validation_alias=AliasChoices(
            "SLIPWAY_SCHEDULER_GIT_LOCAL_ROOTS", "SLIPWAY_GIT_LOCAL_ROOTS"
        ),
    )
    # opens the git credentials the catalog seals in its events (shared with the catalog and
    # the deployer); without it, private repositories are polled without credentials
    transport_keys: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SLIPWAY_SCHEDULER_TRANSPORT_KEYS",
            "SLIPWAY_CATALOG_TRANSPORT_KEYS",
            "SLIPWAY_CATALOG_SEALING_KEYS",
        ),
    )
