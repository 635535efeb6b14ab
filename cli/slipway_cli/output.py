"""How a list or an object is shown: ``--output table|json|yaml``.

``json`` and ``yaml`` print the API's objects as they are (a list for a list command), so a script
reads every field; ``table`` shows the columns a person needs. A table on a terminal is drawn by
rich; piped, it is one tab-separated line per row without a header (as ``gh`` does), so
``cut -f1`` gives the ids and nothing is wrapped or cut to the terminal's width.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


SECRET_MASK = "********"  # noqa: S105 (what a secret shows, not one)


def cell(value: Any) -> str:
    """One value in a table cell: lists joined, nothing for None, objects as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def serialized(data: Any, output: Output) -> str:
    """``data`` as JSON or YAML text (for ``table`` use ``render``)."""
    if output is Output.json:
        return json.dumps(data, indent=2, sort_keys=False)
    if output is Output.yaml:
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).rstrip("\n")
    raise ValueError("a table is rendered, not serialized")


def tsv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Piped table: one line per row, tab-separated (tabs and newlines in values as spaces)."""
    lines = []
    for row in rows:
        values = (cell(row.get(c)).replace("\t", " ").replace("\n", " ") for c in columns)
        lines.append("\t".join(values))
    return "\n".join(lines)


def plain(console: Console, text: str) -> None:
    """Text as it is (rich would expand tabs and may wrap): for what scripts read."""
    console.file.write(text + "\n")
    console.file.flush()


def render(
    console: Console,
    data: Any,
    output: Output,
    columns: Sequence[str],
    *,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Print a list (``data``) in the chosen format; ``rows`` (default: ``data``) are what the
    table shows when they differ from the API's objects (masked, flattened)."""
    if output is not Output.table:
        plain(console, serialized(data, output))
        return
    shown = data if rows is None else rows
    if not console.is_terminal:
        if shown:
            plain(console, tsv(shown, columns))
        return
    table = Table(*(c.upper().replace("_", " ") for c in columns))
    for row in shown:
        table.add_row(*(cell(row.get(c)) for c in columns), style=None)
    console.print(table)


def fields(data: Mapping[str, Any], names: Sequence[str]) -> str:
    """One object for a person: ``name: value`` lines, names aligned."""
    width = max((len(n) for n in names), default=0)
    return "\n".join(f"{n.ljust(width)}  {cell(data.get(n))}" for n in names if n in data)


def show(console: Console, data: Any, output: Output, names: Sequence[str]) -> None:
    """Print one object in the chosen format (``names``: the fields the table form shows)."""
    if output is Output.table:
        console.print(fields(data, names), markup=False, highlight=False, soft_wrap=True)
    else:
        plain(console, serialized(data, output))
