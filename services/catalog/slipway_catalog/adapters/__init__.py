"""What the catalog reaches outside its database: a cluster's API server, and this host (what
its local runtime can run)."""

from slipway_catalog.adapters.host import local_capabilities, postgresql_majors
from slipway_catalog.adapters.kubernetes import KubernetesProbe

__all__ = ["KubernetesProbe", "local_capabilities", "postgresql_majors"]
