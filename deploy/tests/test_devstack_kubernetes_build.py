"""Pure parts of the devstack's Kubernetes: the wrapper go.mod generated from upstream's, and
the deployer's ClusterRole. (The build and the cluster themselves are exercised by
test_devstack_kubernetes.py with SLIPWAY_DEVSTACK_KUBERNETES=1.)"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "devstack"))

from slipway_devstack.kubernetes_build import kubernetes_wrapper_gomod, tools_go
from slipway_devstack.kubernetes_rbac import DEPLOYER_RULES
from slipway_devstack.settings import KUBERNETES_VERSION

UPSTREAM = """module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tgithub.com/spf13/cobra v1.10.0
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/example/forked => github.com/example/forked v1.2.3
)
"""


def test_the_wrapper_pins_every_staging_module_to_its_published_version() -> None:
    gomod = kubernetes_wrapper_gomod(UPSTREAM)
    staging = "v0." + KUBERNETES_VERSION.split(".", 1)[1]
    assert "module k8sbins" in gomod
    assert "\ngo 1.25.0\n" in gomod and "\ngodebug default=go1.25\n" in gomod
    assert f"require k8s.io/kubernetes v{KUBERNETES_VERSION}" in gomod
    assert f"\tk8s.io/api => k8s.io/api {staging}\n" in gomod
    assert f"\tk8s.io/client-go => k8s.io/client-go {staging}\n" in gomod
    # only the staging replaces: upstream's other replaces are not the wrapper's business
    assert "example" not in gomod and "./staging" not in gomod


def test_tools_go_is_kept_out_of_builds_by_its_build_tag() -> None:
    text = tools_go("k8s.io/kubernetes/cmd/kubectl")
    assert text.startswith("//go:build tools\n")
    assert '\t_ "k8s.io/kubernetes/cmd/kubectl"\n' in text


def test_the_deployer_role_grants_no_wildcard_and_no_rbac() -> None:
    for rule in DEPLOYER_RULES:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "rbac.authorization.k8s.io" not in rule["apiGroups"], rule
        if "nodes" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
