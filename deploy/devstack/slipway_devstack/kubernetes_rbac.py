"""What the devstack applies to its Kubernetes cluster: the fake node, the default StorageClass
(hostPath volumes provisioned by the controller manager) and Slipway's deployer account (a
ServiceAccount, a ClusterRole with what a deployer does, its binding and a token).

The ClusterRole is what a user would grant Slipway on their own cluster: it manages the
namespaced objects of a deployment (namespaces included: one per environment), reads what a
rollout is watched through (pods, their logs, events, replica sets) and reads nodes (the
cluster check reports them). It cannot touch RBAC, nodes or cluster-wide configuration.
Manifests are plain dicts, applied as one JSON `List` with kubectl (no YAML in the stdlib).
"""

from __future__ import annotations

from typing import Any

from slipway_devstack.settings import KUBE_SLIPWAY_ACCOUNT, KUBE_SLIPWAY_NAMESPACE

Manifest = dict[str, Any]

MANAGE = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
READ = ["get", "list", "watch"]

DEPLOYER_RULES: list[Manifest] = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": MANAGE},
    {
        "apiGroups": [""],
        # serviceaccounts: Helm charts commonly ship their own
        "resources": [
            "services",
            "secrets",
            "configmaps",
            "persistentvolumeclaims",
            "serviceaccounts",
        ],
        "verbs": MANAGE,
    },
    {
        "apiGroups": ["apps"],
        "resources": [
            "deployments",
            "deployments/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        "verbs": MANAGE,
    },
    {"apiGroups": ["apps"], "resources": ["replicasets", "controllerrevisions"], "verbs": READ},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": MANAGE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": MANAGE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses"], "verbs": READ},
    {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": READ},
    # pods: deleted to retry a stuck one; their logs are a deployment's live logs
    {"apiGroups": [""], "resources": ["pods"], "verbs": [*READ, "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": READ},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": READ},
]


def slipway_account_manifests() -> Manifest:
    name, namespace = KUBE_SLIPWAY_ACCOUNT, KUBE_SLIPWAY_NAMESPACE
    rbac = "rbac.authorization.k8s.io/v1"
    items: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": DEPLOYER_RULES,
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": rbac.split("/")[0], "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
        {
            # a long-lived token (the controller manager fills it in), as a user would hand
            # Slipway in a kubeconfig; it lives as long as this Secret
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": {"kubernetes.io/service-account.name": name},
            },
        },
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def node_manifest(name: str) -> Manifest:
    """A node kwok plays the kubelet of (--manage-all-nodes): no taint, pods land on it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            # room for the benchmark's 100 environments of 3 services (500m CPU each): kwok's
            # pods cost nothing, and a node this size keeps "Insufficient cpu" out of the way
            "capacity": {"cpu": "1000", "memory": "4Ti", "pods": "1000"},
            "allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "1000"},
        },
    }


def storage_class_manifest() -> Manifest:
    """The cluster's default StorageClass: claims without a class (a database's) get a hostPath
    volume from the controller manager's provisioner (``--enable-hostpath-provisioner``: one
    node, development only), deleted with the claim."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }
