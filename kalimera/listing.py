"""How the CLI's listing commands print (``ingest failures``, ``token list``).

Three forms, one data: ``--json`` prints a JSON array of objects (times in RFC 3339); on a
terminal, a table wide enough that no value is ever cut (the terminal wraps a long line, a
copy of it stays whole); into a pipe or a file, one line per row, values separated by tabs and
no heading, so ``cut -f1`` or ``xargs`` take a value as it is.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | list):
        return value
    return str(value)


def show(
    rows: Sequence[dict[str, Any]],
    columns: dict[str, str],
    *,
    as_json: bool,
    empty: str,
) -> None:
    """Print ``rows`` (their ``columns``: key → heading) in the form the output calls for;
    ``empty`` is said on a terminal when there is nothing to list."""
    if as_json:
        typer.echo(json.dumps([{k: _json(row[k]) for k in columns} for row in rows], indent=2))
        return
    cells = [[_text(row[k]) for k in columns] for row in rows]
    if not sys.stdout.isatty():
        for line in cells:
            typer.echo("\t".join(" ".join(cell.split()) for cell in line))
        return
    if not cells:
        typer.echo(empty)
        return
    table = Table(*columns.values())
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(columns.values())]
    needed = sum(widths) + 3 * len(widths) + 1  # the borders and a space each side of a cell
    table_width = max(shutil.get_terminal_size().columns, needed)
    for line in cells:
        table.add_row(*line)
    Console(width=table_width).print(table)
