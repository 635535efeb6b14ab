"""The database boundary: driver errors become domain errors inside the adapters (the ``db``
modules and ``adapters``), so a use case never names an asyncpg error class. A use case that
catches ``UniqueViolationError`` itself ties its logic to the driver, and each copy classified
the failure on its own (the catalog had nine)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRIVER_ERROR = re.compile(r"\basyncpg\.(?:exceptions\.)?\w+(?:Error|Violation\w*)\b")


def _use_case_files() -> list[Path]:
    return sorted(ROOT.glob("services/*/slipway_*/usecases/**/*.py"))


def test_there_are_use_cases_to_check() -> None:
    services = {p.relative_to(ROOT).parts[1] for p in _use_case_files()}
    assert {"catalog", "identity", "deployer"} <= services, services


def test_no_use_case_names_a_driver_error() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _use_case_files()
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if DRIVER_ERROR.search(line)
    ]
    assert not found, "use cases name driver errors:\n" + "\n".join(found)
