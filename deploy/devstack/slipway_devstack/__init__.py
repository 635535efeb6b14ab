"""Slipway local dev stack: single-node Kafka (KRaft), PostgreSQL 15, an OCI registry, SMTP catcher.

Usage: python3 deploy/devstack/devstack.py up|down|status|env|clean|stop <component>

`stop` takes kafka, postgres, registry, mailcatcher or kubernetes (the control plane that
SLIPWAY_DEVSTACK_KUBERNETES=1 adds, built from source into the cache once per machine). The
SMTP catcher writes every mail it gets to .devstack/mail/ instead of delivering it.

Stdlib only (runs before any virtualenv exists). State lives in <repo>/.devstack/, the Kafka
jars and the buildah storage are cached in $SLIPWAY_CACHE_DIR (default ~/.cache/slipway).
`up` pushes the base image slipway/busybox:latest (from Debian's busybox-static) to the registry
and writes <repo>/.devstack/env with the bootstrap servers, database URLs and registry.

The registry requires authentication (htpasswd, bcrypt): a deployed workload runs on the host
network and must not push or overwrite images. Its users are `admin` (the devstack, tests and
tools), `builder` and `deployer`, each with a password of its own in .devstack/secrets.json.
docker-registry's htpasswd has no per-user rights: every user may push and pull.
"""
