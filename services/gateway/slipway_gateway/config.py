from pydantic import Field
from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Environment variables prefixed ``SLIPWAY_GATEWAY_``; the gateway owns no database."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_GATEWAY_", extra="ignore")

    http_port: int = 8080
    identity_url: str = "http://127.0.0.1:8081"
    catalog_url: str = "http://127.0.0.1:8082"
    builder_url: str = "http://127.0.0.1:8083"
    deployer_url: str = "http://127.0.0.1:8084"
    scheduler_url: str = "http://127.0.0.1:8085"
    logs_url: str = "http://127.0.0.1:8086"
    upstream_timeout_s: float = 10.0
    # connections the gateway holds to the services for the requests it forwards, all kept
    # alive between requests (a pool keeping fewer than the requests in flight opened and
    # closed a connection per request: httpx kept 20)
    upstream_connections: int = Field(default=256, ge=1)
    token_usage_flush_s: float = 5.0
    # log follows (SSE or WebSocket) one principal holds at once in this process; one more is
    # a 429 TOO_MANY_FOLLOWS
    follows_per_principal: int = Field(default=20, ge=1)
    # the organizations' event streams (``…/events``): a heartbeat comment after this much
    # silence, a connection's lifetime (the client resumes with Last-Event-ID), and the events
    # held for resumes (per organization, and organizations held at once; older resumes read
    # the deployer's topic again)
    events_heartbeat_s: float = Field(default=15.0, gt=0)
    events_lifetime_s: float = Field(default=900.0, gt=0)
    events_per_organization: int = Field(default=1000, ge=1)
    events_organizations: int = Field(default=1000, ge=1)

    # the services this gateway routes to and waits for (all by default; a subset for tests or
    # a partial deployment), comma-separated
    services: str = ",".join(("identity", "catalog", "builder", "deployer", "scheduler", "logs"))

    def upstreams(self) -> dict[str, str]:
        enabled = {s.strip() for s in self.services.split(",") if s.strip()}
        return {name: getattr(self, f"{name}_url") for name in UPSTREAMS if name in enabled}


UPSTREAMS = ("identity", "catalog", "builder", "deployer", "scheduler", "logs")
