# Slipway's entry points. `make up` and `make test` work on a fresh machine: they install what
# is missing (uv, Python packages, Debian packages, Kafka jars) and start what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEVSTACK := $(PYTHON) deploy/devstack/devstack.py
SERVICES := identity catalog builder deployer scheduler logs gateway

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: sync
sync: ## install the Python workspace into .venv (uv, one lock file)
	@"$$(bash deploy/ensure-uv.sh)" sync --frozen --quiet

.PHONY: infra-up
infra-up: ## start PostgreSQL and Kafka in the background (state in .devstack/)
	@$(DEVSTACK) up

.PHONY: infra-down
infra-down: ## stop the infrastructure
	@$(DEVSTACK) down

.PHONY: infra-status
infra-status:
	@$(DEVSTACK) status

.PHONY: migrate
migrate: sync infra-up ## apply every service's migrations; Kafka's topics and ACLs
	@set -a; . .devstack/env; set +a; for s in $(SERVICES); do $(PY) -m slipway_$$s migrate || exit 1; done
	@set -a; . .devstack/env; set +a; $(PY) -m slipway_libs.kafka_access

.PHONY: up
up: sync infra-up migrate ## run the whole platform in the foreground; Ctrl-C stops it
	@# a newcomer may deploy a repository from their home or the temp directory (DESIGN §5);
	@# SLIPWAY_EGRESS_ALLOW (exact host:port of loopback/private cluster API servers and git
	@# remotes) stays empty, the platform's own ports refused; with SLIPWAY_DEVSTACK_KUBERNETES=1
	@# the supervisor adds the devstack's API server and gives the first organization that cluster
	@SLIPWAY_GIT_LOCAL_ROOTS="$${SLIPWAY_GIT_LOCAL_ROOTS:-$$HOME:$${TMPDIR:-/tmp}}" \
		$(PY) deploy/supervisor.py

.PHONY: lint
lint: sync ## ruff, mypy (strict) and import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy -p slipway_contracts -p slipway_resolver -p slipway_libs $(foreach s,$(SERVICES),-p slipway_$(s)) -p slipway_cli
	$(VENV)/bin/lint-imports

.PHONY: test
# the devstack's Kubernetes API (issue 14) is on for the suite: its binaries are built once per
# machine into the cache outside the repo (about 7 minutes cold on 2 cores); 0 turns it off
test: export SLIPWAY_DEVSTACK_KUBERNETES ?= 1
test: sync infra-up lint ## the whole suite against the real infrastructure
	$(PY) -m pytest -n 2 -m "not fault" --dist loadfile
	$(PY) -m pytest -m fault

.PHONY: bench
# bench/kubernetes.py deploys to the devstack's Kubernetes
bench: export SLIPWAY_DEVSTACK_KUBERNETES ?= 1
bench: sync infra-up ## benchmarks; tables in bench/results/
	$(PY) bench/run.py

.PHONY: schemas
schemas: sync ## refresh the event JSON Schema snapshots and the AsyncAPI document
	$(PY) -m slipway_contracts write

.PHONY: openapi
openapi: sync ## refresh contracts/openapi.json, the public API's document (route table + services' models)
	$(PY) deploy/openapi.py

.PHONY: fmt
fmt: sync
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
