from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class CatalogSettings(DatabaseServiceSettings):
    """Environment variables prefixed ``SLIPWAY_CATALOG_``."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_CATALOG_", extra="ignore")

    http_port: int = 8082
    # kid:base64(32 bytes)[,...]: seals secrets and cluster credentials at rest (first = active)
    sealing_keys: str = Field(min_length=8)
    # seals secret values inside events, for the consumers that hold it (the deployer);
    # defaults to the sealing keys on a single machine
    transport_keys: str | None = None
    # every organization lists the machine running Slipway as its "local" cluster
    local_runtime: bool = True
    # the PostgreSQL major the local runtime runs ("none": no databases); default: the one the
    # deployer's local runtime would use on this host (the newest /usr/lib/postgresql/<major>)
    local_postgresql_version: str | None = Field(default=None, max_length=10)
    cluster_check_timeout_s: float = 5.0
    # a kubeconfig file: the first organization ever created here gets it as a self_managed
    # cluster (`make up` with the devstack's Kubernetes sets it); later ones register their own
    bootstrap_kubeconfig: Path | None = None
    bootstrap_cluster_name: str = Field(default="devstack", min_length=1, max_length=63)
    # loopback, private, link-local and metadata targets (cluster API servers) the platform may
    # connect to anyway: exact host:port entries, comma-separated; empty allows none
    egress_allow: str = Field(
        default="",
        validation_alias=AliasChoices("SLIPWAY_CATALOG_EGRESS_ALLOW", "SLIPWAY_EGRESS_ALLOW"),
    )
    # the platform's own registry (where built images live): a container image may name it
    # whatever the egress rules say
    registry: str = Field(
        default="127.0.0.1:15000",
        validation_alias=AliasChoices("SLIPWAY_CATALOG_REGISTRY", "SLIPWAY_REGISTRY"),
    )
