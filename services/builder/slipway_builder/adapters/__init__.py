"""The builder's adapters: buildah, the registry's HTTP API, git, the build log's outbox writer and
the host's processes."""
