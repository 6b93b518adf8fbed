"""BCA / micro-BCA protein assay plate-reader CSV.

Layout (one row per well, comma, semicolon or tab separated, optional preamble
lines before the header; column names are matched case-insensitively)::

    Well,Type,ID,Concentration,Absorbance,Dilution
    A1,Blank,Blank,,0.101,
    B1,Standard,S1,2000,2.089,
    C1,Sample,EV-lot-7,,0.834,10

* ``Type``: ``Standard`` / ``Sample`` / ``Blank`` (also ``Std``, ``Unknown``,
  ``Blk``).
* ``Concentration``: standards only, ug/mL (header may say ``ug/mL`` or
  ``µg/mL``; ``mg/mL`` is converted).
* ``Absorbance``: raw A562 (also ``A562``, ``OD``, ``OD562``).
* ``Dilution``: samples only, the factor the sample was diluted by before the
  assay (blank = 1).

Processing: the mean of the Blank wells (or, without blanks, of the zero
standards) is subtracted from every well; the curve absorbance = f(concentration)
is fitted to all standard replicates both as a straight line and as a
4-parameter logistic, and the model with the lower AICc (small-sample Akaike
criterion, which charges the 4PL for its two extra parameters) is used. Samples
are the mean of their replicates, inverted on the curve and multiplied by their
dilution; values outside the standards are reported *and* flagged.
"""

from __future__ import annotations

import csv
import math
import re
import warnings as _warnings
from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import FileFormatError, InsufficientData
from ._record import InstrumentResult, ProteinSample, StandardCurve
from ._text import decode_text, parse_float, read_bytes

__all__ = ["ABSORBANCE_MAX", "ABSORBANCE_MIN", "HIGH_CV_PERCENT", "fit_standard_curve", "looks_like_plate", "plate_columns", "read_protein_plate"]

HIGH_CV_PERCENT = 15.0  # replicate CV above this is flagged (common bioassay acceptance limit)
# Absorbance a plate reader reports (exclusive bounds); outside is a corrupt or mistyped value.
ABSORBANCE_MIN, ABSORBANCE_MAX = -1.0, 10.0

_TYPES = {"standard": "standard", "std": "standard", "sample": "sample", "unknown": "sample",
          "unk": "sample", "blank": "blank", "blk": "blank"}


def _find_column(cells: list[str], *patterns: str) -> int | None:
    for j, cell in enumerate(cells):
        c = cell.strip().lower()
        for p in patterns:
            if re.fullmatch(p, c):
                return j
    return None


def plate_columns(cells: list[str]) -> dict[str, int] | None:
    """Column index of well, type, id, concentration, absorbance, dilution; None if not a header."""
    cols = {
        "well": _find_column(cells, r"well( ?id)?", r"position"),
        "type": _find_column(cells, r"type", r"well type", r"content"),
        "id": _find_column(cells, r"id", r"sample( ?id| ?name)?", r"name"),
        "concentration": _find_column(cells, r"(concentration|conc\.?|standard concentration)"
                                             r"( ?[\(\[]?\s*(u|µ|μ|m)g ?/ ?ml[\)\]]?)?"),
        "absorbance": _find_column(cells, r"absorbance( ?[\(\[]?\s*562 ?(nm)?[\)\]]?)?",
                                   r"a ?562", r"od ?(562)?", r"abs(orbance)?"),
        "dilution": _find_column(cells, r"dilution( ?factor)?"),
    }
    if cols["well"] is None or cols["absorbance"] is None or cols["type"] is None:
        return None
    return {k: v for k, v in cols.items() if v is not None}


def looks_like_plate(first_lines: list[str]) -> bool:
    """True if one of the first lines is a protein-plate header (Well, Type, Absorbance)."""
    for line in first_lines:
        cells = re.split(r"[,;\t]", line)
        if plate_columns(cells) is not None:
            return True
    return False


def _four_pl(c, a, b, c50, d):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return d + (a - d) / (1.0 + np.power(np.maximum(c, 0.0) / c50, b))


