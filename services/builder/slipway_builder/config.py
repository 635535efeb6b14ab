import os

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


def _cache() -> str:
    return os.environ.get("SLIPWAY_CACHE_DIR", os.path.expanduser("~/.cache/slipway"))


class BuilderSettings(DatabaseServiceSettings):
    """Environment variables prefixed ``SLIPWAY_BUILDER_`` (registry and buildah storage also
    read from the devstack's ``SLIPWAY_REGISTRY`` and ``SLIPWAY_BUILDAH_*``)."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_BUILDER_", extra="ignore")

    http_port: int = 8083
    registry: str = Field(
        default="127.0.0.1:15000",
        validation_alias=AliasChoices("SLIPWAY_BUILDER_REGISTRY", "SLIPWAY_REGISTRY"),
    )
    registry_tls: bool = False
    # the builder's own user of the registry (SLIPWAY_BUILDER_REGISTRY_USERNAME / _PASSWORD):
    # it pushes the images it builds and pulls the platform's base images
    registry_username: str | None = None
    registry_password: SecretStr | None = None
    buildah_root: str = Field(
        default_factory=lambda: f"{_cache()}/buildah/root",
        validation_alias=AliasChoices("SLIPWAY_BUILDER_BUILDAH_ROOT", "SLIPWAY_BUILDAH_ROOT"),
    )
    buildah_runroot: str = Field(
        default_factory=lambda: f"{_cache()}/buildah/runroot",
        validation_alias=AliasChoices("SLIPWAY_BUILDER_BUILDAH_RUNROOT", "SLIPWAY_BUILDAH_RUNROOT"),
    )
    # a Dockerfile's RUN steps run as root of a user namespace mapped onto these unprivileged
    # host ids (uid = gid, container id i is host id build_id_base + i): never the host's root,
    # nor the deployer's workload uids (200000 + up to 2^20), nor the subordinate ranges useradd
    # hands out (100000 to 600100000); images with files of several uids need 65536 of them
    build_id_base: int = Field(default=700_000_000, ge=65_536, le=(1 << 31) - (1 << 16))
    build_id_count: int = Field(default=65_536, ge=1_024, le=1 << 16)
    workspace: str = Field(default_factory=lambda: f"{_cache()}/builds")
    # local git repositories may be built only from under these roots (os.pathsep-separated)
    git_local_roots: str = Field(
        default="",
        validation_alias=AliasChoices("SLIPWAY_BUILDER_GIT_LOCAL_ROOTS", "SLIPWAY_GIT_LOCAL_ROOTS"),
    )
    # loopback, private, link-local and metadata git remotes the builder may reach anyway: exact
    # host:port entries, comma-separated; empty allows none (local paths: git_local_roots)
    egress_allow: str = Field(
        default="",
        validation_alias=AliasChoices("SLIPWAY_BUILDER_EGRESS_ALLOW", "SLIPWAY_EGRESS_ALLOW"),
    )
    max_parallel_builds: int = Field(default=2, ge=1, le=64)
    build_timeout_s: float = 1800
    clone_timeout_s: float = 300
    max_repository_bytes: int = 2 * 1024**3
    # seals git tokens inside build commands (shared with the deployer); optional on one machine
    transport_keys: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SLIPWAY_BUILDER_TRANSPORT_KEYS", "SLIPWAY_CATALOG_SEALING_KEYS"
        ),
    )
