"""File-based quality commands: ``spec show``, ``spc check``, ``stability shelf-life``,
``stability freeze-thaw``, ``potency`` and ``compare``.

The database-bound commands (``spec import/export``, ``lot ...``, ``spc lots``)
attach to the same groups: import :data:`spec_app`, :data:`spc_app` or
:data:`stability_app` from this module and add commands to them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import FileFormatError, InsufficientData, InvalidInput
from ..quality import (
    NELSON_RULES,
    Margin,
    compare_groups,
    describe_criterion,
    freeze_thaw_limit,
    imr_limits,
    load_specification,
    nelson_rules,
    relative_potency,
    shelf_life,
)
from ._common import JsonOption, console, emit, print_table

__all__ = ["read_csv_columns", "register", "spc_app", "spec_app", "stability_app"]

spec_app = typer.Typer(help="Specifications: show (validate) a YAML specification.",
                       no_args_is_help=True)
spc_app = typer.Typer(help="Statistical process control: I-MR charts and Nelson rules.",
                      no_args_is_help=True)
stability_app = typer.Typer(help="Stability (ICH Q1E): shelf life and freeze-thaw limits.",
                            no_args_is_help=True)


# ---------------------------------------------------------------- CSV reading
def _csv_rows(path: Path, raw: str) -> list[list[str]]:
    """Rows of CSV text, delimiter (comma, semicolon or tab) sniffed from the header line."""
    try:
        dialect = csv.Sniffer().sniff(raw.splitlines()[0], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        return list(csv.reader(raw.splitlines(), delimiter=delimiter))
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise FileFormatError(path, f"not a readable CSV file ({exc})") from None


def _check_width(path: Path, header: list[str], row: list[str], lineno: int) -> None:
    # "A,100,5" under "lot,size_nm" is most often the decimal comma of 100,5: reading 100
    # and dropping the 5 would be a silent error.
    if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
        raise FileFormatError(path, f"{len(row)} cells but the header has {len(header)} "
                              "columns (a decimal comma? write 100.5, not 100,5)", line=lineno)


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for h in header:
        if h and h in seen:
            raise FileFormatError(path, f"column {h!r} appears twice in the header", line=1,
                                  field=h)
        seen.add(h)


def _number(path: Path, cell: str, lineno: int, col: str) -> float:
    # float() also takes "1_000" and "nan"/"inf": none of them is a measured value.
    try:
        if "_" in cell:
            raise ValueError(cell)
        value = float(cell)
    except ValueError:
        hint = " (a decimal comma? write 100.5, not 100,5)" if "," in cell else ""
        raise FileFormatError(path, f"{cell!r} is not a number{hint}", line=lineno,
                              field=col) from None
    if not math.isfinite(value):
        raise FileFormatError(path, f"{cell!r} is not a finite number", line=lineno,
                              field=col)
    return value


def read_csv_columns(path: Path, numeric: Sequence[str], text: Sequence[str] = ()
                     ) -> tuple[dict[str, list[Any]], list[int]]:
    """Read named columns of a CSV file.

    Parameters
    ----------
    path : Path
        CSV file with a header row (comma, semicolon or tab separated).
    numeric : sequence of str
        Columns that must hold numbers (``float``).
    text : sequence of str
        Columns read as text.

    Returns
    -------
    columns : dict
        Column -> list of values, one per data row (blank rows skipped).
    lines : list of int
        1-based file line of each data row (for messages).

    Raises
    ------
    FileFormatError
        Missing file, no header, a missing column, an empty cell or text
        where a number is expected (naming the line and the column).
    """
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"cannot read the file as UTF-8 text "
                                    f"({type(exc).__name__})") from None
    if not raw.strip():
        raise FileFormatError(path, "the file is empty; expected a header row and data rows")
    rows = _csv_rows(path, raw)
    header = [h.strip() for h in rows[0]]
    _check_header(path, header)
    wanted = list(dict.fromkeys([*numeric, *text]))
    for col in wanted:
        if col not in header:
            raise FileFormatError(path, f"no column {col!r}; the header has "
                                        f"{', '.join(repr(h) for h in header)}", line=1,
                                  field=col)
    pos = {col: header.index(col) for col in wanted}
    out: dict[str, list[Any]] = {col: [] for col in wanted}
    lines: list[int] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        _check_width(path, header, row, lineno)
        for col in wanted:
            i = pos[col]
            cell = row[i].strip() if i < len(row) else ""
            if cell == "":
                raise FileFormatError(path, "empty cell", line=lineno, field=col)
            if col in numeric:
                out[col].append(_number(path, cell, lineno, col))
            else:
                out[col].append(cell)
        lines.append(lineno)
    if not lines:
        raise FileFormatError(path, "no data rows after the header")
    return out, lines


def _prefixed(exc: InvalidInput | InsufficientData, prefix_and_message: str):
    """The same kind of error with the file (and column) in front of the message."""
    if isinstance(exc, FileFormatError):  # already names its file
        return exc
    return type(exc)(prefix_and_message)


FileArg = Annotated[Path, typer.Argument(help="CSV file with a header row.")]


# ---------------------------------------------------------------- spec show
@spec_app.command("show")
def spec_show(path: Annotated[Path, typer.Argument(help="Specification YAML file.")],
              json_: JsonOption = False) -> None:
    """Validate a specification file and show its tests."""
    spec = load_specification(path)
    if json_:
        emit(spec.model_dump(mode="json"), as_json=True)
        return
    console.print(f"[bold]{spec.name}[/bold] version {spec.version} ({spec.status.value}, "
                  f"in force from {spec.effective_date}) - {spec.product_type}")
    print_table([{"test": t.name, "method": t.method,
                  "acceptance criterion": describe_criterion(t.criterion),
                  "alternative group": t.alternative_group or ""} for t in spec.tests])


# ---------------------------------------------------------------- spc check
@spc_app.command("check")
def spc_check(
    path: FileArg,
    column: Annotated[str, typer.Option("--column", help="Column with the values, in time order.")],
    mean: Annotated[float | None, typer.Option("--mean", help="Given centre line.")] = None,
    sigma: Annotated[float | None, typer.Option("--sigma", help="Given process sigma.")] = None,
    baseline: Annotated[int | None, typer.Option(
        "--baseline", help="Estimate limits from the first N points (default all).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the chart (.png/.svg).")] = None,
    json_: JsonOption = False,
) -> None:
    """I-MR chart limits and all eight Nelson rules for one column of a CSV file."""
    if (mean is None) != (sigma is None):
        raise InvalidInput("give both --mean and --sigma, or neither")
    if mean is not None and baseline is not None:
        raise InvalidInput("give either --mean/--sigma or --baseline, not both")
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise InvalidInput(f"--sigma must be a positive number, got {sigma}")
    if mean is not None and not math.isfinite(mean):
        raise InvalidInput(f"--mean must be a finite number, got {mean}")
    cols, _ = read_csv_columns(path, [column])
    x = cols[column]
    if len(x) < 2:
        raise InsufficientData(f"{path}, column {column!r}: need at least 2 values, "
                               f"got {len(x)}")
    if baseline is not None and not 2 <= baseline <= len(x):
        raise InsufficientData(f"{path}, column {column!r}: --baseline must be 2..{len(x)}, "
                               f"got {baseline}")
    try:
        limits = imr_limits(x, baseline=baseline, mean=mean, sigma=sigma)
    except (InsufficientData, InvalidInput) as exc:
        raise _prefixed(exc, f"{path}, column {column!r}: {exc}") from None
    violations = nelson_rules(x, mean=limits.mean, sigma=limits.sigma)
    if plot is not None:
        from ..quality import plot_imr
        plot_imr(x, limits, violations, plot, title=f"{path.name}: {column}")
    result = {
        "file": str(path), "column": column, "n": len(x),
        "limits": limits,
        "violations": [{"rule": v.rule, "index": v.index} for v in violations],
        "rules": {str(k): v for k, v in NELSON_RULES.items()},
        "plot": str(plot) if plot else None,
    }

    def human(r):
        lim = r["limits"]
        print_table([{"centre": lim.mean, "sigma": lim.sigma, "LCL": lim.lcl, "UCL": lim.ucl,
                      "MRbar": lim.mr_bar, "MR UCL": lim.mr_ucl,
                      "limits from": lim.source + (f" ({lim.n_baseline} points)"
                                                   if lim.n_baseline else "")}],
                    title=f"I-MR limits, column {column}")
        if r["violations"]:
            print_table([{"rule": v["rule"], "index": v["index"],
                          "meaning": NELSON_RULES[v["rule"]]} for v in r["violations"]],
                        title="Nelson-rule violations (index of the window's last point)")
        else:
            console.print("no Nelson-rule violations")

    emit(result, as_json=json_, human=human)


# ---------------------------------------------------------------- stability
def _check_limits(path: Path, column: str, values: list[float], lower: float | None,
                  upper: float | None) -> None:
    if lower is None and upper is None:
        raise InvalidInput("give --lower-limit, --upper-limit or both")
    for opt, limit in (("--lower-limit", lower), ("--upper-limit", upper)):
        if limit is not None and not math.isfinite(limit):
            raise InvalidInput(f"{opt} must be a finite number, got {limit}")
    if lower is not None and upper is not None and lower >= upper:
        raise InvalidInput(f"--lower-limit {lower} must be below --upper-limit {upper}")
    if lower is not None and lower > max(values):
        raise InvalidInput(f"{path}, column {column!r}: lower limit {lower:g} is above every "
                           f"value (max {max(values):g}); is the limit on the wrong side?")
    if upper is not None and upper < min(values):
        raise InvalidInput(f"{path}, column {column!r}: upper limit {upper:g} is below every "
                           f"value (min {min(values):g}); is the limit on the wrong side?")


def _distinct_columns(**options: str | None) -> None:
    seen: dict[str, str] = {}
    for opt, col in options.items():
        if col is None:
            continue
        if col in seen:
            raise InvalidInput(f"{seen[col]} and --{opt.replace('_', '-')} both name column "
                               f"{col!r}; each needs its own column")
        seen[col] = f"--{opt.replace('_', '-')}"


def _stability_inputs(path, time_column, value_column, batch_column, lower, upper):
    _distinct_columns(time_column=time_column, value_column=value_column,
                      batch_column=batch_column)
    cols, _ = read_csv_columns(path, [time_column, value_column],
                               [batch_column] if batch_column else [])
    t, y = cols[time_column], cols[value_column]
    if len(t) < 3:
        raise InsufficientData(f"{path}: need at least 3 rows for a regression, got {len(t)}")
    bad = [i for i, v in enumerate(t) if v < 0]
    if bad:
        raise FileFormatError(path, "time must not be negative", line=bad[0] + 2,
                              field=time_column)
    _check_limits(path, value_column, y, lower, upper)
    return t, y, (cols[batch_column] if batch_column else None)


def _shelf_life_dict(res) -> dict[str, Any]:
    return {
        "shelf_life": res.shelf_life, "model": res.model,
        "poolability": {"p_slopes": res.p_slopes, "p_intercepts": res.p_intercepts,
                        "alpha": res.alpha_pool},
        "p_slopes": res.p_slopes, "p_intercepts": res.p_intercepts,
        "confidence": res.confidence, "sided": res.sided, "lower_limit": res.lower_limit,
        "upper_limit": res.upper_limit, "limiting_batch": res.limiting_batch,
        "crossing": res.crossing, "capped": res.capped, "max_time": res.max_time,
        "batches": res.batches, "warnings": res.warnings,
    }


TimeCol = Annotated[str, typer.Option("--time-column", help="Column with storage time.")]
ValueCol = Annotated[str, typer.Option("--value-column", help="Column with the attribute.")]
BatchCol = Annotated[str | None, typer.Option("--batch-column", help="Column with batch ids.")]
Lower = Annotated[float | None, typer.Option("--lower-limit", help="Lower acceptance limit.")]
Upper = Annotated[float | None, typer.Option("--upper-limit", help="Upper acceptance limit.")]
MaxTime = Annotated[float | None, typer.Option(
    "--max-time", help="Extrapolation cap (default twice the longest time).")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a chart (.png/.svg).")]


def _print_shelf(r: dict[str, Any], unit_word: str) -> None:
    print_table([{"shelf life": r["shelf_life"], "model": r["model"],
                  "p slopes": r["p_slopes"], "p intercepts": r["p_intercepts"],
                  "bound": f"{r['sided']} {r['confidence']:.0%}",
                  "limiting batch": r["limiting_batch"] or ""}],
                title=f"Shelf life ({unit_word})")
    print_table([{"batch": k, **v} for k, v in r["batches"].items()], title="Batches")
    for w in r["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


@stability_app.command("shelf-life")
def stability_shelf_life(path: FileArg, time_column: TimeCol, value_column: ValueCol,
                         batch_column: BatchCol = None, lower_limit: Lower = None,
                         upper_limit: Upper = None, max_time: MaxTime = None,
                         plot: PlotOpt = None, json_: JsonOption = False) -> None:
    """Shelf life by ICH Q1E (poolability at 0.25, confidence bound of the mean line)."""
    t, y, b = _stability_inputs(path, time_column, value_column, batch_column, lower_limit,
                                upper_limit)
    try:
        res = shelf_life(t, y, b, lower_limit=lower_limit, upper_limit=upper_limit,
                         max_time=max_time)
    except (InsufficientData, InvalidInput) as exc:
        raise _prefixed(exc, f"{path}: {exc}") from None
    if plot is not None:
        from ..quality import plot_stability
        plot_stability(t, y, b, res, plot, time_unit=time_column, value_unit=value_column)
    out = {"file": str(path), "time_column": time_column, **_shelf_life_dict(res)}
    emit(out, as_json=json_, human=lambda r: _print_shelf(r, f"{time_column} units"))


@stability_app.command("freeze-thaw")
def stability_freeze_thaw(
    path: FileArg,
    cycles_column: Annotated[str, typer.Option("--cycles-column", help="Column with cycles.")],
    value_column: ValueCol, batch_column: BatchCol = None, lower_limit: Lower = None,
    upper_limit: Upper = None, json_: JsonOption = False,
) -> None:
    """Largest number of freeze-thaw cycles whose confidence bound stays within limits."""
    t, y, b = _stability_inputs(path, cycles_column, value_column, batch_column, lower_limit,
                                upper_limit)
    bad = [i for i, c in enumerate(t) if c != int(c)]
    if bad:
        raise FileFormatError(path, f"{t[bad[0]]:g} is not a whole number of cycles",
                              line=bad[0] + 2, field=cycles_column)
    try:
        res = freeze_thaw_limit(t, y, b, lower_limit=lower_limit, upper_limit=upper_limit)
    except (InsufficientData, InvalidInput) as exc:
        raise _prefixed(exc, f"{path}: {exc}") from None
    out = {"file": str(path), "max_cycles": res.max_cycles, **_shelf_life_dict(res.analysis)}
    emit(out, as_json=json_, human=lambda r: (console.print(f"max cycles: {r['max_cycles']}"),
                                              _print_shelf(r, "cycles")))


# ---------------------------------------------------------------- potency
def _potency(path: Path, dose_column: str, response_column: str, sample_column: str,
             reference: str, plot: Path | None, json_: bool) -> None:
    _distinct_columns(dose_column=dose_column, response_column=response_column,
                      sample_column=sample_column)
    cols, _ = read_csv_columns(path, [dose_column, response_column], [sample_column])
    dose, resp, sample = cols[dose_column], cols[response_column], cols[sample_column]
    for i, d in enumerate(dose):
        if d <= 0:
            raise FileFormatError(path, f"dose {d:g} must be positive", line=i + 2,
                                  field=dose_column)
    names = list(dict.fromkeys(sample))
    if reference not in names:
        raise InvalidInput(f"{path}: reference {reference!r} not found in column "
                           f"{sample_column!r} (samples: {', '.join(names)})")
    others = [n for n in names if n != reference]
    if not others:
        raise InsufficientData(f"{path}: no test sample besides the reference {reference!r}")

    def pick(name):
        idx = [i for i, s in enumerate(sample) if s == name]
        return [dose[i] for i in idx], [resp[i] for i in idx]

    xr, yr = pick(reference)
    results = []
    for n in others:
        xs, ys = pick(n)
        try:
            r = relative_potency(xr, yr, xs, ys)
        except (InsufficientData, InvalidInput) as exc:
            raise _prefixed(exc, f"{path}, sample {n!r}: {exc}") from None
        if plot is not None and len(others) == 1:
            from ..quality import plot_potency
            plot_potency(xr, yr, xs, ys, r, plot)
        results.append({
            "sample": n, "relative_potency": r.relative_potency,
            "ci_low": r.ci_low, "ci_high": r.ci_high, "confidence": r.confidence,
            "parallel": r.parallel, "parallelism_p": r.parallelism_p,
            "parallelism_f": r.parallelism_f, "slope_ratio": r.slope_ratio,
            "ec50_reference": r.shared["ec50_reference"], "ec50_sample": r.shared["ec50_sample"],
            "reference_fit": r.reference, "sample_fit": r.sample, "n": r.n})
    out = {"file": str(path), "reference": reference, "samples": results,
           "ci_method": "Wald interval on log relative potency (delta method), t with n-5 df",
           "parallelism_test": "F test constrained (5 parameters) vs free 4PL fits (8)"}

    def human(o):
        # Short headers: at 80 columns rich would cut "relative_potency" to "relative_…".
        print_table([{"sample": s["sample"], "potency": f"{s['relative_potency']:.4g}",
                      f"{s['confidence']:.0%} CI": f"{s['ci_low']:.4g} .. {s['ci_high']:.4g}",
                      "parallel": "yes" if s["parallel"] else "NO",
                      "p parallel": f"{s['parallelism_p']:.3g}",
                      "slope ratio": f"{s['slope_ratio']:.3g}"}
                     for s in o["samples"]], title=f"Relative potency vs {reference}")
        for s in o["samples"]:
            if not s["parallel"]:
                console.print(f"[yellow]warning:[/yellow] {s['sample']}: curves not parallel "
                              f"(F test p = {s['parallelism_p']:.3g}); its relative potency "
                              "is not valid")

    emit(out, as_json=json_, human=human)


# ---------------------------------------------------------------- compare
def _float_like(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_group(path: Path, text_columns: dict[str, str] | None = None
                ) -> dict[str, list[float]]:
    """All numeric columns of a group CSV (one row per lot; empty cells = not measured).

    ``text_columns``, when given, receives each non-numeric column and where it
    first holds text (for messages about a margin on such a column).
    """
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"cannot read the file ({type(exc).__name__})") from None
    rows = [r for r in _csv_rows(path, raw) if any(c.strip() for c in r)] if raw.strip() else []
    if len(rows) < 2:
        raise FileFormatError(path, "expected a header row and one row per lot")
    header = [h.strip() for h in rows[0]]
    _check_header(path, header)
    for i, r in enumerate(rows[1:]):
        _check_width(path, header, r, i + 2)
    out: dict[str, list[float]] = {}
    for j, name in enumerate(header):
        cells = [(i + 2, r[j].strip() if j < len(r) else "") for i, r in enumerate(rows[1:])]
        vals: list[float] = []
        numeric = False
        for lineno, c in cells:
            if c == "":
                vals.append(math.nan)
                continue
            try:
                vals.append(_number(path, c, lineno, name))
                numeric = True
            except FileFormatError:
                if numeric or _float_like(c):  # "nan", "inf", "1_000": bad numbers, not text
                    raise
                if text_columns is not None:
                    text_columns[name] = f"line {lineno}: {c!r}"
                vals = []
                break
        if vals and numeric:
            out[name] = vals
    if not out:
        raise FileFormatError(path, "no numeric attribute columns")
    return out


def _parse_margin(text: str) -> tuple[str, Margin]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise InvalidInput(f"--margin {text!r}: expected NAME=VALUE or NAME=VALUE%")
    value = value.strip()
    relative = value.endswith("%")
    try:
        number = float(value[:-1] if relative else value)
    except ValueError:
        raise InvalidInput(f"--margin {text!r}: {value!r} is not a number") from None
    if not (math.isfinite(number) and number > 0):
        raise InvalidInput(f"--margin {text!r}: the margin must be a positive number")
    if relative:
        return name.strip(), Margin(number / 100.0, "relative")
    return name.strip(), Margin(number, "absolute")


def _compare(group_a: Path, group_b: Path, margin: list[str], json_: bool) -> None:
    text_a: dict[str, str] = {}
    text_b: dict[str, str] = {}
    a, b = _read_group(group_a, text_a), _read_group(group_b, text_b)
    margins: dict[str, Margin] = {}
    for m in margin:
        name, value = _parse_margin(m)
        if name in margins:
            raise InvalidInput(f"--margin {name!r} is given twice; give one margin per attribute")
        margins[name] = value
    for name in margins:  # a typo must not drop an attribute from the comparison silently
        for path, text in ((group_a, text_a), (group_b, text_b)):
            if name in text:
                raise FileFormatError(path, f"column {name!r} is not numeric ({text[name]})",
                                      field=name)
        if name not in a and name not in b:
            raise InvalidInput(f"--margin {name!r}: no numeric column {name!r} in {group_a} or "
                               f"{group_b} (columns: {', '.join(dict.fromkeys([*a, *b]))})")
    names = [n for n in dict.fromkeys([*a, *b]) if n in margins]
    if not names:
        raise InvalidInput("no attribute has a --margin; give e.g. --margin size_nm=10 "
                           "--margin concentration=20%")
    rep = compare_groups({n: a.get(n, []) for n in names}, {n: b.get(n, []) for n in names},
                         {n: margins[n] for n in names})
    out = {"group_a": str(group_a), "group_b": str(group_b), "alpha": rep.alpha,
           "min_n": rep.min_n, "attributes": rep.attributes, "summary": rep.summary,
           "not_compared": sorted((set(a) | set(b)) - set(names))}

    def human(o):
        # One line per attribute: a table of 8 columns at 80 characters cuts the verdict.
        console.print(f"[bold]Comparability (TOST, Welch, 90 % CI)[/bold]: B = {group_b} "
                      f"against A = {group_a}")
        for c in o["attributes"]:
            line = f"{c.attribute}: [bold]{c.verdict.value}[/bold] (n A/B {c.n_a}/{c.n_b})"
            if c.ci90 is not None:
                line += (f"; B - A = {c.difference:.4g}, 90 % CI {c.ci90[0]:.4g} .. "
                         f"{c.ci90[1]:.4g}, margin +-{c.margin:.4g}, p = {c.p_value:.2g}")
            if c.reason:
                line += f"; {c.reason}"
            console.print(line, soft_wrap=True)

    emit(out, as_json=json_, human=human)


def register(app: typer.Typer) -> None:
    """Attach the quality command groups and commands to ``app``."""
    app.add_typer(spec_app, name="spec")
    app.add_typer(spc_app, name="spc")
    app.add_typer(stability_app, name="stability")

    @app.command("potency")
    def potency(
        path: FileArg,
        dose_column: Annotated[str, typer.Option("--dose-column", help="Column with doses.")],
        response_column: Annotated[str, typer.Option("--response-column",
                                                     help="Column with responses.")],
        sample_column: Annotated[str, typer.Option("--sample-column",
                                                   help="Column naming the curve of each row.")],
        reference: Annotated[str, typer.Option("--reference",
                                               help="Sample name of the reference standard.")],
        plot: PlotOpt = None,
        json_: JsonOption = False,
    ) -> None:
        """Relative potency (parallel 4PL) of each sample against the reference standard."""
        _potency(path, dose_column, response_column, sample_column, reference, plot, json_)

    @app.command("compare")
    def compare(
        group_a: Annotated[Path, typer.Option("--group-a", help="CSV of reference lots "
                                                                "(one row per lot).")],
        group_b: Annotated[Path, typer.Option("--group-b", help="CSV of compared lots.")],
        margin: Annotated[list[str], typer.Option(
            "--margin", help="NAME=VALUE (absolute) or NAME=VALUE% (of group A's mean).")],
        json_: JsonOption = False,
    ) -> None:
        """Comparability (ICH Q5E): TOST per attribute of group B against group A."""
        _compare(group_a, group_b, margin, json_)