def _aicc(rss: float, n: int, k: int) -> float:
    # k counts fitted parameters plus the residual variance.
    rss = max(rss, 1e-300)
    if n - k - 1 <= 0:
        return math.inf
    return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def fit_standard_curve(concentration_ug_per_ml, absorbance, *, models=("linear", "4pl")) -> StandardCurve:
    """Fit absorbance = f(concentration) by the models given; keep the lowest AICc.

    Parameters
    ----------
    concentration_ug_per_ml : array_like, shape (n,)
        Standard concentrations, ug/mL (replicates as separate points).
    absorbance : array_like, shape (n,)
        Blank-subtracted absorbance of each point.
    models : sequence of str
        ``"linear"`` and/or ``"4pl"``.

    Returns
    -------
    StandardCurve

    Notes
    -----
    Linear: A = intercept + slope c. 4PL: A = d + (a - d) / (1 + (c / c50)^b).
    AICc = n ln(RSS / n) + 2k + 2k(k + 1) / (n - k - 1), k = parameters + 1. The
    4PL needs at least 7 points and is skipped when it cannot be fitted.
    """
    from scipy.optimize import curve_fit

    c = np.asarray(concentration_ug_per_ml, dtype=float)
    a = np.asarray(absorbance, dtype=float)
    n = c.size
    if n < 3 or np.unique(c).size < 3:
        raise InsufficientData(f"a standard curve needs at least 3 distinct standards, got "
                               f"{np.unique(c).size}")
    fits: dict[str, tuple[dict[str, float], float, int]] = {}
    if "linear" in models:
        # Degenerate standards (all absorbances equal, huge values) make polyfit warn;
        # the fit quality checks below judge the result instead.
        with _warnings.catch_warnings(), np.errstate(all="ignore"):
            _warnings.simplefilter("ignore")
            slope, intercept = np.polyfit(c, a, 1)
        rss = float(np.sum((a - (intercept + slope * c)) ** 2))
        if math.isfinite(slope) and math.isfinite(intercept) and math.isfinite(rss):
            fits["linear"] = ({"intercept": float(intercept), "slope": float(slope)}, rss, 2)
    if "4pl" in models and n >= 7:
        top = float(a.max())
        positive = c[c > 0]
        p0 = [float(a[c == c.min()].mean()), 1.0, float(np.median(positive)) if positive.size else 1.0,
              top * 2.0 if top > 0 else 1.0]
        try:
            with np.errstate(all="ignore"), _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                popt, _ = curve_fit(_four_pl, c, a, p0=p0, maxfev=20000,
                                    bounds=([-np.inf, 0.1, 1e-9, -np.inf], [np.inf, 10.0, np.inf, np.inf]))
            rss = float(np.sum((a - _four_pl(c, *popt)) ** 2))
            if np.all(np.isfinite(popt)) and math.isfinite(rss):
                fits["4pl"] = (dict(zip(("a", "b", "c50", "d"), map(float, popt), strict=True)), rss, 4)
        except (RuntimeError, ValueError):
            pass
    if not fits:
        raise InsufficientData("no standard-curve model could be fitted")
    aicc = {m: _aicc(rss, n, k + 1) for m, (_, rss, k) in fits.items()}
    best = min(aicc, key=lambda m: (aicc[m], m != "linear"))
    params, rss, k = fits[best]
    ss_tot = float(np.sum((a - a.mean()) ** 2))
    nonzero = c[c > 0]
    return StandardCurve(
        model=best, parameters=params, r_squared=1.0 - rss / ss_tot if ss_tot > 0 else 1.0,
        residual_se=math.sqrt(rss / (n - k)) if n > k else math.nan, aicc=aicc,
        concentration_range_ug_per_ml=(float(nonzero.min()) if nonzero.size else 0.0, float(c.max())),
    )


