from pydantic import Field
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
