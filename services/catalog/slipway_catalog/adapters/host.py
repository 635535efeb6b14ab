"""What this host's local runtime can run, read the way the deployer's local runtime reads it.

The deployer starts PostgreSQL databases with the newest ``/usr/lib/postgresql/<major>/bin`` it
finds (``slipway_deployer.adapters.runtime.postgres``) and refuses any other major, so the local
cluster offers that one major; an operator whose deployer runs elsewhere names it with
``SLIPWAY_CATALOG_LOCAL_POSTGRESQL_VERSION`` (``none``: no databases).
"""

from __future__ import annotations

from pathlib import Path

from slipway_catalog.domain import capabilities
from slipway_catalog.domain.capabilities import Capabilities

PG_ROOT = Path("/usr/lib/postgresql")


def postgresql_majors(root: Path = PG_ROOT) -> tuple[str, ...]:
    """The major the deployer would run: the newest ``<major>/bin`` under ``root``, when it
    holds the server's binaries (empty: no database can start)."""
    majors = sorted(
        int(d.name) for d in root.glob("*") if d.name.isdigit() and (d / "bin").is_dir()
    )
    if not majors:
        return ()
    newest = root / str(majors[-1]) / "bin"
    if not all((newest / binary).is_file() for binary in ("initdb", "pg_ctl", "postgres")):
        return ()
    return (str(majors[-1]),)


def local_capabilities(setting: str | None, *, root: Path = PG_ROOT) -> Capabilities:
    if setting is None:
        return capabilities.local(postgresql_majors(root))
    named = setting.strip().lower()
    return capabilities.local(() if named in ("", "none") else (named,))
