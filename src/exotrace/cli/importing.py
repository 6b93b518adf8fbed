"""``exotrace import FILE...``: read instrument files of any supported format.

Each file is read on its own; a file that fails gives ``{"file", "error"}`` and
the rest are still read. The exit code is 3 (file format error) when any file
failed, 0 otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ExotraceError, FileFormatError
from ..instruments import read_file
from ._common import JsonOption, console, emit, print_table, progress_bar

__all__ = ["import_files", "register"]


def import_files(paths: list[Path], *, full: bool = False, progress=lambda n=1: None) -> list[dict[str, Any]]:
    """Read every path; one JSON-ready dict per path, in input order.

    Parameters
    ----------
    paths : list of Path
    full : bool
        Include bulky arrays (distributions, per-particle tables, events).
    progress : callable
        Called once per file (for a progress bar).

    Returns
    -------
    list of dict
        :meth:`InstrumentResult.to_dict` for files that were read, ``{"file", "error"}``
        (one line) for files that were not.
    """
    out: list[dict[str, Any]] = []
    for path in paths:
        try:
            out.append(read_file(path).to_dict(full=full))
        except ExotraceError as exc:
            out.append({"file": str(path), "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop a batch
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())
            out.append({"file": str(path), "error": f"internal error: {msg}"})
        progress()
    return out


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _human(rows: list[dict[str, Any]]) -> None:
    table_rows = []
    for r in rows:
        if "error" in r:
            continue
        other = ""
        if r.get("events") is not None:
            other = f"{r['events']} events, {len(r.get('channels') or [])} ch"
            if r.get("events_per_ul") is not None:
                other += f", {r['events_per_ul']:.4g}/uL"
        elif r.get("protein_samples") is not None:
            other = "; ".join(f"{s['sample']}: {_fmt(s['protein_ug_per_ml'])} ug/mL"
                              + (f" [{','.join(s['flags'])}]" if s["flags"] else "")
                              for s in r["protein_samples"][:3])
        elif (r.get("extra") or {}).get("zeta_potential_mv") is not None:
            other = f"zeta {r['extra']['zeta_potential_mv']:.1f} mV (25 C)"
        elif (r.get("extra") or {}).get("position_table"):
            table = r["extra"]["position_table"]
            other = f"{table['positions_used']} of {len(table['positions'])} positions used"
        elif r.get("videos"):
            other = f"{len(r['videos'])} video(s)"
        table_rows.append({
            "file": Path(r["file"]).name, "format": r["format"],
            "particles/mL": _fmt(r.get("particles_per_ml"), ".3e"), "mean nm": _fmt(r.get("mean_nm")),
            "D50 nm": _fmt(r.get("d50_nm")), "other": other,
            "warn": str(len(r.get("warnings") or [])),
        })
    if table_rows:
        print_table(table_rows, title="Imported instrument files")
    for r in rows:
        name = Path(r["file"]).name
        if "error" in r:
            console.print(f"[red]{name}: error[/red]: {r['error']}", highlight=False)
            continue
        for w in (r.get("warnings") or [])[:10]:
            console.print(f"[yellow]{name}[/yellow]: {w}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``exotrace import`` to ``app``."""

    @app.command("import")
    def import_command(
        files: Annotated[list[Path], typer.Argument(help="Instrument files (format detected by content).")],
        as_json: JsonOption = False,
        full: Annotated[bool, typer.Option("--full", help="With --json: include distributions, "
                                                          "per-particle tables and events.")] = False,
    ) -> None:
        """Read NanoSight, ZetaView, FCS and BCA plate files; print one record per file."""
        with progress_bar("Importing", total=len(files), enabled=not as_json) as advance:
            rows = import_files(list(files), full=full, progress=advance)
        emit(rows, as_json=as_json, human=_human)
        failed = sum(1 for r in rows if "error" in r)
        if failed:
            # An error (not typer.Exit) so that every caller sees the non-zero exit code.
            raise FileFormatError(f"{failed} of {len(rows)} file(s)",
                                  "could not be imported (see their error entries)")
