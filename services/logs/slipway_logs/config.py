from pydantic import Field
from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class LogsSettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_LOGS_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_LOGS_", extra="ignore")

    http_port: int = 8086
    # lines are kept this many days (whole daily partitions dropped); an organization may keep
    # them for fewer (``set-retention``)
    retention_days: int = Field(default=30, ge=1)
    # daily partitions created this many days in advance
    partitions_ahead_days: int = Field(default=2, ge=1)
    # how often the leading worker creates, drops and deletes
    maintenance_every_s: float = Field(default=3600.0, gt=0)
    # following (``…/logs/stream``): lines a follower's buffer holds before it skips some; a
    # heartbeat comment after this much silence; a connection's lifetime (the client resumes)
    follow_backlog_lines: int = Field(default=10_000, ge=1)
    # …and this many bytes of their text (a line of up to 1 MiB, 10,000 of them, held per
    # follower that does not read, was up to 10 GB)
    follow_backlog_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    # follows one process serves at once; one more is a 503 with Retry-After
    follow_max_followers: int = Field(default=1000, ge=1)
    follow_heartbeat_s: float = Field(default=15.0, gt=0)
    # 15 min: a follow outlives its follower's revoked access by at most this (the resume goes
    # through the gateway's authorization again)
    follow_lifetime_s: float = Field(default=900.0, gt=0)
    # a deployment's follower is sent ``end`` this long after its end was recorded (its last
    # lines come on another topic than its end, and may be stored a little later)
    follow_end_grace_s: float = Field(default=2.0, ge=0)
    # a followed stream is read at least this often (a notification may be lost on reconnect)
    follow_poll_s: float = Field(default=2.0, gt=0)
