"""Helpers every command module shares: JSON/table output and progress bars.

Commands stay thin: parse options, call one service function, print the result
with :func:`emit`. Errors are not caught here; :func:`exotrace.cli.main.main`
maps the one error tree to a one-line message and an exit code.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = [
    "JsonOption",
    "console",
    "emit",
    "err_console",
    "print_table",
    "progress_bar",
    "to_jsonable",
]

def _width() -> int | None:
    # Piped output (files, CI logs) gets wide tables instead of rich's 80-column
    # default, so lot numbers and units are not cut to "EV-202…".
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 200


console = Console(width=_width())
err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, numpy scalars/arrays, enums, paths and dates to JSON types.

    Non-finite floats become ``null`` so the output is strict JSON.
    """
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_jsonable(value.tolist())
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, Iterable):
        return [to_jsonable(v) for v in value]
    return str(value)


def emit(result: Any, *, as_json: bool, human=None) -> None:
    """Print ``result`` as JSON (``as_json``) or through ``human(result)``.

    ``human`` defaults to a key/value table for mappings and a plain print otherwise.
    """
    if as_json:
        typer.echo(json.dumps(to_jsonable(result), indent=2, allow_nan=False))
        return
    if human is not None:
        human(result)
        return
    data = to_jsonable(result)
    if isinstance(data, Mapping):
        print_table([{"field": k, "value": _short(v)} for k, v in data.items()])
    elif isinstance(data, list) and data and isinstance(data[0], Mapping):
        print_table(data)
    else:
        console.print(data)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_table(rows: Sequence[Mapping[str, Any]], *, title: str | None = None,
                columns: Sequence[str] | None = None) -> None:
    """Print a list of mappings as a rich table (columns from the first row)."""
    if not rows:
        console.print(f"[dim]{title + ': ' if title else ''}no rows[/dim]")
        return
    cols = list(columns or rows[0].keys())
    table = Table(title=title)
    for c in cols:
        table.add_column(str(c))
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in cols])
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool = True) -> Iterator:
    """A rich progress bar on stderr; yields ``advance(n=1)``.

    Disabled (a no-op) for JSON output or when stderr is not a terminal, so
    scripted output stays clean.
    """
    if not enabled or not err_console.is_terminal:
        yield lambda n=1: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
