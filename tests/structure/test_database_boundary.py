"""The database boundary: driver errors become domain errors inside the adapters (the ``db``
modules and ``adapters``), so a use case never names an asyncpg error class. A use case that
catches ``UniqueViolationError`` itself ties its logic to the driver, and each copy classified
the failure on its own (the catalog had nine)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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


def _record_names(package: Path) -> re.Pattern[str]:
    """``Record`` and every alias of it the service declares (``Row: TypeAlias =
    asyncpg.Record`` hid the deployer's rows from a search for the word)."""
    names = {"Record"}
    for path in package.glob("**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if value is not None and re.search(r"\bRecord\b", ast.unparse(value)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    # as words: the local runtime's ServiceRecord (a state file's entry) is no driver row
    return re.compile(r"\b(?:" + "|".join(sorted(names)) + r")\b")


def _annotations(node: ast.AST, *, returns_only: bool) -> list[ast.expr]:
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return []
    if returns_only:
        return [node.returns] if node.returns is not None else []
    arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
    arguments += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
    found = [a.annotation for a in arguments if a.annotation is not None]
    return found + ([node.returns] if node.returns is not None else [])


def _layer_files(package: Path, layer: str) -> list[Path]:
    return sorted([*package.glob(f"{layer}/**/*.py"), *package.glob(f"{layer}.py")])


def _records_crossing(package: Path) -> list[str]:
    """Where a ``Record`` crosses a use case's signature: in any annotation of a use case, and
    in what a query (``db``) or an adapter answers."""
    record = _record_names(package)
    found = []
    for layer in ("usecases", "db", "adapters"):
        for path in _layer_files(package, layer):
            for node in ast.walk(ast.parse(path.read_text())):
                for annotation in _annotations(node, returns_only=layer != "usecases"):
                    if record.search(ast.unparse(annotation)):
                        where = f"{path.relative_to(package.parent)}:{annotation.lineno}"
                        found.append(f"{where}: {ast.unparse(annotation)}")
    return found


SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())


@pytest.mark.parametrize("service", SERVICES)
def test_no_record_crosses_a_use_case_signature(service: str) -> None:
    found = _records_crossing(next((ROOT / "services" / service).glob("slipway_*")))
    assert not found, "asyncpg.Record crosses a use case's signature:\n" + "\n".join(found)


def test_an_alias_of_record_is_found_too(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "queries.py").write_text(
        "import asyncpg\nRow: TypeAlias = asyncpg.Record\nasync def get() -> Row | None: ...\n"
        "class ServiceRecord: ...\ndef state() -> ServiceRecord: ...\n"
    )
    found = [line.split(": ", 1)[1] for line in _records_crossing(tmp_path)]
    assert found == ["Row | None"]
