"""Two builders sharing a workspace (``make up`` beside a test run, each platform with its own
registry) keep their own auth file and registries.conf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slipway_builder.adapters.buildah import Buildah, _buildah_env
from slipway_builder.config import BuilderSettings
from slipway_libs.registries import RegistryCredentials


def _builder(workspace: Path, registry: str, password: str) -> Buildah:
    settings = BuilderSettings.model_validate(
        {"database_url": "postgresql://x@127.0.0.1/y", "workspace": str(workspace)}
    ).model_copy(update={"registry": registry})
    return Buildah(settings, RegistryCredentials("builder", password))


def _files(builder: Buildah) -> tuple[dict[str, Any], str]:
    """What buildah reads: the ``--authfile`` of its push and its ``CONTAINERS_REGISTRIES_CONF``."""
    args = builder.push_args("x/y:z", digest_file=Path("/dev/null"))
    authfile = Path(args[args.index("--authfile") + 1])
    conf = Path(_buildah_env(builder._registries_conf)["CONTAINERS_REGISTRIES_CONF"])
    return json.loads(authfile.read_text()), conf.read_text()


def test_a_second_builder_does_not_overwrite_the_first_ones_registry_files(tmp_path: Path) -> None:
    first = _builder(tmp_path, "127.0.0.1:15000", "one")
    second = _builder(tmp_path, "127.0.0.1:25000", "two")

    auth, conf = _files(first)
    assert list(auth["auths"]) == ["127.0.0.1:15000"]
    assert '"127.0.0.1:15000"' in conf and "25000" not in conf
    auth, conf = _files(second)
    assert list(auth["auths"]) == ["127.0.0.1:25000"]
    assert '"127.0.0.1:25000"' in conf


def test_builders_of_one_registry_and_user_share_their_files(tmp_path: Path) -> None:
    a = _builder(tmp_path, "127.0.0.1:15000", "one")
    b = _builder(tmp_path, "127.0.0.1:15000", "one")
    assert _files(a) == _files(b)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".registry")]) == 1