def invert_curve(curve: StandardCurve, absorbance: float) -> float | None:
    """Concentration (ug/mL) giving ``absorbance`` on the curve; None off a 4PL's range."""
    p = curve.parameters
    if curve.model == "linear":
        if p["slope"] == 0:
            return None
        return (absorbance - p["intercept"]) / p["slope"]
    a, b, c50, d = p["a"], p["b"], p["c50"], p["d"]
    lo, hi = min(a, d), max(a, d)
    if not lo < absorbance < hi:
        return None
    return float(c50 * ((a - d) / (absorbance - d) - 1.0) ** (1.0 / b))


def read_protein_plate(path, *, data: bytes | None = None,
                       cv_limit_percent: float = HIGH_CV_PERCENT) -> InstrumentResult:
    """Read a BCA / micro-BCA plate CSV and compute sample protein concentrations.

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes, optional
        The file's bytes when already read.
    cv_limit_percent : float
        Replicate CV above which a sample is flagged ``"high-cv"``.

    Returns
    -------
    InstrumentResult
        ``format="bca-plate"``, ``protein_samples`` (one per sample ID, in file
        order), ``standard_curve``; ``extra``: ``blank_absorbance``, ``standards``
        (concentration, mean blank-subtracted absorbance, replicates), ``wells``.
    """
    raw = read_bytes(path) if data is None else data
    text = decode_text(raw, path)
    lines = text.splitlines()
    header_at = cols = None
    delimiter = ","
    for i, line in enumerate(lines[:50]):
        for delim in (",", ";", "\t"):
            cells = next(csv.reader([line], delimiter=delim), [])
            found = plate_columns(cells)
            if found is not None:
                header_at, cols, delimiter = i, found, delim
                break
        if cols is not None:
            break
    if cols is None:
        raise FileFormatError(path, "no plate header with Well, Type and Absorbance columns")
    header_cells = next(csv.reader([lines[header_at]], delimiter=delimiter))
    conc_scale = 1.0
    if "concentration" in cols and "mg" in header_cells[cols["concentration"]].lower():
        conc_scale = 1000.0  # mg/mL -> ug/mL
    wells: list[dict[str, Any]] = []
    for i, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        if not line.strip():
            continue
        cells = next(csv.reader([line], delimiter=delimiter), [])
        if not any(c.strip() for c in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            j = cols.get(name)
            return cells[j].strip() if j is not None and j < len(cells) else ""

        kind = _TYPES.get(cell("type").lower())
        if kind is None:
            raise FileFormatError(path, f"type {cell('type')[:20]!r} is not Standard, Sample or Blank",
                                  line=i, field=header_cells[cols["type"]])
        absorb = parse_float(cell("absorbance"), path, line=i, field=header_cells[cols["absorbance"]])
        if absorb is None:
            raise FileFormatError(path, "absorbance is empty", line=i, field=header_cells[cols["absorbance"]])
        if not ABSORBANCE_MIN < absorb < ABSORBANCE_MAX:
            raise FileFormatError(path, f"absorbance {absorb} is outside what a plate reader reports "
                                        f"({ABSORBANCE_MIN:g} to {ABSORBANCE_MAX:g})",
                                  line=i, field=header_cells[cols["absorbance"]])
        conc = None
        if kind == "standard":
            if "concentration" not in cols:
                raise FileFormatError(path, "standards need a Concentration column", line=header_at + 1)
            conc = parse_float(cell("concentration"), path, line=i, field=header_cells[cols["concentration"]])
            if conc is None or conc < 0:
                raise FileFormatError(path, "a standard needs a concentration >= 0 (ug/mL)", line=i,
                                      field=header_cells[cols["concentration"]])
            conc *= conc_scale
        dilution = 1.0
        if kind == "sample" and cell("dilution"):
            dilution = parse_float(cell("dilution"), path, line=i, field=header_cells[cols["dilution"]])
            if dilution is None or dilution < 1.0:
                raise FileFormatError(path, f"dilution factor {cell('dilution')[:20]!r} must be >= 1",
                                      line=i, field=header_cells[cols["dilution"]])
        ident = cell("id") or (cell("well") if kind == "sample" else kind)
        wells.append({"well": cell("well"), "type": kind, "id": ident, "concentration_ug_per_ml": conc,
                      "absorbance": absorb, "dilution_factor": dilution, "line": i})
    if not wells:
        raise FileFormatError(path, "the plate has a header but no wells", line=header_at + 2)
    return _analyse(path, wells, cv_limit_percent)


def _analyse(path, wells: list[dict[str, Any]], cv_limit_percent: float) -> InstrumentResult:
    """Blank-subtract, fit the standards, invert the samples (see the module notes)."""
    warnings: list[str] = []
    blanks = [w["absorbance"] for w in wells if w["type"] == "blank"]
    if not blanks:
        blanks = [w["absorbance"] for w in wells if w["type"] == "standard" and w["concentration_ug_per_ml"] == 0]
        if blanks:
            warnings.append("no Blank wells: the zero standard is used as blank")
        else:
            warnings.append("no Blank wells and no zero standard: absorbances are not blank-corrected")
    blank = float(np.mean(blanks)) if blanks else 0.0
    std = [w for w in wells if w["type"] == "standard"]
    if len(std) < 3:
        raise FileFormatError(path, f"{len(std)} standard wells: a curve needs at least 3")
    sc = np.array([w["concentration_ug_per_ml"] for w in std])
    sa = np.array([w["absorbance"] for w in std]) - blank
    try:
        curve = fit_standard_curve(sc, sa)
    except InsufficientData as exc:
        raise FileFormatError(path, str(exc)) from None
    if curve.r_squared < 0.98:
        warnings.append(f"standard curve R^2 = {curve.r_squared:.3f} (< 0.98)")
    lo, hi = curve.concentration_range_ug_per_ml
    groups: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for w in wells:
        if w["type"] == "sample":
            groups.setdefault(w["id"], []).append(w)
    samples: list[ProteinSample] = []
    for ident, reps in groups.items():
        dils = {w["dilution_factor"] for w in reps}
        if len(dils) > 1:
            raise FileFormatError(path, f"replicates of sample {ident!r} carry different dilutions",
                                  line=reps[0]["line"], field="Dilution")
        dilution = dils.pop()
        raw_abs = np.array([w["absorbance"] for w in reps])
        mean_abs = float(raw_abs.mean()) - blank
        cv = (float(raw_abs.std(ddof=1) / raw_abs.mean() * 100.0)
              if raw_abs.size > 1 and raw_abs.mean() != 0 else None)
        flags: list[str] = []
        measured = invert_curve(curve, mean_abs)
        if measured is None:
            flags.append("not-on-curve")
        elif measured < lo:
            flags.append("below-lowest-standard")
        elif measured > hi:
            flags.append("above-highest-standard")
        if cv is not None and cv > cv_limit_percent:
            flags.append("high-cv")
        samples.append(ProteinSample(
            sample=ident, protein_ug_per_ml=None if measured is None else measured * dilution,
            measured_ug_per_ml=measured, absorbance_mean=mean_abs, cv_percent=cv,
            replicates=int(raw_abs.size), dilution_factor=dilution, flags=tuple(flags)))
    if not samples:
        warnings.append("the plate has no Sample wells")
    flagged = [s.sample for s in samples if s.flags]
    if flagged:
        warnings.append(f"{len(flagged)} sample(s) flagged: {', '.join(flagged[:6])}")
    levels = sorted(set(sc.tolist()))
    standards = [{"concentration_ug_per_ml": lv,
                  "absorbance_mean": float(sa[sc == lv].mean()),
                  "replicates": int(np.sum(sc == lv))} for lv in levels]
    return InstrumentResult(
        file=str(path), format="bca-plate", instrument="plate reader (BCA)",
        sample=samples[0].sample if len(samples) == 1 else None,
        protein_samples=tuple(samples), standard_curve=curve, warnings=tuple(warnings),
        extra={"blank_absorbance": blank, "standards": standards, "wells": wells},
    )
