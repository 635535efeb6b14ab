import os

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


def _cache() -> str:
    return os.environ.get("SLIPWAY_CACHE_DIR", os.path.expanduser("~/.cache/slipway"))


class DeployerSettings(DatabaseServiceSettings):
    """Environment variables prefixed ``SLIPWAY_DEPLOYER_`` (buildah storage and keys also read
    from the devstack's ``SLIPWAY_BUILDAH_*`` and the catalog's keys on one machine)."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_DEPLOYER_", extra="ignore")

    http_port: int = 8084
    # the API, the executions and the consumers share it (the worker's lock has its own)
    db_pool_max: int = 20
    # opens the secrets the catalog seals inside its events (shared with the catalog)
    transport_keys: str = Field(
        min_length=8,
        validation_alias=AliasChoices(
            "SLIPWAY_DEPLOYER_TRANSPORT_KEYS",
            "SLIPWAY_CATALOG_TRANSPORT_KEYS",
            "SLIPWAY_CATALOG_SEALING_KEYS",
        ),
    )
    # seals database passwords and job outputs at rest; defaults to the transport keys
    sealing_keys: str | None = None
    # where the local runtime keeps its state (running services)
    state_dir: str = Field(default_factory=lambda: f"{_cache()}/deployer")
    # database data: the host's PostgreSQL runs as the ``postgres`` user, which must be able to
    # reach it (a home directory is usually closed to it); default: under the state dir, or
    # /var/lib/slipway/databases when running as root
    databases_dir: str | None = None
    buildah_root: str = Field(
        default_factory=lambda: f"{_cache()}/buildah/root",
        validation_alias=AliasChoices("SLIPWAY_DEPLOYER_BUILDAH_ROOT", "SLIPWAY_BUILDAH_ROOT"),
    )
    buildah_runroot: str = Field(
        default_factory=lambda: f"{_cache()}/buildah/runroot",
        validation_alias=AliasChoices(
            "SLIPWAY_DEPLOYER_BUILDAH_RUNROOT", "SLIPWAY_BUILDAH_RUNROOT"
        ),
    )
    buildah_storage_driver: str = Field(
        default="vfs",
        validation_alias=AliasChoices(
            "SLIPWAY_DEPLOYER_BUILDAH_STORAGE_DRIVER", "SLIPWAY_BUILDAH_STORAGE_DRIVER"
        ),
    )
    # the platform's registry (where the builder pushes): always allowed, reached with the
    # deployer's own user (SLIPWAY_DEPLOYER_REGISTRY_USERNAME / _PASSWORD), plain http unless
    # registry_tls; every other registry an image names is reached over verified TLS only
    registry: str = Field(
        default="127.0.0.1:15000",
        validation_alias=AliasChoices("SLIPWAY_DEPLOYER_REGISTRY", "SLIPWAY_REGISTRY"),
    )
    registry_tls: bool = False
    registry_username: str | None = None
    registry_password: SecretStr | None = None
    # loopback, private, link-local and metadata registries the deployer may pull from anyway:
    # exact host:port entries, comma-separated; empty allows none
    egress_allow: str = Field(
        default="",
        validation_alias=AliasChoices("SLIPWAY_DEPLOYER_EGRESS_ALLOW", "SLIPWAY_EGRESS_ALLOW"),
    )
    max_parallel_deployments: int = Field(default=200, ge=1, le=10_000)
    parallel_per_stage: int = Field(default=4, ge=1, le=100)
    # services, databases and jobs being started at once, across every deployment
    parallel_starts: int = Field(default=4, ge=1, le=100)
    # the local runtime's buildah and containers run this much nicer than the deployer
    workload_nice: int = Field(default=10, ge=0, le=19)
    poll_s: float = 0.5
    monitor_s: float = 2.0
    # how often the worker looks for what runs of services the catalog deleted (and heartbeats)
    reconcile_s: float = 3.0
    # reaching a self-managed cluster's API server before a deployment uses it
    cluster_timeout_s: float = Field(default=10.0, gt=0)
    # the helm CLI (Helm services on Kubernetes clusters); the devstack writes SLIPWAY_HELM
    helm: str = Field(
        default="helm", validation_alias=AliasChoices("SLIPWAY_DEPLOYER_HELM", "SLIPWAY_HELM")
    )
    # Helm charts from local git repositories only from under these roots (os.pathsep-separated,
    # as the builder's); empty allows none
    git_local_roots: str = Field(
        default="",
        validation_alias=AliasChoices(
            "SLIPWAY_DEPLOYER_GIT_LOCAL_ROOTS", "SLIPWAY_GIT_LOCAL_ROOTS"
        ),
    )
    build_timeout_s: float = 3600
    apply_timeout_s: float = 300
    deployment_timeout_s: float = 7200
    # how long a request that names catalog revisions (the caller's last writes) waits for the
    # projection to reach them before 409 CATALOG_NOT_CAUGHT_UP
    catalog_wait_s: float = 5.0
